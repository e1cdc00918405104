"""Memory under a backlog, and the inbox's size on disk: what a long flash sale and months of running cost.

    .venv/bin/python bench/memory.py [--backlog 100000] [--workers 2] [--rounds 6] [--per-round 2000]

1. Backlog: `--backlog` stored orders (each a new buyer) are drained by `--workers` `connector worker`
   processes on PostgreSQL. Each worker's resident memory (RSS, /proc) is sampled every half second with the
   events done so far; printed at 5% (warmed up), 25%, 50%, 75% and 100% of the backlog, with the growth
   from 5% to the highest seen. Target: within 10%.
2. The inbox's size: the inbox's tables with their indexes and TOAST (inbox_events and event_attempts) after
   the backlog, per event kept.
3. Steady state: `--rounds` rounds, each a day on the connector's clock: `--per-round` orders stored and
   drained in this process, then the daily prune (retention 2 days) and a VACUUM, as autovacuum would. The
   size grows while the kept days fill, then holds flat: pruning frees what new events reuse.

Everything runs on 127.0.0.1 and is removed at the end (bench/pipeline.py's fresh connector).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import delivery, enqueue_drain, fresh_connector, setup_store, start_workers  # bench/pipeline.py

from connector.intake import inbox

SIZE = """SELECT pg_total_relation_size('inbox_events') + pg_total_relation_size('event_attempts')"""
MARKS = (0.05, 0.25, 0.5, 0.75, 1.0)


def engine_of(env: dict):  # type: ignore[no-untyped-def]
    return create_engine(env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))


def store_orders(engine, store_id: int, count: int, first: int) -> None:  # type: ignore[no-untyped-def]
    """`count` orders/create deliveries, each a new buyer's, stored as the receiver stores them (500 a statement)."""
    for start in range(first, first + count, 500):
        rows = [inbox.row(**delivery(store_id, n, True)) for n in range(start, min(start + 500, first + count))]
        with engine.begin() as conn:
            inbox.insert_rows(conn, rows)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def done(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM inbox_events WHERE status = 'succeeded'")).scalar_one())


def still_open(engine) -> int:  # type: ignore[no-untyped-def]
    """The events not done yet, read from ix_inbox_open (the open events only): a progress sample every half
    second that does not count every finished event (50 ms a sample at 100,000, taken from the workers measured)."""
    query = text("SELECT count(*) FROM inbox_events WHERE status IN ('pending', 'processing')")
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def backlog(env: dict, store_id: int, events: int, workers: int) -> None:
    engine = engine_of(env)
    started = time.perf_counter()
    store_orders(engine, store_id, events, 0)
    print(f"stored {events} orders in {time.perf_counter() - started:.0f} s")
    enqueue_drain(env, store_id, workers)
    procs = start_workers(env, workers)
    samples: list[tuple[int, list[int]]] = []
    started = time.perf_counter()
    while any(proc.poll() is None for proc in procs):
        try:
            samples.append((events - still_open(engine), [rss_kib(proc.pid) for proc in procs]))
        except (FileNotFoundError, ProcessLookupError):
            pass  # a worker ended between the poll and the read
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    finished = done(engine)
    if finished != events:
        raise SystemExit(f"{finished} of {events} events were done; see the workers")
    print(f"drained {events} orders with {workers} worker(s) in {seconds:.0f} s ({events / seconds:.0f} orders/s)\n")
    print(f"{'done':>8} {'worker RSS (MiB)':>20}")
    warm = None
    for mark in MARKS:
        at = next((s for s in samples if s[0] >= mark * events and all(s[1])), samples[-1])
        print(f"{at[0]:>8} {' '.join(f'{kib / 1024:9.1f}' for kib in at[1]):>20}")
        warm = warm or at[1]
    highest = [max(s[1][n] for s in samples if all(s[1])) for n in range(workers)]
    growth = max((high - base) / base for high, base in zip(highest, warm or highest, strict=True))
    print(f"highest: {' '.join(f'{kib / 1024:.1f}' for kib in highest)} MiB; growth from 5%: {growth:.1%}")
    print(f"target: within 10%   {'PASS' if growth <= 0.10 else 'MISS'}\n")
    with engine.connect() as conn:
        size = int(conn.execute(text(SIZE)).scalar_one())
    print(f"inbox after the backlog: {size / 2**20:.1f} MiB for {events} events = {size / events:.0f} bytes/event\n")
    engine.dispose()


def steady(env: dict, store_id: int, rounds: int, per_round: int) -> None:
    from adapters import clock
    from connector.base.runtime import Runtime, install
    from connector.base.settings import Settings
    from connector.orders.drains import drain
    from connector.sync.reconcile import prune

    os.environ.update(env)
    logging.disable(logging.INFO)
    rt = install(Runtime.from_settings(Settings.from_env(), worker=True))  # as `connector worker` runs it
    engine = engine_of(env)
    vacuum = engine.execution_options(isolation_level="AUTOCOMMIT")
    print(f"{'day':>4} {'kept':>8} {'inbox MiB':>10} {'bytes/kept':>11}")
    try:
        for day in range(rounds):
            store_orders(engine, store_id, per_round, 1_000_000 + day * per_round)
            while drain(store_id):
                pass
            prune(rt, 2)  # the daily prune, keeping two days
            with vacuum.connect() as conn:
                conn.execute(text("VACUUM inbox_events, event_attempts"))
                size = int(conn.execute(text(SIZE)).scalar_one())
                kept = int(conn.execute(text("SELECT count(*) FROM inbox_events")).scalar_one())
            print(f"{day + 1:>4} {kept:>8} {size / 2**20:>10.1f} {size / kept:>11.0f}")
            clock.advance_to(clock.utcnow() + timedelta(days=1))
    finally:
        clock.reset()
        rt.close()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=2000)
    args = parser.parse_args()
    with fresh_connector("bench_mem") as env:
        backlog(env, setup_store(env), args.backlog, args.workers)
    with fresh_connector("bench_mem") as env:
        steady(env, setup_store(env), args.rounds, args.per_round)


if __name__ == "__main__":
    main()
