"""How fresh the ERP is under a steady stream of orders: each order timed from its webhook's 200 to its row in
the ERP's staging table, with the connector as production runs it.

    .venv/bin/python bench/freshness.py [--rate 100] [--seconds 60] [--workers 2] [--senders 8]
        [--series 10] [--existing-buyers 20000] [--autovacuum]

`connector web` (as it decides: one process per core, half the cores with PostgreSQL on this machine) and
`--workers` `connector worker` processes on PostgreSQL (the connector's database and the SQL staging ERP's)
and Redis, on 127.0.0.1; signed Shopify orders/create
webhooks (distinct orders) are offered at `--rate` a second for `--seconds`, on a schedule (a late send is
not made up for by a burst). Each order's latency is the ERP row's `created_at` (the connector's clock,
the same machine's) less the moment its 200 came back. Prints offered vs reached orders/s and the p50, p95
and p99 latencies. Everything it makes is removed at the end. Issue 18's target: p99 <= 1 s at 100 orders/s
for 5 minutes with two workers.

Production-like conditions: `--existing-buyers` (a merchant who has been trading has customers in the ERP
and in the connector) and `--autovacuum` (a CI machine's PostgreSQL may run without it). On empty tables and
without autovacuum, each new buyer's lookups scan the whole customer tables, so the run slows as they grow.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import (
    ADMIN,
    BIN,
    ORDER,
    SECRET,
    distinct_buyer,
    fresh_connector,
    postcode,
    setup_store,
)  # bench/pipeline.py

from platforms.signatures import sign


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"connector web exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"connector web not ready after 60 s:\n{log.read_text()[-3000:]}")


def _order_bodies():  # type: ignore[no-untyped-def]
    """Order n's webhook body from a template filled in by string replacement: deep-copying and serialising the
    fixture per order cost the sending side ~1 ms of this machine's CPU per order, taken from the connector."""
    order = copy.deepcopy(ORDER)
    distinct_buyer(order, 0)
    order["id"], order["name"] = 9_999_999_901, "#F@N@"
    order["customer"]["id"] = 9_999_999_902
    for key in ("billing_address", "shipping_address"):
        order[key]["zip"] = "@Z@"
    template = json.dumps(order)
    for was, marked in (("Buyer0", "Buyer@N@"), ("buyer0@", "buyer@N@@"), ("555-0000", "555-@P@")):
        template = template.replace(was, marked)
    assert template.count("9999999901") == 1 and "@P@" in template, "the fixture changed: adjust the template"

    def body(n: int) -> bytes:
        text = template.replace("9999999901", str(9_000_000 + n)).replace("9999999902", str(8_000_000 + n))
        text = text.replace("@N@", str(n)).replace("@P@", f"{n % 10000:04d}")
        return text.replace("@Z@", postcode(n)).encode()

    return body


def _offer(url: str, rate: float, seconds: float, senders: int) -> tuple[dict[str, float], int]:
    """Send the orders on schedule; {ERP external ref: when its 200 came back (epoch s)} and the failures.
    Each sender keeps one HTTP/1.1 connection (http.client: `requests` cost the sending side another ~1 ms of
    CPU an order, on the machine the connector runs on)."""
    total = int(rate * seconds)
    answered: dict[str, float] = {}
    failed = [0]
    lock = threading.Lock()
    start = time.time() + 0.5
    next_n = [0]
    body_of = _order_bodies()
    host, port = url.removeprefix("http://").split(":")

    def post(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> bool:
        conn.request("POST", "/webhooks/shopify/bench", body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        return answer.status == 200

    def sender() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        while True:
            with lock:
                n = next_n[0]
                next_n[0] += 1
            if n >= total:
                conn.close()
                return
            body = body_of(n)
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Hmac-Sha256": sign(SECRET, body),
                "X-Shopify-Shop-Domain": "bench.myshopify.com",
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": str(uuid.uuid4()),
            }
            wait = start + n / rate - time.time()
            if wait > 0:
                time.sleep(wait)
            try:
                ok = post(conn, body, headers)
            except (OSError, http.client.HTTPException):
                conn.close()  # reconnects on the next request
                ok = False
            with lock:
                if ok:
                    answered[f"shopify:bench:{9_000_000 + n}"] = time.time()
                else:
                    failed[0] += 1

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answered, failed[0]


def _landed(erp_url: str, refs: set[str], patience: float) -> dict[str, float]:
    """{external ref: the ERP row's created_at (epoch s)} once every order is in, or after `patience` s."""
    engine = _engine(erp_url)
    deadline = time.monotonic() + patience
    found: dict[str, float] = {}
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT external_ref, created_at FROM erp_orders")).all()
            found = {ref: at.replace(tzinfo=at.tzinfo or UTC).timestamp() for ref, at in rows if ref in refs}
            if len(found) >= len(refs):
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    return found


def _measure(
    env: dict,
    instance: Path,
    procs: list[subprocess.Popen],
    rate: float,
    seconds: float,
    workers: int,
    senders: int,
    series: float,
) -> None:
    port = _free_port()
    log = instance / "web.log"
    with log.open("w") as out:
        procs.append(
            subprocess.Popen(
                [str(BIN / "connector"), "web", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        )
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, procs[0], log)
    for n in range(workers):
        with (instance / f"worker{n}.log").open("w") as out:
            procs.append(
                subprocess.Popen([str(BIN / "connector"), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
            )
    time.sleep(2)  # the workers connect and listen
    began = time.time()
    answered, failed = _offer(url, rate, seconds, senders)
    offered_for = time.time() - began
    landed = _landed(env["ERP_URL"], set(answered), patience=max(60.0, seconds))
    latencies = sorted(max(0.0, landed[ref] - at) for ref, at in answered.items() if ref in landed)
    last = max(landed.values(), default=began)
    reached = len(landed) / max(last - began, 1e-9)
    offered = len(answered) + failed
    print(
        f"offered   {offered} orders in {offered_for:.1f} s = {offered / offered_for:.1f} orders/s ({failed} not 200)"
    )
    print(f"reached   {len(landed)} of {len(answered)} in the ERP: {reached:.1f} orders/s (first offer to last row)")
    if len(latencies) > 1:
        q = statistics.quantiles(latencies, n=100, method="inclusive")
        p50, p95, p99, most = (round(x * 1000) for x in (q[49], q[94], q[98], latencies[-1]))
        print(f"200 -> ERP row   p50 {p50} ms   p95 {p95} ms   p99 {p99} ms   max {most} ms")
        verdict = "PASS" if q[98] <= 1.0 and len(landed) == len(answered) else "MISS"
        print(f"target p99 <= 1 s with every order in: {verdict}")
    if series:
        _print_series(answered, landed, began, series)


def _print_series(answered: dict[str, float], landed: dict[str, float], began: float, step: float) -> None:
    """The latencies by when the order's 200 came back, `step` s at a time: a stall shows as a window."""
    windows: dict[int, list[float]] = {}
    for ref, at in answered.items():
        if ref in landed:
            windows.setdefault(int((at - began) // step), []).append(max(0.0, landed[ref] - at))
    print(f"{'from s':>7} {'orders':>7} {'p50 ms':>7} {'max ms':>7}")
    for n in sorted(windows):
        got = sorted(windows[n])
        print(f"{n * step:7.1f} {len(got):7d} {got[len(got) // 2] * 1000:7.0f} {got[-1] * 1000:7.0f}")


def _existing_buyers(env: dict, count: int) -> None:
    """A merchant who has been trading: `count` customers in the ERP, each linked in the connector, and both
    tables analysed as autovacuum does within a minute of such a load. (On a new install's empty tables,
    PostgreSQL's first plans for the buyer lookups scan the whole table and are kept until autovacuum's first
    ANALYZE, up to a minute in: a first-minute cost that grows with the table.)"""
    if count <= 0:
        return
    erp, ours = _engine(env["ERP_URL"]), _engine(env["DATABASE_URL"])
    try:
        with erp.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO erp_customers (email, name, phone, external_ids, created_at, updated_at, postcode)"
                    " SELECT 'earlier' || n || '@example.com', 'Earlier Buyer' || n,"
                    " '+1212555' || lpad(n::text, 6, '0'),"
                    " '', now(), now(), lpad((n % 90000 + 10000)::text, 5, '0') FROM generate_series(1, :count) AS n"
                ),
                {"count": count},
            )
        with ours.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO customer_links (key, erp_customer_id, claimed_at)"
                    " SELECT 'email:earlier' || n || '@example.com', n::text, now()"
                    " FROM generate_series(1, :count) AS n"
                ),
                {"count": count},
            )
        for engine, table in ((erp, "erp_customers"), (ours, "customer_links")):
            # These two only: an ANALYZE of a table still empty would tell the planner it stays empty.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f"ANALYZE {table}"))
    finally:
        erp.dispose()
        ours.dispose()


@contextmanager
def _autovacuum(wanted: bool) -> Iterator[None]:
    """The server's autovacuum, on for the run when `wanted` (and set back after): a production server runs it,
    but a CI machine's may not, and then no table is ever analysed, so PostgreSQL keeps the plans it made for
    the buyer lookups while the tables were empty (whole-table scans), and the inbox's dead rows are never
    reclaimed. Prints the state the run had."""
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        was = conn.execute(text("SHOW autovacuum")).scalar_one()
    turn_on = wanted and was != "on"
    try:
        if turn_on:
            with admin.connect() as conn:
                conn.execute(text("ALTER SYSTEM SET autovacuum = on"))
                conn.execute(text("SELECT pg_reload_conf()"))
        print(f"PostgreSQL autovacuum: {'on (for this run)' if turn_on else was}")
        yield
    finally:
        if turn_on:
            with admin.connect() as conn:
                conn.execute(text("ALTER SYSTEM RESET autovacuum"))
                conn.execute(text("SELECT pg_reload_conf()"))
        admin.dispose()


def run(
    rate: float,
    seconds: float,
    workers: int,
    senders: int,
    series: float = 0.0,
    existing: int = 0,
    autovacuum: bool = False,
) -> None:
    with _autovacuum(autovacuum), fresh_connector("bench_fresh") as env:
        setup_store(env)
        _existing_buyers(env, existing)
        instance = Path(env["CONNECTOR_INSTANCE_PATH"])
        procs: list[subprocess.Popen] = []
        try:
            _measure(env, instance, procs, rate, seconds, workers, senders, series)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="orders offered a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--senders", type=int, default=8, help="threads sending (enough to keep to the rate)")
    parser.add_argument("--series", type=float, default=0.0, help="also print the latencies this many s at a time")
    parser.add_argument(
        "--existing-buyers", type=int, default=0, help="customers the ERP and the connector hold before the sale"
    )
    parser.add_argument("--autovacuum", action="store_true", help="turn the server's autovacuum on for the run")
    args = parser.parse_args()
    run(args.rate, args.seconds, args.workers, args.senders, args.series, args.existing_buyers, args.autovacuum)


if __name__ == "__main__":
    main()
