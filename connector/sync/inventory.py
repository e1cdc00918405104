"""What each store may sell, pushed to the store: only what changed, only what differs.

For one store, a run:
1. picks the ERP SKUs whose inputs changed since the store's last run (a mirrored stock row's
   `changed_at`, or any store's reservation of the SKU changing) — every SKU on a full run, or when the
   store's safety stock, share or mapping tables changed since the last run;
2. finds each SKU's storefront items (connector.sync.variants: the cache, or the store's API) and the
   store's locations with their warehouses (connector.orders.locations);
3. computes per (store SKU, location) the target
       sellable(Σ on hand in the location's warehouses, reserved, safety_stock, allocation_share)
   (mappings.inventory), where `reserved` is every store's unreleased order units of the SKU placed
   after the ERP last counted it there — the ERP's figure does not include them yet; plus, where
   stores split those warehouses, a unit the shares' rounding left over when this store's priority
   wins it (mappings.allocation, over every sharing store's settings: connector.sync.sharing);
4. writes only the targets that differ from what the store shows: its last reported figure (a
   webhook, a catalogue read, our own confirmed write) or, when none is known, what we last pushed;
5. records each written figure (before the call as pending, after it as confirmed), and moves the
   store's cursor only when the run finished without a retryable error, so a failed run is redone.

How a store holds and takes stock (per location or one figure per item, how items are found, how
figures are written) is its platform's `StockWriter` (platforms/<name>/stock.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from adapters.clock import utcnow
from adapters.storefront import StorefrontError
from connector.base.clients import sync_client
from connector.base.models import PushedLevel, Reservation, StockMirror, Store
from connector.base.runtime import Runtime, StoreInfo
from connector.base.stock import load_json_cursor, save_cursor
from connector.base.upsert import chunked, custom_plans, upsert
from connector.orders.lifecycle import merchant_tables
from connector.orders.locations import LocationMap, location_entries, store_locations
from connector.sync import variants as variant_cache
from connector.sync.sharing import StockRules, stock_rules
from mappings.allocation import Allotment, Claim, ranks, split
from mappings.inventory import StockRow, location_stock, sellable, store_skus
from platforms.registry import platform
from platforms.stock import LocationsChanged, Planned

log = logging.getLogger(__name__)

CURSOR = "store:{id}:inventory"
# Rows committed just before a run started can be invisible to it; looking back this far again
# recomputes them next time (cheap: unchanged figures are not written).
OVERLAP = timedelta(seconds=30)
LOCATIONS_TTL = timedelta(hours=1)  # a store's locations, once resolved, are asked again after this


@dataclass(frozen=True)
class Allocation:
    """What a figure is computed with besides stock: this store's safety stock and share, and every
    store's sharing rules (who splits which warehouses, and their priorities)."""

    safety: Decimal
    share: Decimal
    rules: StockRules


@dataclass
class SyncReport:
    store: str
    platform: str
    full: bool = False
    skus: int = 0  # ERP SKUs recomputed
    levels: int = 0  # (store SKU, location) figures computed
    changes: int = 0  # figures written to the store
    unchanged: int = 0  # already what the store shows
    skipped: Counter[str] = field(default_factory=Counter)  # why figures were not written, per reason
    examples: dict[str, list[str]] = field(default_factory=dict)  # a few SKUs per skip reason
    calls: Counter[str] = field(default_factory=Counter)  # store API requests made by this run, per operation
    write_calls: int = 0  # stock-writing requests (inventorySetQuantities, stock batches)
    stale_retries: int = 0
    throttled: int = 0
    waited: float = 0.0  # seconds the client slept for the store's rate limit
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    complete: bool = True  # False: a retryable failure; the next run redoes this one's SKUs
    splits: int = 0  # calls spent isolating items the store refused
    last_units: int = 0  # figures that got a unit the shared stock's rounding left over
    last_unit_examples: list[str] = field(default_factory=list)  # why, for a few of them

    def skip(self, reason: str, sku: str, n: int = 1) -> None:
        self.skipped[reason] += n
        examples = self.examples.setdefault(reason, [])
        if len(examples) < 5 and sku not in examples:
            examples.append(sku)

    def summary(self) -> str:
        calls = ", ".join(f"{op} {n}" for op, n in sorted(self.calls.items())) or "none"
        lines = [
            f"{self.store} ({self.platform}{', full' if self.full else ''}): {self.changes} change(s) written "
            f"in {self.write_calls} call(s); {self.unchanged} unchanged; {self.skus} SKU(s) recomputed, "
            f"{self.levels} figure(s); {self.seconds:.2f} s",
            f"  store API calls: {calls}; throttled {self.throttled}; waited {self.waited:.2f} s",
        ]
        if self.last_units:
            lines.append(
                f"  last unit: {self.last_units} figure(s) got a unit the shares' rounding left over, e.g. "
                + "; ".join(self.last_unit_examples)
            )
        for reason, n in sorted(self.skipped.items()):
            lines.append(f"  skipped {n}: {reason} (e.g. {', '.join(self.examples.get(reason, []))})")
        lines += [f"  note: {n}" for n in self.notes] + [f"  error: {e}" for e in self.errors]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "store": self.store,
            "platform": self.platform,
            "full": self.full,
            "skus": self.skus,
            "levels": self.levels,
            "changes": self.changes,
            "unchanged": self.unchanged,
            "skipped": dict(self.skipped),
            "calls": dict(self.calls),
            "write_calls": self.write_calls,
            "stale_retries": self.stale_retries,
            "errors": self.errors,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
            "complete": self.complete,
            "last_units": self.last_units,
            "last_unit_examples": self.last_unit_examples,
        }


def sync_inventory(rt: Runtime, store_id: int, full: bool = False, client: Any = None) -> SyncReport:
    began = time.monotonic()
    store = _store(rt, store_id)
    report = SyncReport(store.slug, store.platform)
    if not store.active:
        report.notes.append("store inactive: nothing written")
        return report
    started = utcnow()  # the next run looks for changes after this (less OVERLAP)
    sku_map = merchant_tables(rt, store.id).sku
    entries = location_entries(rt, store.id)
    safety = _decimal(store.settings.get("safety_stock"), Decimal(0), "safety_stock", report)
    share = _decimal(store.settings.get("allocation_share"), Decimal(1), "allocation_share", report)
    rules = stock_rules(rt)
    fingerprint = _fingerprint(safety, share, sku_map, entries, rules)
    state = load_json_cursor(rt, CURSOR.format(id=store.id))
    since = _since(state)
    report.full = full or since is None or state.get("fingerprint") != fingerprint
    erp_skus = _dirty_skus(rt, None if report.full else since)
    report.skus = len(erp_skus)
    if erp_skus:
        writer = platform(store.platform).stock
        client = client or sync_client(store)
        stats = client.stats
        calls_before, throttled_before, waited_before = Counter(stats.calls), stats.throttled, stats.waited
        try:
            locations, location_state = _locations(rt, store, client, entries, state, fingerprint, report.full)
            if locations.note:
                report.notes.append(locations.note)
            plan = _plan(rt, store, client, erp_skus, sku_map, locations, Allocation(safety, share, rules), report)
            if plan:
                _record(rt, store.id, plan, confirmed=False)
                writer.write(_Run(rt, store, report), client, plan)
        except StorefrontError as exc:
            report.errors.append(str(exc))
            report.complete = False
            if isinstance(exc, LocationsChanged):  # keep the cursor, forget the resolved locations
                save_cursor(
                    rt, CURSOR.format(id=store.id), json.dumps({k: v for k, v in state.items() if k != "locations"})
                )
        finally:
            report.calls = Counter(stats.calls) - calls_before
            report.throttled = stats.throttled - throttled_before
            report.waited = stats.waited - waited_before
            report.write_calls = report.write_calls or report.calls.get(writer.write_op, 0)
    if report.complete:
        saved: dict[str, Any] = {"at": started.isoformat(), "fingerprint": fingerprint}
        if erp_skus:
            saved["locations"] = location_state
        elif "locations" in state and state.get("fingerprint") == fingerprint:  # still valid: keep it
            saved["locations"] = state["locations"]
        save_cursor(rt, CURSOR.format(id=store.id), json.dumps(saved))
    report.seconds = time.monotonic() - began
    log.info(
        "inventory %s: %d change(s), %d unchanged, %d call(s)%s",
        store.slug,
        report.changes,
        report.unchanged,
        sum(report.calls.values()),
        f", errors: {report.errors}" if report.errors else "",
    )
    return report


# ---- inputs ---------------------------------------------------------------------------------------


def _store(rt: Runtime, store_id: int) -> StoreInfo:
    with rt.sessions() as session:
        row = session.get(Store, store_id)
        if row is None:
            raise StorefrontError(f"no store with id {store_id}", retryable=False)
        return rt.store_info(row)


def _decimal(value: Any, default: Decimal, name: str, report: SyncReport) -> Decimal:
    if value in (None, ""):
        return default
    try:
        return Decimal(str(value))
    except InvalidOperation:
        report.notes.append(f"store setting {name}={value!r} is not a number; using {default}")
        return default


def _fingerprint(
    safety: Decimal,
    share: Decimal,
    sku_map: dict[str, str],
    entries: tuple[dict[str, str], dict[str, str]],
    rules: StockRules,
) -> str:
    """What every figure depends on besides stock and orders: a change of it recomputes every SKU. That
    includes the other stores' shares and priorities: they decide who gets a unit rounding left over."""
    text = json.dumps(
        [
            str(safety),
            str(share),
            sorted(sku_map.items()),
            sorted(entries[0].items()),
            sorted(entries[1].items()),
            rules.fingerprint(),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _since(state: dict) -> datetime | None:
    try:
        return datetime.fromisoformat(state["at"]) - OVERLAP
    except (KeyError, TypeError, ValueError):
        return None


def _locations(
    rt: Runtime,
    store: StoreInfo,
    client: Any,
    entries: tuple[dict[str, str], dict[str, str]],
    state: dict,
    fingerprint: str,
    full: bool,
) -> tuple[LocationMap, dict]:
    """The store's locations and their warehouses, as resolved by a recent run (kept LOCATIONS_TTL with
    the cursor, so a run with little to do asks the store nothing), else asked afresh."""
    kept = state.get("locations")
    if not full and isinstance(kept, dict) and state.get("fingerprint") == fingerprint:
        try:
            fresh = utcnow() - datetime.fromisoformat(kept["at"]) < LOCATIONS_TTL
            if fresh:
                return LocationMap(
                    {loc: None if whs is None else frozenset(whs) for loc, whs in kept["warehouses"].items()},
                    kept.get("names") or {},
                    kept.get("note") or "",
                ), kept
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    found = store_locations(rt, store, client, entries)
    return found, {
        "at": utcnow().isoformat(),
        "warehouses": {loc: None if whs is None else sorted(whs) for loc, whs in found.warehouses.items()},
        "names": found.names,
        "note": found.note,
    }


def _dirty_skus(rt: Runtime, since: datetime | None) -> set[str]:
    """ERP SKUs whose stock or reservations changed after `since` (None: every SKU the ERP has)."""
    with rt.sessions() as session:
        if since is None:
            return set(session.scalars(select(StockMirror.sku).distinct()))
        skus = set(session.scalars(select(StockMirror.sku).where(StockMirror.changed_at > since).distinct()))
        skus |= set(session.scalars(select(Reservation.sku).where(Reservation.changed_at > since).distinct()))
    return skus


def _stock(rt: Runtime, skus: Sequence[str]) -> dict[str, list[StockRow]]:
    found: dict[str, list[StockRow]] = {}
    with rt.sessions() as session:
        custom_plans(session)
        for part in chunked(skus):
            for r in session.execute(
                select(StockMirror.sku, StockMirror.warehouse, StockMirror.on_hand, StockMirror.erp_updated_at).where(
                    StockMirror.sku.in_(list(part))
                )
            ):
                found.setdefault(r.sku, []).append(StockRow(r.warehouse, Decimal(r.on_hand), r.erp_updated_at))
    return found


def _reservations(rt: Runtime, skus: Sequence[str]) -> dict[str, list[tuple[int, datetime]]]:
    """Every store's held units per SKU: a sale in one store lowers what the others may sell."""
    found: dict[str, list[tuple[int, datetime]]] = {}
    with rt.sessions() as session:
        custom_plans(session)
        for part in chunked(skus):
            for r in session.execute(
                select(Reservation.sku, Reservation.quantity, Reservation.placed_at).where(
                    Reservation.sku.in_(list(part)), Reservation.released.is_(False)
                )
            ):
                found.setdefault(r.sku, []).append((int(r.quantity), r.placed_at))
    return found


def _levels(rt: Runtime, store_id: int, skus: Sequence[str]) -> dict[tuple[str, str], PushedLevel]:
    found: dict[tuple[str, str], PushedLevel] = {}
    with rt.sessions() as session:
        custom_plans(session)
        for part in chunked(skus):
            for row in session.scalars(
                select(PushedLevel).where(PushedLevel.store_id == store_id, PushedLevel.sku.in_(list(part)))
            ):
                found[(row.sku, row.location)] = row
        session.expunge_all()
    return found


def store_figure(level: PushedLevel | None) -> int | None:
    """What the store shows, as far as we know: its last report, else our last confirmed write."""
    if level is None:
        return None
    if level.reported is not None:
        return level.reported
    return level.pushed if level.pushed_at is not None else None


def _plan(
    rt: Runtime,
    store: StoreInfo,
    client: Any,
    erp_skus: set[str],
    sku_map: dict[str, str],
    locations: LocationMap,
    allocation: Allocation,
    report: SyncReport,
) -> list[Planned]:
    ordered = sorted(erp_skus)
    selling = {erp: store_skus(erp, sku_map) for erp in ordered}
    wanted = sorted({s for skus in selling.values() for s in skus})
    found = variant_cache.resolve(rt, store, client, wanted, full=report.full)
    stock = _stock(rt, ordered)
    held = _reservations(rt, ordered)
    levels = _levels(rt, store.id, wanted)
    plan: list[Planned] = []
    for erp in ordered:
        rows, reservations = stock.get(erp, []), held.get(erp, [])
        targets = {
            loc: _allotment(store.slug, erp, whs, location_stock(rows, whs, reservations), allocation)
            for loc, whs in locations.warehouses.items()
        }
        for sku in selling[erp]:
            variant = found.get(sku)
            if variant is None or not variant.exists:
                report.skip("not in the store", sku)
                continue
            if not variant.manage_stock:
                report.skip("the store does not manage this item's stock (or its parent product does)", sku)
                continue
            for loc, allotment in targets.items():
                if allotment is None:
                    report.skip("the ERP has no stock row in the location's warehouses", sku)
                    continue
                target = allotment.total
                if allotment.extra:
                    by_sku = erp in allocation.rules.orders
                    _explain(report, sku, locations.names.get(loc) or loc, allotment, allocation.share, by_sku)
                report.levels += 1
                level = levels.get((sku, loc))
                if store_figure(level) == target:
                    report.unchanged += 1
                    continue
                plan.append(Planned(sku, loc, variant, target, level.reported if level is not None else None))
    return plan


def _allotment(
    slug: str,
    erp_sku: str,
    warehouses: frozenset[str] | None,
    stock: Decimal | None,
    allocation: Allocation,
) -> Allotment | None:
    """This store's figure for stock it may share: its part by share, and a unit rounding left over when the
    split over every store selling from exactly these warehouses gives it one (the same split whichever
    store computes it). None when the ERP has no figure there."""
    if stock is None:
        return None
    rules = allocation.rules
    group = rules.group(warehouses)
    if not group or slug not in {s.store for s in group}:
        return Allotment(sellable(stock, Decimal(0), allocation.safety, allocation.share))
    ranked, offline = ranks(rules.orders.get(erp_sku), {s.store: s.priority for s in group}, rules.offline_priority)
    claims = [
        Claim(s.store, stock - s.safety, s.share if s.share is not None else Decimal(1), ranked[s.store]) for s in group
    ]
    return split(claims, offline).stores[slug]


def _explain(report: SyncReport, sku: str, location: str, allotment: Allotment, share: Decimal, by_sku: bool) -> None:
    report.last_units += 1
    if len(report.last_unit_examples) < 5:
        place = (allotment.priority or 0) + 1
        rank = f"{_ordinal(place)} in the SKU's own order" if by_sku else f"priority {allotment.priority}"
        report.last_unit_examples.append(
            f"{sku} at {location}: {allotment.by_share} by share {share} + 1 left by rounding ({rank})"
        )


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


# ---- writing --------------------------------------------------------------------------------------


def _record(rt: Runtime, store_id: int, done: Sequence[Planned], confirmed: bool) -> None:
    """Before a call: the figure we are about to write (pending: `pushed_at` empty), so the store's echo
    of it is recognised even if it arrives before the call returns. After: confirmed, and it is what
    the store shows now."""
    if not done:
        return
    now = utcnow()
    rows = [
        {
            "store_id": store_id,
            "sku": p.sku,
            "location": p.location,
            "pushed": p.target,
            "reported": p.target if confirmed else p.reported,
            "pushed_at": now if confirmed else None,
        }
        for p in done
    ]
    with rt.sessions.begin() as session:
        upsert(
            session,
            PushedLevel.__table__,
            rows,
            ("store_id", "sku", "location"),
            ("pushed", "reported", "pushed_at") if confirmed else ("pushed", "pushed_at"),
        )


def _record_reported(rt: Runtime, store_id: int, figures: Mapping[tuple[str, str], int]) -> None:
    rows = [{"store_id": store_id, "sku": sku, "location": loc, "reported": qty} for (sku, loc), qty in figures.items()]
    with rt.sessions.begin() as session:
        upsert(session, PushedLevel.__table__, rows, ("store_id", "sku", "location"), ("reported",))


def _confirmed(rt: Runtime, store_id: int, done: Sequence[Planned], report: SyncReport, written: bool = True) -> None:
    _record(rt, store_id, done, confirmed=True)
    if written:
        report.changes += len(done)
    else:
        report.unchanged += len(done)


@dataclass
class _Run:
    """One store's run as its platform's writer reports to it (platforms.stock.StockRun)."""

    rt: Runtime
    store: StoreInfo
    report: SyncReport

    @property
    def store_id(self) -> int:
        return self.store.id

    @property
    def slug(self) -> str:
        return self.store.slug

    @property
    def splits(self) -> int:
        return self.report.splits

    @splits.setter
    def splits(self, value: int) -> None:
        self.report.splits = value

    @property
    def stale_retries(self) -> int:
        return self.report.stale_retries

    @stale_retries.setter
    def stale_retries(self, value: int) -> None:
        self.report.stale_retries = value

    @property
    def write_calls(self) -> int:
        return self.report.write_calls

    @write_calls.setter
    def write_calls(self, value: int) -> None:
        self.report.write_calls = value

    def confirmed(self, done: Sequence[Planned], written: bool = True) -> None:
        _confirmed(self.rt, self.store.id, done, self.report, written)

    def reported(self, figures: Mapping[tuple[str, str], int]) -> None:
        _record_reported(self.rt, self.store.id, figures)

    def skip(self, reason: str, sku: str) -> None:
        self.report.skip(reason, sku)

    def incomplete(self, message: str) -> None:
        self.report.errors.append(message)
        self.report.complete = False
