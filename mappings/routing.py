"""Which warehouse ships an order (pure): the merchant's routing rules.

A store's setting `routing` holds the rules:

    routing:
      by_destination: {DE: BER, US-CA: LAX, "*": MAIN}  # shipping country, or country-region, to a warehouse
      warehouses: [MAIN, BER]   # with stock_check, tried after the destination's warehouse, in this order
      stock_check: true         # the first warehouse with stock for every line ships the whole order
      split: false              # none has it all: each line from the first warehouse with stock for it

`route` decides from the order's shipping address and the stock it is given; the same order and stock
always give the same answer. No setting, or an empty one, routes nothing: the ERP's default warehouse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mappings.canonical import Order, OrderLine

RULE_NAMES = ("by_destination", "warehouses", "stock_check", "split")
ANYWHERE = "*"
NAME_MAX = 64  # a warehouse code, as the stock mirror keeps it


class RoutingError(ValueError):
    """The routing setting cannot be read: the message names the rule and what it takes."""


@dataclass(frozen=True)
class RoutingRules:
    by_destination: tuple[tuple[str, str], ...] = ()  # (DE | US-CA | *, warehouse), as the merchant listed them
    warehouses: tuple[str, ...] = ()
    stock_check: bool = False
    split: bool = False

    @property
    def any(self) -> bool:
        return bool(self.by_destination or (self.stock_check and self.warehouses))

    def destination_warehouse(self, order: Order) -> tuple[str | None, str]:
        """The warehouse the shipping address names, and the destination as the rule wrote it ("" if none):
        country-region first, then the country, then "*"."""
        address = order.shipping_address
        country = (address.country_code if address else "").strip().upper()
        region = (address.region if address else "").strip().upper()
        table = dict(self.by_destination)
        for key in (f"{country}-{region}" if country and region else "", country, ANYWHERE):
            if key and key in table:
                return table[key], key
        return None, ""


@dataclass(frozen=True)
class Routing:
    """Where the order ships from: one warehouse for the order (None: the ERP's default), each line's
    by its external id (a split order has several), and why, for the console and the audit log."""

    warehouse: str | None
    lines: tuple[tuple[str, str | None], ...]
    reason: str

    @property
    def split(self) -> bool:
        return len({w for _, w in self.lines if w}) > 1

    def line_warehouse(self, line: OrderLine) -> str | None:
        """A line's warehouse; a line the decision did not see (added by a later edit) ships with the order."""
        return dict(self.lines).get(line.external_id, self.warehouse)

    def describe(self) -> str:
        if self.warehouse is None and not self.split:
            return f"not routed: the ERP's default warehouse ({self.reason})"
        return f"routed to {self.warehouse} ({self.reason})"


def rules_from_setting(value: Any) -> RoutingRules:
    """The rules a store's `routing` setting holds; RoutingError naming the first one that is wrong."""
    if value in (None, "", {}):
        return RoutingRules()
    if not isinstance(value, dict):
        raise RoutingError(f"routing: a mapping of rules ({', '.join(RULE_NAMES)})")
    unknown = sorted(set(value) - set(RULE_NAMES))
    if unknown:
        raise RoutingError(f"routing: unknown rule {unknown[0]!r}; the rules are {', '.join(RULE_NAMES)}")
    table = value.get("by_destination") or {}
    if not isinstance(table, dict):
        raise RoutingError('routing.by_destination: a mapping of destination to warehouse, e.g. {DE: BER, "*": MAIN}')
    by_destination = []
    for key, warehouse in table.items():
        destination = _destination(key)
        by_destination.append((destination, _warehouse(warehouse, f"routing.by_destination.{destination}")))
    if len({d for d, _ in by_destination}) != len(by_destination):
        raise RoutingError("routing.by_destination: a destination is listed twice")
    listed = value.get("warehouses") or []
    if isinstance(listed, str):
        listed = listed.split(",")
    if not isinstance(listed, list):
        raise RoutingError("routing.warehouses: a list of warehouse codes, e.g. [MAIN, BER]")
    warehouses = [_warehouse(w, "routing.warehouses") for w in listed if not isinstance(w, str) or w.strip()]
    flags = {}
    for name in ("stock_check", "split"):
        flag = value.get(name, False)
        if not isinstance(flag, bool):
            raise RoutingError(f"routing.{name}: true or false")
        flags[name] = flag
    if flags["split"] and not flags["stock_check"]:
        raise RoutingError("routing.split: only with stock_check: true (a split follows the stock)")
    return RoutingRules(
        by_destination=tuple(by_destination),
        warehouses=tuple(dict.fromkeys(warehouses)),
        stock_check=flags["stock_check"],
        split=flags["split"],
    )


def rules_to_setting(rules: RoutingRules) -> dict[str, Any]:
    """The setting that reads back as these rules (what `config dump` and the form show)."""
    out: dict[str, Any] = {}
    if rules.by_destination:
        out["by_destination"] = dict(rules.by_destination)
    if rules.warehouses:
        out["warehouses"] = list(rules.warehouses)
    if rules.stock_check:
        out["stock_check"] = True
    if rules.split:
        out["split"] = True
    return out


def _destination(key: Any) -> str:
    text = str(key).strip().upper() if isinstance(key, str | int) else ""
    country, _, region = text.partition("-")
    if text == ANYWHERE or (
        len(country) == 2 and country.isalpha() and (not region or (region.isalnum() and len(region) <= 8))
    ):
        return text
    raise RoutingError(
        f"routing.by_destination: {key!r} is no destination; a country code (DE), a country-region (US-CA) or *"
    )


def _warehouse(value: Any, where: str) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > NAME_MAX or any(ord(c) < 32 for c in name):
        raise RoutingError(f"{where}: a warehouse code of 1 to {NAME_MAX} characters, not {value!r}")
    return name


def route(order: Order, rules: RoutingRules, available: Mapping[tuple[str, str], Decimal]) -> Routing:
    """Where this order ships from. `available` is the free stock per (sku, warehouse); a pair it lacks has
    none. Lines without a SKU or that ship nothing are not checked: they ship with the order."""
    home, destination = rules.destination_warehouse(order)
    where = f"destination {destination}" if destination and destination != ANYWHERE else "any destination"
    if not rules.stock_check:
        if home is None:
            return _whole(order, None, "no routing rule for the destination")
        return _whole(order, home, where)
    wanted: dict[str, int] = {}
    for line in _checked(order):
        wanted[line.sku or ""] = wanted.get(line.sku or "", 0) + line.current_quantity
    candidates = list(dict.fromkeys([w for w in (home, *rules.warehouses) if w]))
    if not wanted:
        return _whole(order, home, f"{where}, nothing to check stock for")
    for warehouse in candidates:
        if all(available.get((sku, warehouse), Decimal(0)) >= n for sku, n in wanted.items()):
            detail = "stock for every line" if warehouse == home else f"stock for every line, not at {home}"
            return _whole(order, warehouse, f"{where}, {detail}" if home else detail)
    if not rules.split:
        fallback = f"the destination's {home}" if home else "the ERP's default"
        return _whole(order, home, f"{where}, no warehouse has stock for every line: {fallback}")
    return _split(order, home, where, candidates, available)


def _checked(order: Order) -> list[OrderLine]:
    return [line for line in order.lines if line.sku and line.requires_shipping and line.current_quantity > 0]


def _whole(order: Order, warehouse: str | None, reason: str) -> Routing:
    return Routing(warehouse, tuple((line.external_id, warehouse) for line in order.lines), reason)


def _split(
    order: Order,
    home: str | None,
    where: str,
    candidates: list[str],
    available: Mapping[tuple[str, str], Decimal],
) -> Routing:
    """Each checked line from the first warehouse with stock for it, taking what earlier lines took; a
    line no warehouse has stock for ships from the destination's warehouse."""
    left = dict(available)
    picked: dict[str, str | None] = {}
    short = []
    for line in _checked(order):
        sku = line.sku or ""
        found = next(
            (w for w in candidates if left.get((sku, w), Decimal(0)) >= line.current_quantity),
            None,
        )
        if found is None:
            short.append(sku)
            picked[line.external_id] = home
            continue
        left[(sku, found)] = left.get((sku, found), Decimal(0)) - line.current_quantity
        picked[line.external_id] = found
    first = next(iter(picked.values()))
    lines = tuple((line.external_id, picked.get(line.external_id, first)) for line in order.lines)
    parts = ", ".join(f"{line.sku} from {picked[line.external_id] or 'the ERP default'}" for line in _checked(order))
    reason = f"{where}, split: {parts}"
    if short:
        reason += f"; no stock anywhere for {', '.join(short)}"
    return Routing(first, lines, reason)
