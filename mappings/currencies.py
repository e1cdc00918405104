"""Each currency's minor unit (ISO 4217), and the refusal of amounts finer than it.

A store that sends 0.33333333 USD would otherwise be rounded silently by whatever column or
document keeps it. No dependency of ours carries ISO 4217 data, so the exceptions to "2 decimals"
are listed here (ISO 4217, list one).
"""

from __future__ import annotations

from decimal import Decimal

from mappings.canonical import Money, Order
from mappings.errors import MappingError

_EXCEPTIONS = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def minor_unit(currency: str) -> int:
    """Decimals the currency has (2 for any code not listed as an exception)."""
    return _EXCEPTIONS.get(currency, 2)


def one_unit(currency: str) -> Decimal:
    """The currency's smallest amount: 0.01 USD, 1 JPY, 0.001 KWD."""
    return Decimal(1).scaleb(-minor_unit(currency))


def _fits(money: Money) -> bool:
    return money.amount == money.amount.quantize(one_unit(money.currency))


def check_minor_units(order: Order) -> None:
    """Raise MappingError naming the first amount finer than its currency's minor unit."""
    for label, money in _amounts(order):
        if money is not None and not _fits(money):
            places = minor_unit(money.currency)
            raise MappingError(
                f"{label} {money.amount} {money.currency} has more decimals than "
                f"{money.currency}'s {places}: correct it in the store, then retry"
            )


def _amounts(order: Order) -> list[tuple[str, Money | None]]:
    found: list[tuple[str, Money | None]] = []
    for line in order.lines:
        n = f"line {line.line_no}"
        # A unit price derived by division (WooCommerce) is booked beside its exact subtotal.
        found.append(
            (f"{n} subtotal", line.subtotal) if line.subtotal is not None else (f"{n} unit price", line.unit_price)
        )
        found.append((f"{n} discount", line.discount_total))
        found += [(f"{n} tax {t.title!r}", t.amount) for t in line.tax_lines]
    for i, ship in enumerate(order.shipping_lines, start=1):
        found += [(f"shipping line {i} price", ship.price), (f"shipping line {i} discount", ship.discount_total)]
        found += [(f"shipping line {i} tax {t.title!r}", t.amount) for t in ship.tax_lines]
    for i, fee in enumerate(order.fee_lines, start=1):
        found.append((f"fee line {i} amount", fee.amount))
    found += [(f"discount {d.code!r}", d.amount) for d in order.discounts]
    found += [(f"order tax {t.title!r}", t.amount) for t in order.tax_lines]
    t = order.totals
    found += [
        ("order subtotal", t.subtotal),
        ("order discount total", t.discount_total),
        ("order shipping total", t.shipping_total),
        ("order tax total", t.tax_total),
        ("order total", t.total),
        ("order fee total", t.fee_total),
        ("order total in the presentment currency", order.presentment_total),
    ]
    return found
