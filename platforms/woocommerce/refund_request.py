"""The WooCommerce refund that gives back what a credit note the ERP made itself gave back.

Pure, no I/O: from the credit note (connector.sync.erp_refunds' copy of it), the wc/v3 order and the refunds it
has so far, the body of `POST orders/<id>/refunds` (docs/platforms.md#woocommerce-refunds):

- `amount`: the credit note's total. WooCommerce refunds this, whatever the lines add up to, and refuses
  more than the order has left.
- `line_items`: each credit note line on the order's line items of its SKU (or the store SKUs the
  merchant's SKU table maps to it, as for Shopify), no more units than a line has left after earlier
  refunds, its money (tax included in the ERP) split into `refund_total` and `refund_tax` per tax rate as
  the order line was taxed; the shipping given back on the shipping lines the same way. An item appears
  once: WooCommerce keys them by id, so a second entry would replace the first.
- `api_restock`: WooCommerce restocks every refunded line or none. True only when every line with units
  came back into stock; otherwise the store restocks nothing, and the units the ERP took back reach the
  store with the next stock sync (underselling for a while rather than selling a damaged unit).
- `api_refund`: true whenever money goes back: through the order's payment gateway, as the ERP's
  customer expects.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mappings.currencies import one_unit
from mappings.inventory import store_skus


class Unplaceable(Exception):
    """The order cannot take the credit note as it is; the message says what does not fit and what to do."""


@dataclass(frozen=True)
class WooRefund:
    body: dict[str, Any]
    units: int  # units refunded
    restocked: int  # of them, put back on the store's shelf by WooCommerce
    unitemised: Decimal  # shipping given back that the order has no shipping line for (in `amount` only)


def woo_refund(
    credit: dict, order: dict, refunds: Sequence[dict], sku_map: Mapping[str, str], reason: str
) -> WooRefund:
    cur = str(order.get("currency") or "")
    unit = one_unit(cur)
    total = _exact(credit.get("total"), unit, "its total", cur)
    remaining = _dec(order.get("total")) - sum((_dec(r.get("amount")) for r in refunds), Decimal(0))
    if total > remaining:
        raise Unplaceable(
            f"its total {total} {cur} is more than the {remaining} {cur} the order has left to refund; check "
            "whether the store refunded it already, or correct the credit note in the ERP"
        )
    taken_units, taken_money = _taken(refunds, order)
    items: dict[int, dict] = {}
    units = restocked = 0
    for line in credit.get("lines") or []:
        qty, sku = int(line["quantity"]), str(line["sku"])
        amount = _exact(line.get("amount"), unit, f"the amount of {sku}", cur)
        skus = set(store_skus(sku, sku_map))
        ours = [li for li in order.get("line_items") or [] if (li.get("sku") or "") in skus]
        if qty <= 0:
            if amount and ours:  # money only: on a line of its SKU, else in the amount alone
                _add(items, ours[0], 0, amount, unit)
            continue
        need, placed = qty, Decimal(0)
        for li in ours:
            take = min(need, int(li["quantity"]) - taken_units[li["id"]])
            if take <= 0:
                continue
            need -= take
            money = amount - placed if need == 0 else (amount * take / qty).quantize(unit)
            placed += money
            taken_units[li["id"]] += take
            _add(items, li, take, money, unit)
        if need:
            raise Unplaceable(
                f"{qty} x {sku} is more than the order has left to refund of that SKU; check the SKU mapping on "
                "/config#skus or whether the store refunded it already"
            )
        units += qty
        restocked += qty if line.get("restock") else 0
    shipping = _exact(credit.get("shipping") or "0", unit, "its shipping", cur)
    unplaced = shipping
    for sl in order.get("shipping_lines") or []:
        given = min(unplaced, _gross(sl) - taken_money[sl["id"]])
        if given > 0:
            unplaced -= given
            _add(items, sl, None, given, unit)
    if unplaced and order.get("shipping_lines"):
        raise Unplaceable(
            f"it gives back {shipping} {cur} of shipping, more than the {shipping - unplaced} {cur} the order has "
            "left to refund of it; check whether the store refunded the shipping already"
        )
    restock = units > 0 and restocked == units
    body = {
        "amount": str(total),
        "reason": reason,
        "api_refund": total > 0,
        "api_restock": restock,
        "line_items": [_entry(e) for e in items.values()],
    }
    return WooRefund(body, units, units if restock else 0, unplaced)  # no shipping line: in the amount alone


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _exact(value: Any, unit: Decimal, what: str, cur: str) -> Decimal:
    amount = _dec(value)
    if amount != amount.quantize(unit):
        raise Unplaceable(f"{what} {amount} {cur} has more decimals than {cur} has; correct it in the ERP")
    return amount.quantize(unit)


def _gross(item: dict) -> Decimal:
    return _dec(item.get("total")) + _dec(item.get("total_tax"))


def _taken(refunds: Sequence[dict], order: dict) -> tuple[Counter[int], defaultdict[int, Decimal]]:
    """Units and money (tax included) earlier refunds took from each order item."""
    units: Counter[int] = Counter()
    money: defaultdict[int, Decimal] = defaultdict(Decimal)
    for refund in refunds:
        for item in (refund.get("line_items") or []) + (refund.get("shipping_lines") or []):
            source = _refunded_item(item, order)
            if source is not None:
                units[source] -= int(item.get("quantity") or 0)  # refunded quantities are negative
                money[source] -= _gross(item)
    return units, money


def _refunded_item(item: dict, order: dict) -> int | None:
    """The order item a refunded item came from: its `_refunded_item_id` meta, or else the one order line of
    the same product and variation."""
    for meta in item.get("meta_data") or []:
        if meta.get("key") == "_refunded_item_id" and str(meta.get("value")).isdigit():
            return int(meta["value"])
    if "product_id" not in item:
        return None
    same = [
        li["id"]
        for li in order.get("line_items") or []
        if (li.get("product_id"), li.get("variation_id")) == (item.get("product_id"), item.get("variation_id"))
    ]
    return same[0] if len(same) == 1 else None


def _add(items: dict[int, dict], item: dict, qty: int | None, gross: Decimal, unit: Decimal) -> None:
    """Refund `gross` (tax included) of an order item, `qty` units of it (None for shipping)."""
    entry = items.setdefault(item["id"], {"id": item["id"], "refund_total": Decimal(0), "refund_tax": {}})
    if qty is not None:
        entry["quantity"] = entry.get("quantity", 0) + qty
    taxes = _taxes(gross, item, unit)
    entry["refund_total"] += gross - sum(taxes.values(), Decimal(0))
    for rate, amount in taxes.items():
        entry["refund_tax"][rate] = entry["refund_tax"].get(rate, Decimal(0)) + amount


def _taxes(gross: Decimal, item: dict, unit: Decimal) -> dict[Any, Decimal]:
    """The tax in `gross` per tax rate, in the proportions the order item was taxed."""
    rates = {t["id"]: _dec(t.get("total")) for t in item.get("taxes") or [] if _dec(t.get("total"))}
    whole = _gross(item)
    if not rates or not whole:
        return {}
    tax = gross * _dec(item.get("total_tax")) / whole
    weight = sum(rates.values(), Decimal(0))
    return {rate: (tax * amount / weight).quantize(unit) for rate, amount in rates.items()}


def _entry(entry: dict) -> dict:
    out = {"id": entry["id"], "refund_total": str(entry["refund_total"])}
    if "quantity" in entry:
        out["quantity"] = entry["quantity"]
    out["refund_tax"] = [{"id": rate, "refund_total": str(amount)} for rate, amount in entry["refund_tax"].items()]
    return out
