"""Sustained inventory sync against a fake Shopify with a small GraphQL budget: is the budget used, and
only the budget?

    .venv/bin/python bench/inventory.py [--skus 2000] [--changes 500] [--rounds 3] [--maximum 200] [--rate 50]

One run, on the embedded stack (SQLite, in a temporary folder) and the fake Shopify of tests/fakes over
real HTTP on 127.0.0.1:
1. setup with a roomy bucket (not measured): SKUs in the shop and the ERP, the SKU cache warmed, a
   first full sync so the shop holds the ERP's figures;
2. the shop's bucket becomes small (`--maximum` points, `--rate` points/s, full) and the client is
   cold (it has to learn the bucket from the shop's answers, as a new worker would);
3. "sustained": `--rounds` rounds of `--changes` changed SKUs (ERP change, stock read, store sync),
   back to back — the budget must be used (points used / points the bucket offered over the phase
   >= 90%), with no throttled answer after the first (the cold client's first call of 250 quantities
   is too big for a 200-point bucket: that answer teaches it the bucket), and the client's sleeps no
   longer than what the budget forces (theoretical minimum: (points used - points at the start) / rate);
4. "budget allows": after the bucket has refilled, one change set that fits in it — the client must
   not sleep at all.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.base.clients import forget, shopify_client, sync_client
from connector.base.models import Store
from connector.base.stock import read_erp_stock
from connector.sync import variants
from connector.sync.inventory import sync_inventory
from tests.fakes.shopify import FakeShopify
from tests.stack import STORE, build_stack
from tests.storefronts import configure, set_erp_stock, store_id

SET = "graphql:inventorySetQuantities"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=500, help="changed SKUs per sustained round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fits", type=int, default=150, help="changes in the 'budget allows' step")
    parser.add_argument("--maximum", type=float, default=200, help="the bucket: maximumAvailable points")
    parser.add_argument("--rate", type=float, default=50, help="the bucket: restoreRate points/s")
    args = parser.parse_args()
    if args.fits + 10 > args.maximum:
        parser.error("--fits must fit in the bucket: fits + 10 <= maximum")
    if args.changes * args.rounds + args.fits > args.skus:
        parser.error("--skus must cover every change (--fits + --changes x --rounds)")

    tmp = Path(tempfile.mkdtemp(prefix="bench-inventory-"))
    stack = build_stack("sqlite", tmp, f"sqlite:///{tmp / 'connector.db'}", f"sqlite:///{tmp / 'erp.db'}")
    shop = FakeShopify(max_available=1_000_000, restore_rate=1_000_000)
    try:
        return run(stack, shop, args)
    finally:
        shop.stop()
        stack.close()


def run(stack, shop: FakeShopify, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    rt = stack.rt
    shop.add_location("Main")
    skus = [f"B-{n:06d}" for n in range(args.skus)]
    shop.add_variants(skus, available=0)
    configure(stack, shop=shop)
    sid = store_id(stack, STORE)
    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    set_erp_stock(stack, [(s, "MAIN", 10, t0) for s in skus])
    with rt.sessions() as session:
        store = rt.store_info(session.get(Store, sid))

    started = time.monotonic()
    variants.refresh(rt, store, sync_client(store))
    read_erp_stock(rt)
    setup = sync_inventory(rt, sid)
    print(
        f"setup (roomy bucket, not measured): {args.skus} SKUs, warm-up {shop.calls['graphql:productVariants']} "
        f"productVariants reads, first full sync {setup.changes} levels in {setup.write_calls} calls, "
        f"{time.monotonic() - started:.1f} s"
    )

    shop.set_budget(args.maximum, args.rate)  # small and full
    forget()  # a cold client: it learns the bucket from the shop's answers
    client = shopify_client(store)
    print(f"bucket now: maximumAvailable {args.maximum:g}, restoreRate {args.rate:g}/s\n")

    next_sku = 0
    clock = [t0]

    def change(n: int) -> None:
        nonlocal next_sku
        clock[0] += timedelta(minutes=1)
        set_erp_stock(stack, [(s, "MAIN", 20 + next_sku % 7, clock[0]) for s in skus[next_sku : next_sku + n]])
        next_sku += n

    def measure(label: str, rounds: int, per_round: int) -> dict:
        available = shop.graphql_bucket.available()
        calls, used, throttled = shop.calls[SET], shop.cost_used, shop.throttled
        waited, began = client.stats.waited, time.monotonic()
        changes = 0
        after_first: list[int] = []
        answered = client.transport.session.hooks["response"]  # requests calls these with every answer

        def note_first(answer: requests.Response, *args: object, **kwargs: object) -> None:
            """Notes the throttle count once the first call is answered."""
            if not after_first and answer.ok and "THROTTLED" not in answer.text[:300]:
                after_first.append(shop.throttled)

        answered.append(note_first)
        for _ in range(rounds):
            change(per_round)
            read_erp_stock(rt)
            report = sync_inventory(rt, sid, client=client)
            assert report.complete and not report.errors, report.summary()
            changes += report.changes
        seconds = time.monotonic() - began
        answered.remove(note_first)
        result = {
            "first_throttled": shop.throttled - (after_first[0] if after_first else shop.throttled),
            "label": label,
            "changes": changes,
            "calls": shop.calls[SET] - calls,
            "seconds": seconds,
            "used": shop.cost_used - used,
            "available_start": available,
            "offered": available + args.rate * seconds,
            "throttled": shop.throttled - throttled,
            "waited": client.stats.waited - waited,
        }
        result["use"] = result["used"] / result["offered"]
        result["minimum_wait"] = max(0.0, (result["used"] - available) / args.rate)
        return result

    sustained = measure("sustained", args.rounds, args.changes)
    time.sleep(args.maximum / args.rate + 0.2)  # the bench (not the client) lets the bucket fill up again
    fits = measure("budget allows", 1, args.fits)

    print(
        f"{'phase':<15}{'changes':>8}{'calls':>7}{'seconds':>9}{'points used':>13}{'offered':>9}{'use':>7}"
        f"{'throttled':>11}{'waited s':>10}{'min wait s':>12}"
    )
    for r in (sustained, fits):
        print(
            f"{r['label']:<15}{r['changes']:>8}{r['calls']:>7}{r['seconds']:>9.2f}{r['used']:>13.0f}"
            f"{r['offered']:>9.0f}{r['use']:>7.1%}{r['throttled']:>11}{r['waited']:>10.2f}{r['minimum_wait']:>12.2f}"
        )
    print(
        "\n'offered' = points in the bucket at the phase's start + restoreRate x seconds; 'min wait' = the least "
        "time the budget forces, (points used - points at the start) / restoreRate."
    )

    fit = int(min(250, args.maximum - 10))  # a mutation costs 10 + 1 per quantity
    ideal = args.rounds * -(-args.changes // fit)
    expected_calls, why = ideal, f"{args.rounds} x ceil({args.changes} / {fit})"
    if sustained["throttled"]:
        # The cold client's first request (250 quantities) is refused; it then sends what fits and the rest of
        # that 250 as a call of its own before settling into full batches of `fit`.
        first_round = (
            1 + -(-250 // fit) + -(-(args.changes - 250) // fit) if args.changes > 250 else 1 + -(-args.changes // fit)
        )
        expected_calls = first_round + (args.rounds - 1) * -(-args.changes // fit)
        why += (
            f" = {ideal}, + {expected_calls - ideal} for the cold start (the throttled request, and the rest "
            "of the 250-quantity batch it cut to size)"
        )
    checks = [
        ("budget allows: no sleep", fits["waited"] == 0.0, f"waited {fits['waited']:.2f} s"),
        ("sustained: >= 90% of the budget used", sustained["use"] >= 0.9, f"{sustained['use']:.1%}"),
        (
            "no throttled answer after the first",
            sustained["first_throttled"] + fits["throttled"] == 0,
            f"{sustained['throttled']} throttled in all "
            f"({sustained['throttled'] - sustained['first_throttled']} on the "
            f"cold client's first call, which learns the bucket; {sustained['first_throttled']} after it)",
        ),
        (
            "sleeps no longer than the budget forces",
            sustained["waited"] <= sustained["minimum_wait"] + 0.05,
            f"{sustained['waited']:.2f} s <= {sustained['minimum_wait']:.2f} s",
        ),
        (
            "calls = ceil(changes / what one call may carry) per round, + the cold start",
            sustained["calls"] == expected_calls,
            f"{sustained['calls']} requests, expected {expected_calls}: {why}",
        ),
    ]
    print()
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
