"""Where a drained order's time goes: one batch drain in this process on PostgreSQL, timed without a profiler,
then again under cProfile, its time split into mapping, lifecycle, ERP write and bookkeeping.

    .venv/bin/python bench/order_cost.py [--events 400] [--top 0] [--distinct-buyers]

The profiled run gives each part's share; the shares are applied to the unprofiled run's time per order (a
profiler slows Python calls more than waits on the database, so its own milliseconds overstate the Python
parts). "waiting on PostgreSQL" is the time psycopg spent waiting for the server's answers, across all parts.
Each run gets a fresh connector database, ERP database and queue (bench/pipeline.py), removed at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import fresh_connector, prepare  # bench/pipeline.py

# Each part is the cumulative time of these functions (file suffix, function name); none calls another part's.
MAPPING = [
    ("mappings/payloads.py", "read"),
    ("platforms/shopify/mapping.py", "order_from_shopify"),
    ("mappings/merchant.py", "apply_tables"),
    ("mappings/canonical_json.py", "order_to_json"),
]
ERP_WRITE = [
    ("adapters/erp/sql.py", name)
    for name in (
        "check_order",
        "push_order",
        "record_payment",
        "customer_owner",
        "find_customer",
        "similar_customers",
        "create_customer",
    )
]
LIFECYCLE = [("connector/orders/lifecycle.py", "apply_order")]  # less the ERP writes it makes
BOOKKEEPING = [
    ("connector/orders/pipeline.py", "claim_batch"),
    ("connector/orders/pipeline.py", "record"),
]
DRAIN = ("connector/orders/drains.py", "drain")
WAIT = ("psycopg/connection.py", "wait")


def drained(store_id: int, profile: cProfile.Profile | None) -> tuple[int, float, float]:
    from connector.orders.drains import drain

    started, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    done = 0
    while taken := drain(store_id):  # a drain hands over after DRAIN_SECONDS: here, the next one runs at once
        done += taken
    if profile is not None:
        profile.disable()
    return done, time.perf_counter() - started, time.process_time() - cpu


def run(events: int, profile: cProfile.Profile | None, distinct: bool) -> tuple[float, float]:
    """Seconds per order of one drain of `events` stored orders, and this process's CPU seconds per order (the
    steadier figure on a busy host: it leaves out waiting on PostgreSQL and on other processes)."""
    with fresh_connector("bench_prof") as env:
        store_id = prepare(env, events, distinct)
        os.environ.update(env)
        from connector.base.runtime import Runtime, install
        from connector.base.settings import Settings

        rt = install(Runtime.from_settings(Settings.from_env(), worker=True))  # as `connector worker` runs it
        try:
            done, seconds, cpu = drained(store_id, profile)
        finally:
            rt.close()
        if done != events:
            raise SystemExit(f"{done} of {events} events were done")
        return seconds / events, cpu / events


def cumulative(stats: pstats.Stats, wanted: list[tuple[str, str]]) -> float:
    found = 0.0
    for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if any(filename.endswith(suffix) and name == fn for suffix, fn in wanted):
            found += ct
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--top", type=int, default=0, help="also print the N functions with the most own time")
    parser.add_argument(
        "--distinct-buyers", action="store_true", help="each order from a buyer of their own (a flash sale)"
    )
    args = parser.parse_args()
    logging.disable(logging.INFO)  # a log line per event is not what is measured here
    plain, cpu = run(args.events, None, args.distinct_buyers)
    profile = cProfile.Profile()
    run(args.events, profile, args.distinct_buyers)
    stats = pstats.Stats(profile)
    total = cumulative(stats, [DRAIN])
    erp = cumulative(stats, ERP_WRITE)
    parts = {
        "mapping (payload, platform mapping, tables, result JSON)": cumulative(stats, MAPPING),
        "lifecycle (bindings, customer, holds, routing, attribution)": cumulative(stats, LIFECYCLE) - erp,
        "ERP write (SQL staging: order, lines, payment, customer)": erp,
        "bookkeeping (claim, outcomes, attempts)": cumulative(stats, BOOKKEEPING),
    }
    parts["the rest (topic dispatch, drain loop)"] = total - sum(parts.values())
    ms = plain * 1000
    buyers = "each a new buyer" if args.distinct_buyers else "one repeat buyer"
    print(
        f"{args.events} orders ({buyers}), one worker, PostgreSQL: {ms:.2f} ms per order ({1 / plain:.0f} orders/s), "
        f"of which this process's CPU {cpu * 1000:.2f} ms\n"
    )
    print(f"{'part':<62} {'share':>6} {'ms/order':>9}")
    for name, seconds in parts.items():
        print(f"{name:<62} {seconds / total:6.1%} {ms * seconds / total:9.2f}")
    waited = cumulative(stats, [WAIT])
    print(f"\n{'of all of it, waiting on PostgreSQL':<62} {waited / total:6.1%} {ms * waited / total:9.2f}")
    if args.top:
        print()
        stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
