"""A return sale made in Tryton (the returns desk's `sale.return_sale` wizard) read as the ERP's own credit note,
without I/O: adapters.erp.tryton reads the rows, this turns them into an ErpRefund.

Tryton keeps no tax per sale line (only the untaxed `amount` and the line's taxes; the tax is summed per
document), while the store refunds tax-included amounts per line. Each line's tax is its amount times its
taxes' rates, each line rounded to the currency's step; whatever that rounding leaves against Tryton's own
total (a cent, or a tax that is not a plain percentage) goes on the largest line, so the lines and shipping
add up to the credit note's total exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from adapters.erp.tryton_tax import TrytonTax, round_to
from mappings.canonical import ErpRefund, ErpRefundLine, Money


@dataclass(frozen=True)
class ReturnLine:
    """A `sale.line` of type line of a return sale, as Tryton holds it (quantities negative for goods given
    back)."""

    code: str  # the product's code ("" without product)
    movable: bool  # goods: Tryton makes a customer return shipment for them
    quantity: Decimal
    amount: Decimal  # untaxed, as Tryton rounded it
    taxes: tuple[int, ...]


def erp_refund(
    ref: str,
    order_ref: str,
    currency: str,
    total: Decimal,
    lines: list[ReturnLine],
    *,
    shipping_code: str,
    warehouse: str,
    taxes: dict[int, TrytonTax],
    step: Decimal,
    created_at: datetime,
    reason: str = "",
) -> ErpRefund:
    """The return sale as the credit note the store refunds: `total` is what goes back (minus Tryton's total).
    Goods given back in whole units are restocked at the return sale's warehouse; any other line (a service, a
    line without product, goods going out in an exchange) is money only, under its product's code."""
    shipping = Decimal(0)
    refunded: list[tuple[str, int, Decimal, bool]] = []
    for line in lines:
        back = -line.amount
        gross = round_to(back + sum((back * taxes[t].rate for t in line.taxes if t in taxes), Decimal(0)), step)
        units = -line.quantity
        if line.code and line.code == shipping_code:
            shipping += gross
        elif line.movable and line.code and units > 0 and units == units.to_integral_value():
            refunded.append((line.code, int(units), gross, True))
        else:
            refunded.append((line.code, 0, gross, False))
    left = total - shipping - sum((r[2] for r in refunded), Decimal(0))
    if left and refunded:
        at = max(range(len(refunded)), key=lambda i: abs(refunded[i][2]))
        code, whole, gross, restock = refunded[at]
        refunded[at] = (code, whole, gross + left, restock)
    elif left:
        shipping += left
    return ErpRefund(
        ref=ref,
        order_ref=order_ref,
        lines=tuple(
            ErpRefundLine(code, units, Money(gross, currency), restock, warehouse if restock else "")
            for code, units, gross, restock in refunded
        ),
        shipping=Money(shipping, currency),
        total=Money(total, currency),
        created_at=created_at,
        reason=reason,
    )
