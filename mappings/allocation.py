"""Stock that several stores sell from: each store's part by its share, and who gets the units that
rounding down leaves over (pure).

The stores that sell from the same warehouses split the free stock by `allocation_share`, each part
rounded down, so some units are nobody's. Those go out one at a time, in priority order (lower
first), at most one each: to a store that rounding took part of a unit from, and to the ERP's own
channels ("offline": a shop counter selling from the same on-hand figure) when the merchant ranks
them. An unranked store takes none, so by default every such unit stays offline, as before. Offline's
part is what the stores' shares leave (1 − their sum); everything offered stays within the free
stock, and every store computes the same split from the same settings, whichever syncs first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from mappings.inventory import sellable

OFFLINE = "offline"  # the word that ranks the ERP's own channels in a per-SKU priority order


@dataclass(frozen=True)
class Claim:
    """One store's claim on stock it shares: the free stock as it counts it (its own safety stock off)."""

    store: str
    free: Decimal
    share: Decimal  # allocation_share; 1 when not set
    priority: int | None = None  # None: takes no unit left by rounding


@dataclass(frozen=True)
class Allotment:
    by_share: int  # ⌊free × share⌋
    extra: int = 0  # a unit rounding left over, given by priority (0 or 1)
    priority: int | None = None

    @property
    def total(self) -> int:
        return self.by_share + self.extra


@dataclass(frozen=True)
class Split:
    stores: dict[str, Allotment]
    offline: Allotment  # offline's own part (1 − Σ shares) and the unit its rank won, if any
    held: int  # units left by rounding that no ranked party took: they stay offline too


def split(claims: Sequence[Claim], offline_priority: int | None = None) -> Split:
    """Each claim's part, and the units the parts' rounding left given out by priority.

    No unit is given out when the shares add up to more than 1 (stores not splitting, such as two that
    leave allocation_share unset): then each store keeps its rounded-down part alone, as before. With
    different safety stocks the leftover is counted from the smallest free stock, so a unit handed out
    never takes the whole past what the strictest store thinks is free. Ties go to the larger lost
    fraction, then offline, then the store's name: the same answer for every store that computes it.
    """
    shares = {c.store: min(max(c.share, Decimal(0)), Decimal(1)) for c in claims}
    exact = {c.store: max(c.free, Decimal(0)) * shares[c.store] for c in claims}
    parts = {c.store: sellable(c.free, Decimal(0), Decimal(0), shares[c.store]) for c in claims}
    free = min((c.free for c in claims), default=Decimal(0))
    total = sum(shares.values(), Decimal(0))
    if free <= 0 or total > 1:
        return Split({c.store: Allotment(parts[c.store], 0, c.priority) for c in claims}, Allotment(0), 0)
    offline_exact = free * (1 - total)
    offline_part = math.floor(offline_exact)
    left = max(0, math.floor(free) - sum(parts.values()) - offline_part)
    # (priority, the larger lost fraction first, offline before stores, name): a total order
    queue = sorted(
        (c.priority, parts[c.store] - exact[c.store], 1, c.store)
        for c in claims
        if c.priority is not None and exact[c.store] > parts[c.store]
    )
    if offline_priority is not None:
        queue.append((offline_priority, offline_part - offline_exact, 0, ""))
        queue.sort()
    winners = {name for _, _, _, name in queue[:left]}
    stores = {c.store: Allotment(parts[c.store], int(c.store in winners), c.priority) for c in claims}
    offline = Allotment(offline_part, int("" in winners), offline_priority)
    return Split(stores, offline, left - len(winners))


# ---- who shares what (from the stores' settings and the location table) ---------------------------


@dataclass(frozen=True)
class Sharer:
    """An active store as its settings describe it: what it sells from and its allocation rules."""

    store: str
    share: Decimal | None  # None: not set — the store sells all it sees and splits nothing
    safety: Decimal
    priority: int | None
    sells_from: frozenset[frozenset[str] | None]  # its locations' warehouse sets (None: every warehouse)


def _overlap(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    return a is None or b is None or bool(a & b)


def sharing(sharers: Sequence[Sharer], warehouses: frozenset[str] | None) -> list[Sharer] | None:
    """The stores that sell from exactly these warehouses, or None when a store sells from some of them
    along with others (or a store does through two different sets): its part is counted from other
    stock, so a split here could not be trusted to add up, and nobody gets the units left by rounding."""
    group = []
    for s in sharers:
        if any(ws != warehouses and _overlap(ws, warehouses) for ws in s.sells_from):
            return None
        if warehouses in s.sells_from:
            group.append(s)
    return group


@dataclass(frozen=True)
class ShareConflict:
    stores: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return self.message


def share_conflicts(sharers: Sequence[Sharer], involving: set[str] | None = None) -> list[ShareConflict]:
    """Per group of stores that sell from a common warehouse: their allocation_share adding up to more
    than 1 (only stores that set one: a store without it splits nothing). Only groups with a store in
    `involving`, when given, so an edit is refused for what it touches, not for an older problem."""
    named = sorted({w for s in sharers for ws in s.sells_from if ws is not None for w in ws})
    found: dict[tuple[str, ...], list[str | None]] = {}
    for warehouse in (*named, None):  # None: every warehouse no mapping names
        members = tuple(
            sorted(
                s.store
                for s in sharers
                if s.share is not None
                and any(ws is None or (warehouse is not None and warehouse in ws) for ws in s.sells_from)
            )
        )
        if len(members) > 1:
            found.setdefault(members, []).append(warehouse)
    by_store = {s.store: s.share for s in sharers}
    problems = []
    for members, warehouses in found.items():
        total = sum((by_store[m] or Decimal(0) for m in members), Decimal(0))
        if total <= 1 or (involving is not None and not involving & set(members)):
            continue
        where = ", ".join(w for w in warehouses if w is not None)
        if None in warehouses:  # the stores without a location mapping: every warehouse
            where = f"{where} and every other warehouse" if where else "every warehouse"
        listed = ", ".join(f"{m} ({_plain(by_store[m])})" for m in members)
        problems.append(
            ShareConflict(
                members,
                f"allocation_share of {listed} adds up to {_plain(total)} for {where}, which they all sell "
                "from: lower them to 1 or less together, or the stores are offered the same units twice",
            )
        )
    return problems


def _plain(value: Decimal | None) -> str:
    text = format(value or Decimal(0), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# ---- priorities -------------------------------------------------------------------------------------


def parse_order(text: str) -> list[str]:
    """A per-SKU priority order: store slugs and `offline`, comma-separated, first goes first."""
    return [name.strip().lower() for name in text.split(",") if name.strip()]


def order_problems(text: str, stores: set[str]) -> list[str]:
    names = parse_order(text)
    problems = [f"no store {n!r} (use store slugs and {OFFLINE})" for n in names if n != OFFLINE and n not in stores]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.append(f"named twice: {', '.join(twice)}")
    if not names:
        problems.append(f"name at least one store or {OFFLINE}")
    return problems


def ranks(
    order: str | None, priorities: Mapping[str, int | None], offline_priority: int | None
) -> tuple[dict[str, int | None], int | None]:
    """(each store's rank, offline's rank) for one SKU: its own order when it has one (those it leaves
    out take no unit), else the stores' `stock_priority` and the ERP's `offline_stock_priority`."""
    if order is None:
        return dict(priorities), offline_priority
    names = parse_order(order)
    position = {n: i for i, n in enumerate(names)}
    return {s: position.get(s) for s in priorities}, position.get(OFFLINE)
