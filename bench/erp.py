"""Orders/s into a real Tryton: through the connector vs calling the Tryton adapter directly, one run.

    .venv/bin/python bench/erp.py [--orders 60] [--concurrency 4] [--stores 1] [--rounds 1] [--serial-baseline]

Both legs book the same distinct Shopify orders (the fixture order_discount_multiline with its id,
name, customer id, email and phone varied, so every order is a new Tryton party), each into a Tryton
reset to its setup snapshot (scripts/tryton.py) with the products created before the clock starts:

  connector  signed webhooks POSTed to the connector (gunicorn, as in production) on PostgreSQL +
             Redis; `concurrency` RQ SimpleWorker processes (`connector worker`) drain the inbox into
             Tryton. Timed from the first POST to the last event processed (its sale confirmed and
             its payment noted in Tryton).
  direct     `concurrency` threads, each with its own TrytonErp (adapters/erp/tryton.py), making for
             each of the same canonical orders the ERP calls the connector makes for a new paid order:
             find_customer, create_customer, push_order (sale created, quoted, confirmed), record_payment.
             Retryable errors wait the same backoff as the connector's (CONNECTOR_RETRY_BASE/CAP 1/2 s here).

Both legs log in to Tryton inside the timed part. The ratio connector/direct should be >= 0.9.
--stores spreads the orders over several stores (the connector queues one drain job per store at a
time, so one store's burst mostly runs on one or two of the workers); --rounds repeats the legs in
alternating order and reports orders/s over all rounds (the figures move ~10% run to run on 2 cores).
Tryton here is `trytond` as scripts/tryton.py runs it: ONE process (werkzeug, threaded) on SQLite,
which serialises writes (one write transaction at a time, under one GIL), so concurrency buys little
in either leg; --serial-baseline also times the direct leg with one thread to show how much.

Cleans up what it starts: trytond (stopped; its database left reset-able), the PostgreSQL database
(dropped), the Redis database (must be empty at the start; flushed at the end), gunicorn and workers.
Uses TRYTON_DIR (default .tryton/, shared with the tests: do not run while a Tryton test session uses it;
pass --tryton-dir for another folder).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import hashlib
import hmac
import importlib.util
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import psycopg
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.backoff import backoff
from adapters.erp import PaymentRecord, PermanentErpError, RetryableErpError, build_erp
from adapters.erp.tryton_rpc import TrytonRpc
from connector.orders.customers import customer_keys
from mappings.canonical import Order
from mappings.customers import normalise_email, normalise_phone
from platforms.shopify.mapping import order_from_shopify

BIN = Path(sys.executable).parent
FIXTURE = ROOT / "tests/fixtures/shopify/order_discount_multiline.json"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/11"
STORE, SECRET = "bench-erp", "shpss_bench_erp_webhook_secret_0123456789"
DATABASE = "erp"  # scripts/tryton.py's database name
PAID = ("paid", "partially_refunded", "refunded")  # connector.orders.lifecycle.PAID
RETRY = SimpleNamespace(retry_base_seconds=1, retry_cap_seconds=2)  # both legs back off alike
MAX_ATTEMPTS = 8


def _load_tryton_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("tryton_script", ROOT / "scripts" / "tryton.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


tryton_script = _load_tryton_script()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the orders ----------------------------------------------------------------------------------


def store_slug(n: int, stores: int) -> str:
    return STORE if stores == 1 else f"{STORE}-{n % stores + 1}"


def make_payloads(count: int, nonce: int) -> list[dict]:
    """Distinct Shopify orders: new order id and name, a new customer (id, email, phone) each."""
    base = json.loads(FIXTURE.read_text())
    out = []
    for i in range(count):
        p = copy.deepcopy(base)
        p["id"] = nonce * 100_000 + i
        p["name"] = f"#B{i + 1:05d}"
        p["order_number"] = 10_000 + i
        email = f"bench.buyer{i + 1}@example.com"
        phone = f"+1617{nonce % 1000:03d}{i:04d}"
        p["email"] = p["contact_email"] = email
        p["phone"] = None
        p["customer"].update(
            id=nonce * 100_000 + 50_000 + i, email=email, phone=phone, first_name="Bench", last_name=f"Buyer {i + 1}"
        )
        for key in ("billing_address", "shipping_address"):
            if p.get(key):
                p[key].update(phone=phone, first_name="Bench", last_name=f"Buyer {i + 1}")
        out.append(p)
    return out


def reason(error: str | None) -> str:
    """An error without its order-specific parts, to count retries by cause."""
    text = (error or "").split(":", 1)[0] if "Tryton" not in (error or "") else (error or "")
    for word in ("unreachable", "locked", "concurrent", "party code", "another worker", "did not answer"):
        if word in text:
            return word
    return text[:60]


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


# ---- Tryton ----------------------------------------------------------------------------------------


@dataclass
class Tryton:
    directory: Path
    port: int
    password: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> dict:
        return {
            "url": self.url,
            "database": DATABASE,
            "username": "admin",
            "connect_timeout_seconds": 5,
            "read_timeout_seconds": 60,
        }

    def fresh(self, skus: list[str]) -> None:
        """Snapshot back, server started, the orders' products created (before any clock starts)."""
        with contextlib.redirect_stdout(None):
            tryton_script.reset(self.directory)
            tryton_script.start(self.directory, self.port)
        rpc = TrytonRpc(self.url, DATABASE, "admin", self.password)
        try:
            (category,) = rpc.call("product.category", "search", [("name", "=", "Storefront goods")], 0, 1, None)
            (unit,) = rpc.call("product.uom", "search", [("symbol", "=", "u")], 0, 1, None)
            rpc.call(
                "product.template",
                "create",
                [
                    {
                        "name": sku,
                        "type": "goods",
                        "salable": True,
                        "default_uom": unit,
                        "sale_uom": unit,
                        "list_price": Decimal(10),
                        "account_category": category,
                        "products": [["create", [{"suffix_code": sku}]]],
                    }
                    for sku in sorted(set(skus))
                ],
            )
        finally:
            rpc.close()

    def stop(self) -> None:
        with contextlib.redirect_stdout(None):
            tryton_script.stop(self.directory)

    def check(self, orders: list[Order]) -> str:
        """Every order is one confirmed (processing) sale with the store's total; else raise."""
        rpc = TrytonRpc(self.url, DATABASE, "admin", self.password)
        try:
            rows = rpc.call(
                "sale.sale",
                "search_read",
                [("reference", "like", f"shopify:{STORE}%")],
                0,
                None,
                None,
                ["reference", "state", "total_amount", "party"],
            )
        finally:
            rpc.close()
        by_ref = {r["reference"]: r for r in rows}
        problems = []
        if len(rows) != len(orders):
            problems.append(f"{len(rows)} sales for {len(orders)} orders")
        for order in orders:
            sale = by_ref.get(order.external_ref)
            if sale is None:
                problems.append(f"no sale for {order.external_ref}")
            elif sale["state"] != "processing" or sale["total_amount"] != order.totals.total.amount:
                problems.append(f"{order.external_ref}: {sale['state']} {sale['total_amount']}")
        if len({r["party"] for r in rows}) != len(orders):
            problems.append(f"{len({r['party'] for r in rows})} parties for {len(orders)} orders")
        if problems:
            raise RuntimeError("Tryton does not have what was sent: " + "; ".join(problems[:5]))
        total = sum((r["total_amount"] for r in rows), Decimal(0))
        return f"{len(rows)} confirmed sales, {len(rows)} parties, totals {total} USD = the stores' to the cent"


# ---- leg A: through the connector -------------------------------------------------------------------


@dataclass
class LegResult:
    seconds: float
    orders: int
    retries: int
    detail: dict = field(default_factory=dict)

    def plus(self, other: LegResult) -> LegResult:
        why = self.detail.get("why", Counter()) + other.detail.get("why", Counter())
        detail = {**self.detail, **other.detail, "why": why}
        for key in ("posted", "peak_drains"):
            if key in self.detail:
                detail[key] = max(self.detail[key], other.detail[key])
        return LegResult(self.seconds + other.seconds, self.orders + other.orders, self.retries + other.retries, detail)

    @property
    def rate(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


def run_connector(
    tryton: Tryton,
    payloads: list[dict],
    concurrency: int,
    stores: int,
    redis_url: str,
    timeout: float,
    cleanup: contextlib.ExitStack,
) -> LegResult:
    tmp = Path(tempfile.mkdtemp(prefix="bench-erp-"))
    cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)
    db = f"bench_erp_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    cleanup.callback(drop_database, db)
    db_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "CONNECTOR_QUEUE": f"bench-erp-{db[-8:]}",
        "CONNECTOR_ENCRYPTION_KEY": "bench-encryption-key",
        "SECRET_KEY": "bench-secret-key",
        "CONNECTOR_INSTANCE_PATH": str(tmp / "instance"),
        "CONNECTOR_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "CONNECTOR_RETRY_BASE_SECONDS": str(RETRY.retry_base_seconds),
        "CONNECTOR_RETRY_CAP_SECONDS": str(RETRY.retry_cap_seconds),
    }
    config = tmp / "connector.yaml"  # JSON is YAML
    config.write_text(
        json.dumps(
            {
                "erp": {"kind": "tryton", **tryton.settings(), "password": tryton.password},
                "stores": [
                    {
                        "slug": slug,
                        "platform": "shopify",
                        "shop_domain": f"{slug}.myshopify.com",
                        "webhook_secret": SECRET,
                    }
                    for slug in sorted({store_slug(n, stores) for n in range(stores)})
                ],
            }
        )
    )
    for args in (["db", "upgrade"], ["config", "load", str(config)]):
        done = subprocess.run(
            [str(BIN / "connector"), "--log-level", "WARNING", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"connector {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    port = free_port()
    web = start(
        [
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--log-level",
            "warning",
            "connector.web.wsgi:app",
        ],
        env,
        tmp / "web.log",
        cleanup,
    )
    workers = [
        start(["connector", "--log-level", "WARNING", "worker"], env, tmp / f"worker{n}.log", cleanup)
        for n in range(concurrency)
    ]
    base_url = f"http://127.0.0.1:{port}/webhooks/shopify"
    redis = Redis.from_url(redis_url)
    wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), 30, "the connector's web server", tmp / "web.log")
    from rq import Queue, Worker

    rq_queue = Queue(env["CONNECTOR_QUEUE"], connection=redis)
    wait_for(
        lambda: len(Worker.all(queue=rq_queue)) >= concurrency,
        30,
        f"{concurrency} RQ workers",
        tmp / "worker0.log",
        procs=workers,
    )

    bodies = [json.dumps(p).encode() for p in payloads]
    started = time.time()
    for n, body in enumerate(bodies):  # one POST after the other, as fast as they are answered
        slug = store_slug(n, stores)
        request = urllib.request.Request(
            f"{base_url}/{slug}",
            body,
            {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Hmac-Sha256": sign(body),
                "X-Shopify-Shop-Domain": f"{slug}.myshopify.com",
                "X-Shopify-Event-Id": f"bench-{n}",
                "X-Shopify-Webhook-Id": f"bench-wh-{n}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            if reply.status != 200:
                raise RuntimeError(f"the connector answered {reply.status} to order {n}")
    posted = time.time() - started

    peak, deadline = 0, time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while True:
            peak = max(peak, rq_queue.started_job_registry.count)
            done, failed, last = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'), "
                "max(processed_at) FROM inbox_events"
            ).fetchone()
            if done + failed >= len(payloads):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"connector leg: only {done} of {len(payloads)} orders processed after "
                    f"{timeout:.0f} s (see {tmp}/*.log)"
                )
            time.sleep(0.05)
        reasons = Counter(
            reason(r[0]) for r in conn.execute("SELECT error FROM event_attempts WHERE outcome = 'retry'")
        )
        errors = [r[0] for r in conn.execute("SELECT last_error FROM inbox_events WHERE status = 'failed' LIMIT 3")]
    if failed:
        raise RuntimeError(f"connector leg: {failed} orders failed: {errors}")
    seconds = last.timestamp() - started
    for proc in [*workers, web]:
        stop(proc)
    return LegResult(seconds, done, sum(reasons.values()), {"posted": posted, "peak_drains": peak, "why": reasons})


def start(cmd: list[str], env: dict, log: Path, cleanup: contextlib.ExitStack) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(BIN / cmd[0]), *cmd[1:]],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    cleanup.callback(stop, proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the process group this script created for it
            proc.wait()


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return reply.status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_for(check, seconds: float, what: str, log: Path, procs: list | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        if any(p.poll() is not None for p in procs or []):
            break
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up; log:\n{log.read_text(errors='replace')[-3000:]}")


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- leg B: the adapter directly ------------------------------------------------------------------------


def payment_of(order: Order) -> PaymentRecord:
    """The payment the connector records for a paid order (connector.orders.lifecycle._payment)."""
    return PaymentRecord(
        key=f"{order.external_ref}:payment",
        order_ref=order.external_ref,
        amount=order.totals.total,
        method=order.payment.method or "other",
        gateway=order.payment.gateway,
        transaction_ref=order.payment.transaction_ref,
        paid_at=order.payment.paid_at or order.updated_at,
    )


def run_direct(tryton: Tryton, orders: list[Order], concurrency: int, timeout: float) -> LegResult:
    todo: queue.Queue[Order] = queue.Queue()
    for order in orders:
        todo.put(order)
    done, reasons, failures, lock = [0], Counter(), [], threading.Lock()
    deadline = time.monotonic() + timeout

    def book(erp, order: Order) -> None:  # type: ignore[no-untyped-def]
        customer = erp.find_customer(
            normalise_email(order.customer.email), normalise_phone(order.customer.phone)
        ) or erp.create_customer(order.customer, customer_keys(order)[0])
        erp.push_order(order, customer)
        if order.payment.status in PAID:
            erp.record_payment(payment_of(order))

    def work() -> None:
        erp = build_erp("tryton", tryton.settings(), {"password": tryton.password})
        try:
            while time.monotonic() < deadline:
                try:
                    order = todo.get_nowait()
                except queue.Empty:
                    return
                for attempt in range(1, MAX_ATTEMPTS + 1):
                    try:
                        book(erp, order)
                        with lock:
                            done[0] += 1
                        break
                    except RetryableErpError as exc:
                        with lock:
                            reasons[reason(str(exc))] += 1
                        if attempt == MAX_ATTEMPTS:
                            failures.append(f"{order.number}: {exc}")
                        else:
                            time.sleep(backoff(attempt, RETRY.retry_base_seconds, RETRY.retry_cap_seconds))
                    except PermanentErpError as exc:
                        failures.append(f"{order.number}: {exc}")
                        break
        finally:
            erp.close()

    started = time.monotonic()
    threads = [threading.Thread(target=work, name=f"direct-{n}") for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    if failures or done[0] != len(orders):
        raise RuntimeError(f"direct leg: {done[0]} of {len(orders)} booked; {failures[:3]}")
    return LegResult(seconds, done[0], sum(reasons.values()), {"why": reasons})


# ---- main ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=4, help="RQ worker processes / adapter threads")
    parser.add_argument(
        "--stores",
        type=int,
        default=1,
        help="spread the orders over this many Shopify stores (the connector drains each store with one job at a time)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the legs, alternating their order; orders/s over all rounds"
    )
    parser.add_argument(
        "--serial-baseline",
        action="store_true",
        help="also time the direct leg with one thread (what concurrency buys on this trytond)",
    )
    parser.add_argument("--leg-timeout", type=float, default=600, help="seconds before a leg is given up")
    parser.add_argument("--tryton-dir", type=Path, default=Path(os.environ.get("TRYTON_DIR") or ROOT / ".tryton"))
    parser.add_argument("--redis-url", default=REDIS_URL, help="a Redis database of its own: must be empty")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the clean-up below also runs on SIGTERM

    redis = Redis.from_url(args.redis_url)
    if redis.dbsize():
        sys.exit(
            f"{args.redis_url} is not empty ({redis.dbsize()} keys): give an empty Redis database "
            "with --redis-url (this bench flushes it when it is done)"
        )
    print(f"Tryton: scripts/tryton.py setup {args.tryton_dir}")
    with contextlib.redirect_stdout(None):
        tryton_script.setup(args.tryton_dir)
    tryton = Tryton(args.tryton_dir, free_port(), (args.tryton_dir / "admin.pass").read_text().strip())
    nonce = int(time.time()) % 100_000
    payloads = make_payloads(args.orders, nonce)
    orders = [order_from_shopify(p, store_slug(n, args.stores)) for n, p in enumerate(payloads)]
    skus = [line.sku for line in orders[0].lines if line.sku]
    started = time.monotonic()

    with contextlib.ExitStack() as cleanup:
        cleanup.callback(redis.flushdb)
        cleanup.callback(tryton.stop)
        results: dict[str, LegResult] = {}
        legs = ["connector", "direct"] + (["direct, 1 thread"] if args.serial_baseline else [])
        for round_no in range(args.rounds):
            for leg in legs if round_no % 2 == 0 else legs[::-1]:  # alternate the order: fair to both
                prefix = f"round {round_no + 1}: " if args.rounds > 1 else ""
                tryton.fresh(skus)
                if leg == "connector":
                    print(
                        f"{prefix}connector leg: Tryton reset, products {', '.join(skus)}; {args.orders} signed "
                        f"webhooks to {args.stores} store(s) -> gunicorn -> PostgreSQL inbox -> "
                        f"{args.concurrency} RQ SimpleWorker processes -> Tryton"
                    )
                    result = run_connector(
                        tryton, payloads, args.concurrency, args.stores, args.redis_url, args.leg_timeout, cleanup
                    )
                else:
                    threads = 1 if leg == "direct, 1 thread" else args.concurrency
                    print(f"{prefix}direct leg: Tryton reset, same products; {threads} thread(s), one TrytonErp each")
                    result = run_direct(tryton, orders, threads, args.leg_timeout)
                print(
                    f"  {result.orders} orders in {result.seconds:.2f} s = {result.rate:.3f} orders/s; "
                    f"{tryton.check(orders)}"
                )
                tryton.stop()
                results[leg] = results[leg].plus(result) if leg in results else result

    a, b = results["connector"], results["direct"]
    print(
        f"\n{args.orders} orders (3 goods lines + shipping + tax, paid; a new Tryton party each), concurrency "
        f"{args.concurrency}, {args.rounds} round(s); Tryton {tryton_version(args.tryton_dir)}: one trytond process "
        "on SQLite; "
        f"whole run {time.monotonic() - started:.0f} s\n"
    )
    print(f"{'leg':<30} {'orders':>6} {'seconds':>8} {'orders/s':>9} {'retries':>8}")
    for name, r in results.items():
        label = {
            "connector": f"connector ({args.concurrency} RQ workers)",
            "direct": f"direct ({args.concurrency} threads)",
        }.get(name, name)
        why = ", ".join(f"{k} x{v}" for k, v in r.detail.get("why", Counter()).most_common())
        print(
            f"{label:<30} {r.orders:>6} {r.seconds:>8.2f} {r.rate:>9.3f} {r.retries:>8}" + (f"  ({why})" if why else "")
        )
    ratio = a.rate / b.rate
    print(f"\nratio connector / direct = {ratio:.3f}   target >= 0.9   {'PASS' if ratio >= 0.9 else 'MISS'}")
    print(
        f"connector: the {args.orders} webhooks were POSTed in at most {a.detail['posted']:.2f} s; at most "
        f"{a.detail['peak_drains']} drain job(s) ran at once on the {args.concurrency} workers ({args.stores} "
        "store(s): a store gets one queued drain at a time,\n           and another only for a webhook arriving "
        "after the running one started)"
    )
    if "direct, 1 thread" in results:
        print(
            f"direct: {args.concurrency} threads vs 1 thread = "
            f"{b.rate / results['direct, 1 thread'].rate:.2f}x the orders/s"
        )
    print(
        "note: this Tryton is ONE trytond process (werkzeug threads under one GIL) on SQLite, which serialises "
        "writes:\n      each sale's create/quote/confirm waits for the database's single write lock, so extra "
        "concurrency\n      adds little or nothing in either leg, and the legs are compared at Tryton's serial "
        "speed. It does\n      not help both ways alike on a Tryton that scales (PostgreSQL, several server "
        "processes): there the\n      direct threads would gain while one store's burst still goes through one "
        "drain job at a time."
    )


def tryton_version(directory: Path) -> str:
    found = sorted((directory / "venv").glob("lib/python*/site-packages/trytond-*.dist-info"))
    return found[-1].name[len("trytond-") : -len(".dist-info")] if found else "?"


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: servers stopped, database dropped, Redis db flushed")
