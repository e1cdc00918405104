"""Orders/s from the inbox to the ERP staging tables: batch drains in one and in two worker processes, against
one forking RQ job per event (RQ's default Worker), in the same run, on PostgreSQL + Redis.

    .venv/bin/python bench/pipeline.py [--events 1000] [--forking-events 100] [--distinct-buyers] [--cold]

By default every order is the fixture's one account holder's (after the first, a known customer); with
--distinct-buyers each is a new buyer's, as in a flash sale (a customer found or made in the ERP per order).

The batch drains run in workers already running when the orders arrive, as in production when a sale starts
(`warm_leg`); --cold starts burst workers with the clock instead, so a run also pays each process's start (its
imports, connections and first plans: 1-2 s of CPU per worker, a fifth of a 1,000-order run).

Both legs process the same kind of stored Shopify orders (distinct ids) into SQL staging tables on
PostgreSQL; each leg gets a fresh connector database, ERP database and Redis queue. Everything runs
on 127.0.0.1 and is removed at the end.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.base.models import InboxEvent
from connector.intake import inbox

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")  # flushed: keep it to itself
BIN = Path(sys.executable).parent
ORDER = json.loads((ROOT / "tests/fixtures/shopify/order_discount_multiline.json").read_text())
SECRET = "bench-secret"  # the store `bench`'s webhook secret


def connector(env: dict, *args: str) -> None:
    subprocess.run([str(BIN / "connector"), *args], env=env, check=True, capture_output=True, text=True)


def setup_store(env: dict) -> int:
    """The connector's tables, the store `bench` (webhook secret SECRET) and the SQL staging ERP's tables;
    returns the store id."""
    connector(env, "db", "upgrade")
    config = Path(env["CONNECTOR_INSTANCE_PATH"]) / "bench.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        json.dumps(
            {
                "erp": {"kind": "sql", "url": env["ERP_URL"]},
                "stores": [
                    {
                        "slug": "bench",
                        "platform": "shopify",
                        "shop_domain": "bench.myshopify.com",
                        "webhook_secret": SECRET,
                    }
                ],
            }
        )
    )
    connector(env, "config", "load", str(config))
    from adapters.erp.sql import SqlStagingErp

    SqlStagingErp(env["ERP_URL"]).create_tables()
    engine = create_engine(env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        store_id = int(conn.execute(text("SELECT id FROM stores WHERE slug = 'bench'")).scalar_one())
    engine.dispose()
    return store_id


def postcode(n: int) -> str:
    """Buyer n's postcode: a flash sale's buyers live in many places. (With one postcode for all, each new buyer's
    duplicate check reads every earlier buyer: 4-5 ms at 3,000, a cost no real sale's spread of buyers has.)"""
    return f"{10000 + n * 37 % 90000:05d}"


def distinct_buyer(order: dict, n: int) -> None:
    """A buyer of their own for order n: a flash sale's orders come from many people. (With one buyer, two
    workers wait on each other's customer claim; with one name and postcode, each new account would be held
    as a possible duplicate of the first.)"""
    phone, last = f"+1 617-555-{n % 10000:04d}", f"Buyer{n}"
    order["email"] = order["contact_email"] = f"buyer{n}@example.com"
    order["customer"] = {
        **order["customer"],
        "id": 8_000_000 + n,
        "email": order["email"],
        "phone": phone,
        "last_name": last,
    }
    for key in ("billing_address", "shipping_address"):
        if order.get(key):
            order[key] = {**order[key], "phone": phone, "last_name": last, "name": f"Ann {last}", "zip": postcode(n)}


def delivery(store_id: int, n: int, distinct_buyers: bool) -> dict:
    """Bench order n as the receiver stores its orders/create delivery (inbox.row's fields): the fixture's
    order under an id of its own, from a buyer of their own or from the fixture's one account holder."""
    order = copy.deepcopy(ORDER)
    order["id"] = 7_000_000 + n
    order["name"] = f"#B{n}"
    order["email"] = order["contact_email"] = f"buyer{n}@example.com"
    if distinct_buyers:
        distinct_buyer(order, n)
    return {
        "store_id": store_id,
        "platform": "shopify",
        "topic": "orders/create",
        "dedupe_key": f"bench-{n}",
        "headers": {},
        "body": json.dumps(order).encode(),
        "resource_id": str(order["id"]),
    }


def prepare(env: dict, events: int, distinct_buyers: bool = False) -> int:
    """A fresh store with `events` pending orders/create events (`delivery`); returns the store id."""
    store_id = setup_store(env)
    record(env, store_id, range(events), distinct_buyers)
    return store_id


def record(env: dict, store_id: int, numbers: range, distinct_buyers: bool = False) -> None:
    """Store the bench orders numbered `numbers` as pending events, as the receiver stores deliveries."""
    engine = create_engine(env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    for n in numbers:
        inbox.record(engine, **delivery(store_id, n, distinct_buyers))
    engine.dispose()


def done_count(env: dict) -> int:
    engine = create_engine(env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        count = conn.execute(
            select(func.count()).select_from(InboxEvent).where(InboxEvent.status == "succeeded")
        ).scalar()
    engine.dispose()
    return int(count or 0)


@contextmanager
def fresh_connector(prefix: str) -> Iterator[dict]:
    """The environment of a connector of its own: fresh databases (its own and the SQL staging ERP's) and a
    queue of its own on BENCH_REDIS_URL, all removed at the end."""
    suffix = uuid.uuid4().hex[:8]
    dbs = (f"{prefix}_{suffix}", f"{prefix}_erp_{suffix}")
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for db in dbs:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{dbs[0]}",
        "ERP_URL": f"postgresql://postgres@127.0.0.1:5432/{dbs[1]}",
        "REDIS_URL": REDIS_URL,
        "CONNECTOR_ENCRYPTION_KEY": "bench-key",
        "CONNECTOR_QUEUE": f"bench-{suffix}",
        "CONNECTOR_INSTANCE_PATH": f"/tmp/{prefix}-{suffix}",
    }
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    try:
        yield env
    finally:
        redis.flushdb()
        with admin.connect() as conn:
            for db in dbs:
                conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"))
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}"'))
        admin.dispose()


def leg(name: str, events: int, enqueue, worker_cmd, workers: int = 1, distinct: bool = False) -> float:  # type: ignore[no-untyped-def]
    with fresh_connector("bench_pipe") as env:
        store_id = prepare(env, events, distinct)
        enqueue(env, store_id, workers)
        started = time.perf_counter()
        procs = start_workers(env, workers, worker_cmd(env))
        for proc in procs:
            proc.wait(timeout=900)
        seconds = time.perf_counter() - started
        finished = done_count(env)
        if finished != events or any(proc.returncode for proc in procs):
            said = (Path(env["CONNECTOR_INSTANCE_PATH"]) / "worker0.log").read_text()[-3000:]
            raise SystemExit(f"{name}: {finished} of {events} events succeeded; the first worker said:\n{said}")
        rate = events / seconds
        print(f"{name:<34} {events:>6} events {seconds:8.2f} s {rate:9.1f} orders/s")
        return rate


WARM_EVENTS = 20  # orders each running worker has drained before the timed ones arrive


def warm_leg(name: str, events: int, workers: int, distinct: bool) -> float:
    """Orders/s of drains in `workers` worker processes already running, as when a flash sale starts: the workers
    are started and drain WARM_EVENTS orders each first (their imports, connections and prepared statements made),
    then the timed orders are stored and their drains queued; timed until the last one is done."""
    with fresh_connector("bench_pipe") as env:
        warm = WARM_EVENTS * workers
        store_id = prepare(env, warm, distinct)
        procs = start_workers(env, workers, [str(BIN / "connector"), "worker"])
        try:
            enqueue_drain(env, store_id, workers)
            wait_done(env, warm, procs)
            record(env, store_id, range(warm, warm + events), distinct)
            started = time.perf_counter()
            enqueue_drain(env, store_id, workers)
            wait_done(env, warm + events, procs)
            seconds = time.perf_counter() - started
        finally:
            for proc in procs:
                proc.terminate()  # RQ's warm shutdown: the worker is idle
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:  # seen once: stuck after unsubscribing from its pub/sub channel
                    proc.kill()
                    proc.wait()
        rate = events / seconds
        print(f"{name:<34} {events:>6} events {seconds:8.2f} s {rate:9.1f} orders/s")
        return rate


def wait_done(env: dict, wanted: int, procs: list[subprocess.Popen], timeout: float = 900) -> None:
    """Until `wanted` events have succeeded; a worker that exits, or the time running out, ends the bench. Polled by
    asking whether any event is still open (ix_inbox_open: a few index entries), not by counting every event done,
    which read the whole inbox 50 times a second and took ~1% of the machine from the workers being measured."""
    engine = create_engine(env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    still_open = select(InboxEvent.id).where(InboxEvent.status.in_(("pending", "processing"))).limit(1)
    succeeded = select(func.count()).select_from(InboxEvent).where(InboxEvent.status == "succeeded")
    give_up = time.monotonic() + timeout
    try:
        with engine.connect() as conn:
            while True:
                finished = conn.execute(still_open).first() is None
                if finished and int(conn.execute(succeeded).scalar() or 0) >= wanted:
                    return
                conn.rollback()
                if finished or any(proc.poll() is not None for proc in procs) or time.monotonic() > give_up:
                    done = int(conn.execute(succeeded).scalar() or 0)
                    said = (Path(env["CONNECTOR_INSTANCE_PATH"]) / "worker0.log").read_text()[-3000:]
                    raise SystemExit(f"{done} of {wanted} events succeeded; the first worker said:\n{said}")
                time.sleep(0.02)
    finally:
        engine.dispose()


def start_workers(env: dict, count: int, command: list[str] | None = None) -> list[subprocess.Popen]:
    """`count` burst workers (`connector worker --burst` unless another command is given), each logging to
    worker<n>.log in the connector's instance folder (a pipe nobody reads would stall a worker that logs)."""
    command = command or [str(BIN / "connector"), "worker", "--burst"]
    logs = Path(env["CONNECTOR_INSTANCE_PATH"])
    return [
        subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=(logs / f"worker{n}.log").open("w"), text=True
        )
        for n in range(count)
    ]


def enqueue_drain(env: dict, store_id: int, drains: int) -> None:
    """One drain job per worker: a store's drains share its events (each claims a run at a time)."""
    from rq import Queue

    queue = Queue(env["CONNECTOR_QUEUE"], connection=Redis.from_url(REDIS_URL))
    for _ in range(drains):
        queue.enqueue("connector.orders.drains.drain", store_id)


def enqueue_per_event(env: dict, _store_id: int, _workers: int) -> None:
    from rq import Queue

    queue = Queue(env["CONNECTOR_QUEUE"], connection=Redis.from_url(REDIS_URL))
    engine = create_engine(env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM inbox_events ORDER BY id"))]
    engine.dispose()
    for event_id in ids:
        queue.enqueue("connector.orders.drains.retry_event", event_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--forking-events", type=int, default=100)
    parser.add_argument(
        "--distinct-buyers", action="store_true", help="each order from a buyer of their own (a flash sale)"
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="time the batch drains from their workers' start (imports, connections), as before 2026-12-05",
    )
    args = parser.parse_args()
    worker = lambda env: [str(BIN / "connector"), "worker", "--burst"]  # noqa: E731
    print("leg                                 events    seconds     rate")
    if args.cold:
        one = leg("batch drains, 1 worker (no fork)", args.events, enqueue_drain, worker, 1, args.distinct_buyers)
        two = leg("batch drains, 2 workers", args.events, enqueue_drain, worker, 2, args.distinct_buyers)
    else:
        one = warm_leg("batch drains, 1 running worker", args.events, 1, args.distinct_buyers)
        two = warm_leg("batch drains, 2 running workers", args.events, 2, args.distinct_buyers)
    fork = leg(
        "1 forking RQ job per event",
        args.forking_events,
        enqueue_per_event,
        lambda env: [str(BIN / "rq"), "worker", "--burst", "--url", REDIS_URL, env["CONNECTOR_QUEUE"]],
    )
    ratio = two / fork
    print(f"\n2 workers / 1 worker = {two / one:.2f}x")
    print(f"2 workers / forking = {ratio:.1f}x   target >= 20x   {'PASS' if ratio >= 20 else 'MISS'}")
    print(f"2 workers: {two:.0f} orders/s   target >= 250   {'PASS' if two >= 250 else 'MISS'}")


if __name__ == "__main__":
    main()
