"""The back office's side of the chaos run: what the ERP decides while the webhooks and the faults go on.

Finance records the money of cash-on-delivery orders once they are in the ERP, and the returns desk credits
some paid orders itself (a goodwill refund at the counter). Meanwhile `connector sync-receipts` and
`connector sync-refunds` run as the scheduler would, through the same ERP that fails a share of its calls,
and every round one of them is killed with SIGKILL partway, as a deploy or an out-of-memory kill would.
Afterwards each receipted order must be marked paid in its store exactly once, each credit note refunded
in its store exactly once (its note names the credit note), and no store refund may come back to the ERP
as a second credit note. Routing is checked on the ERP's orders: each routed store's order carries the
warehouse its shipping country names.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from mappings.canonical import ErpRefund, ErpRefundLine, Money, Receipt
from mappings.refund_notes import names_credit_note
from tests.fakes.rest_erp import FakeRestErp
from tests.fakes.shopify import FakeShopify

GOODWILL = Decimal("1.00")  # what the returns desk gives back: one unit, not restocked


@dataclass
class FeedTally:
    receipts: int = 0  # receipts finance recorded (one per COD order in the ERP)
    marked_once: int = 0  # of their orders, those marked paid in the store exactly once
    credit_notes: int = 0  # credit notes the returns desk made
    refunded_once: int = 0  # of them, those refunded in the store exactly once
    runs: int = 0  # sync commands started
    killed: int = 0  # of them, killed partway
    routed: int = 0  # orders of the routed store in the ERP
    routed_right: int = 0  # of them, with the warehouse their destination names

    def line(self) -> str:
        return (
            f"back office: {self.marked_once} of {self.receipts} receipted orders marked paid once, "
            f"{self.refunded_once} of {self.credit_notes} ERP credit notes refunded once "
            f"({self.runs} sync runs, {self.killed} killed partway); "
            f"{self.routed_right} of {self.routed} routed orders on their warehouse"
        )


class BackOffice:
    """Receipts and credit notes made in the fake ERP for orders it already holds, the syncs that carry them
    to the stores, and the proof that each acted once."""

    def __init__(self, erp: FakeRestErp, shops: dict[str, FakeShopify], routes: dict[str, str]):
        self.erp, self.shops = erp, shops
        self.routes = routes  # shipping country -> warehouse, for the routed store ("*": anywhere else)
        self.cod: dict[str, int] = {}  # order ref -> Shopify order id: left unpaid, collected on delivery
        self.credit: dict[str, int] = {}  # order ref -> Shopify order id: the returns desk will credit it
        self.routed: dict[str, str] = {}  # order ref -> the shipping country of the routed store's order
        self.receipted: set[str] = set()
        self.credited: dict[str, str] = {}  # order ref -> credit note ref
        self.skus: dict[str, str] = {}  # order ref -> the SKU the credit note gives one unit of
        self.tally = FeedTally()
        self.victim = "sync-receipts"  # the sync to kill next: the same one until a kill lands
        self.quickest = 0.0  # the quickest whole sync run so far (0: none yet)

    # ---- the ERP's decisions ----------------------------------------------------------------------

    def decide(self) -> None:
        """Finance and the returns desk act on what the ERP holds now (an order they cannot see yet waits)."""
        with self.erp._lock:
            held = {ref: (doc["currency"], Decimal(doc["totals"]["total"])) for ref, doc in self.erp.orders.items()}
        now = datetime.now(UTC)
        for ref in sorted(set(self.cod) - self.receipted):
            if ref in held:
                currency, total = held[ref]
                self.erp.add_receipt(Receipt(f"RC-{ref}", ref, Money(total, currency), now, "cod"))
                self.receipted.add(ref)
        for ref in sorted(set(self.credit) - set(self.credited)):
            if ref in held:
                currency = held[ref][0]
                amount = Money(GOODWILL, currency)
                note = f"CN-{ref.rsplit(':', 1)[1]}"
                line = ErpRefundLine(self.skus[ref], 1, amount, False)
                self.erp.add_refund(ErpRefund(note, ref, (line,), Money(Decimal(0), currency), amount, now, "goodwill"))
                self.credited[ref] = note

    def sync(self, env: dict[str, str], binary: Path, logs: Path, kill: bool) -> None:
        """Both syncs; with `kill`, the victim is killed (SIGKILL) partway: as soon as its first store call of the
        run has been answered (a store call made, its binding maybe not yet committed), or, for a run with no store
        call to make yet, halfway through the quickest whole run seen. It stays the victim until a kill lands, then
        it is the other sync (receipts, then refunds). (Killed at 70-95% of its own last run's time instead, every
        run escaped once runs got quicker as the sale's load eased.)"""
        for feed in ("sync-receipts", "sync-refunds"):
            self.tally.runs += 1
            victim = kill and feed == self.victim
            before, began = self._store_calls(feed), time.monotonic()
            cut = began + (self.quickest / 2 if victim and self.quickest else 120)
            with (logs / f"{feed}.log").open("a") as out:
                proc = subprocess.Popen(
                    [str(binary), feed], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
                while proc.poll() is None:
                    if (victim and self._store_calls(feed) > before) or time.monotonic() > cut:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                        if victim:
                            self.tally.killed += 1
                            self.victim = "sync-refunds" if feed == "sync-receipts" else "sync-receipts"
                        break
                    time.sleep(0.002)
                else:
                    took = time.monotonic() - began
                    self.quickest = min(self.quickest or took, took)

    def _store_calls(self, feed: str) -> int:
        """The store calls only this sync makes, over every shop: orders marked paid, or refunds made."""
        op = "graphql:orderMarkAsPaid" if feed == "sync-receipts" else "graphql:refundCreate"
        return sum(shop.calls[op] for shop in self.shops.values())

    # ---- the proof --------------------------------------------------------------------------------

    def _store_order(self, ref: str) -> dict:
        _, slug, order_id = ref.split(":")
        return self.shops[slug].orders[int(order_id)]

    def _marked(self, ref: str) -> int:
        _, slug, order_id = ref.split(":")
        return self.shops[slug].marked_paid.count(int(order_id))

    def _refunded(self, ref: str) -> int:
        refunds = self._store_order(ref).get("refunds") or []
        return sum(names_credit_note(r.get("note") or "", self.credited[ref]) for r in refunds)

    def pending(self) -> bool:
        """Whether a receipt or a credit note has not reached its store yet."""
        return any(self._marked(ref) == 0 for ref in self.receipted) or any(
            self._refunded(ref) == 0 for ref in self.credited
        )

    def problems(self) -> list[str]:
        found = [f"{ref} marked paid {n} times" for ref in sorted(self.receipted) if (n := self._marked(ref)) != 1]
        found += [
            f"{ref}: credit note {self.credited[ref]} refunded in the store {n} times"
            for ref in sorted(self.credited)
            if (n := self._refunded(ref)) != 1
        ]
        with self.erp._lock:
            found += [f"store refund {key} came back to the ERP as a credit note" for key in self.erp.credit_notes]
            warehouses = {ref: self.erp.orders[ref].get("warehouse") for ref in self.routed if ref in self.erp.orders}
        found += [
            f"{ref} ships from {got!r}, its destination {self.routed[ref]} names {self.warehouse(ref)!r}"
            for ref, got in sorted(warehouses.items())
            if got != self.warehouse(ref)
        ]
        t = self.tally
        t.receipts, t.credit_notes, t.routed = len(self.receipted), len(self.credited), len(warehouses)
        t.marked_once = sum(self._marked(ref) == 1 for ref in self.receipted)
        t.refunded_once = sum(self._refunded(ref) == 1 for ref in self.credited)
        t.routed_right = sum(got == self.warehouse(ref) for ref, got in warehouses.items())
        return found

    def warehouse(self, ref: str) -> str:
        return self.routes.get(self.routed[ref], self.routes["*"])


def wait_settled(office: BackOffice, env: dict[str, str], binary: Path, logs: Path, timeout: float) -> None:
    """After the faults: the syncs run again (as the scheduler's next runs would) until every receipt and
    credit note reached its store, or the time is up (a retry waits for the next run)."""
    deadline = time.monotonic() + timeout
    office.decide()
    while time.monotonic() < deadline:
        office.sync(env, binary, logs, kill=False)
        if not office.pending():
            return
        time.sleep(0.5)
