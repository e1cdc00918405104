"""The Tryton sale lines of a store order or refund (pure: Tryton ids come in already resolved).

Each store charge becomes one sale line at its NET unit price with the Tryton taxes the store's tax
lines name; the store's tax per Tryton tax is kept as the target Tryton must reach. `balance` then
adds what Tryton's own arithmetic misses: per tax, a one-unit line with only that tax and an untaxed
line of the opposite amount (so Tryton's tax equals the store's and the untaxed total is unchanged),
and one untaxed "Rounding difference" line for what 4-decimal unit prices leave of the store's total.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from adapters.erp.tryton_tax import TaxableLine, TrytonTax, round_to, tax_corrections, tryton_tax_amounts
from mappings.canonical import RefundFee, TaxLine

PRICE = Decimal("0.0001")  # sale.line unit_price digits (Tryton's default price_decimal)
ONE = Decimal(1)
# Resolves the store's tax lines (only those with an amount) to Tryton tax ids, in the same order.
TaxResolver = Callable[[tuple[TaxLine, ...]], tuple[int, ...]]


@dataclass(frozen=True)
class SaleLine:
    product: int | None
    unit: int
    quantity: Decimal
    unit_price: Decimal
    description: str
    taxes: tuple[int, ...] = ()  # Tryton account.tax ids

    def values(self) -> dict:
        return {
            "type": "line",
            "product": self.product,
            "unit": self.unit,
            "quantity": float(self.quantity),
            "unit_price": self.unit_price,
            "description": self.description,
            "taxes": [["add", list(self.taxes)]] if self.taxes else [],
        }

    def key(self) -> tuple:
        return (
            self.product or 0,
            self.quantity.normalize(),
            self.unit_price.quantize(PRICE),
            self.description,
            tuple(sorted(self.taxes)),
        )

    def taxable(self) -> TaxableLine:
        return TaxableLine(self.unit_price, self.quantity, self.taxes)


@dataclass
class Booking:
    """A sale's lines, the store's tax per Tryton tax, and each store line's and fee's Tryton taxes (kept in
    the sale's note so a refund of that line or fee reverses the same taxes)."""

    lines: list[SaleLine] = field(default_factory=list)
    tax: dict[int, Decimal] = field(default_factory=dict)
    line_taxes: dict[str, list[int]] = field(default_factory=dict)
    # One entry per fee line: {"kind", "line" (the store's source line id or None), "title", "taxes"}. A
    # list, not keyed by line: a duty's source line is the goods line it is levied on.
    fee_taxes: list[dict] = field(default_factory=list)

    @property
    def tax_total(self) -> Decimal:
        return sum(self.tax.values(), Decimal(0))

    def charge(
        self,
        product: int | None,
        unit: int,
        quantity: Decimal,
        amount: Decimal,
        description: str,
        tax_lines: tuple[TaxLine, ...],
        resolve: TaxResolver,
        included: bool,
    ) -> tuple[int, ...]:
        """Book a store charge of `amount` (tax inside it when `included`) for `quantity` units."""
        charged = tuple(t for t in tax_lines if t.amount.amount)
        taxes = resolve(charged) if charged else ()
        tax = sum((t.amount.amount for t in charged), Decimal(0))
        self.add_tax(taxes, [t.amount.amount for t in charged])
        net = amount - tax if included else amount
        self.lines.append(SaleLine(product, unit, quantity, (net / quantity).quantize(PRICE), description, taxes))
        return taxes

    def add_tax(self, taxes: tuple[int, ...], amounts: list[Decimal]) -> None:
        for tax_id, amount in zip(taxes, amounts, strict=False):
            self.tax[tax_id] = self.tax.get(tax_id, Decimal(0)) + amount

    def refund_tax(
        self, taxes: tuple[int, ...], amount: Decimal, known: dict[int, TrytonTax], step: Decimal
    ) -> Decimal:
        """Make the store's refunded `amount` of tax the target of a refund line's Tryton taxes (spread by
        rate). Returns what is left without a Tryton tax to reverse (all of it when the line has none), which
        the caller books on the tax product."""
        if not (taxes and amount):
            return amount
        self.add_tax(taxes, split_tax(-amount, taxes, known, step))
        return Decimal(0)


def split_tax(amount: Decimal, taxes: tuple[int, ...], known: dict[int, TrytonTax], step: Decimal) -> list[Decimal]:
    """One refunded tax amount spread over a line's taxes by rate (a refund line has one tax figure)."""
    if len(taxes) == 1:
        return [amount]
    rates = [known[t].rate for t in taxes]
    whole = sum(rates, Decimal(0)) or ONE
    parts = [round_to(amount * rate / whole, step) for rate in rates[:-1]]
    return parts + [amount - sum(parts, Decimal(0))]


def tax_inside(gross: Decimal, taxes: tuple[int, ...], known: dict[int, TrytonTax], step: Decimal) -> Decimal:
    """The tax inside an amount that includes these taxes (a refund's shipping comes so, without its tax
    apart): the gross less the net at their combined rate. The store's own figure when it rounded the tax
    of the net, as stores do; a cent from it at worst otherwise, which moves a cent between tax and net."""
    if not taxes:
        return Decimal(0)
    rate = sum((known[t].rate for t in taxes), Decimal(0))
    return gross - round_to(gross / (ONE + rate), step)


def booked_fee_taxes(booked: list[dict], fee: RefundFee) -> tuple[int, ...] | None:
    """The Tryton taxes the order's fee line that this refunded fee gives back was booked with: the fee of
    its kind on the same store line (a Shopify tip), else of its kind and title (WooCommerce copies the fee's
    name into the refund but its order fee lines carry no line id). None when no fee fits: a sale noted
    before fees' taxes were kept, or a fee the order did not have."""
    same_kind = [f for f in booked if isinstance(f, dict) and f.get("kind") == fee.kind]
    by_line = [f for f in same_kind if fee.source_line_id and f.get("line") == fee.source_line_id]
    by_title = [f for f in same_kind if f.get("title") == fee.title]
    found = (by_line or by_title)[:1]
    return tuple(found[0].get("taxes") or ()) if found else None


def balance(
    booking: Booking, total: Decimal, known: dict[int, TrytonTax], rounding: str, step: Decimal, unit: int
) -> list[SaleLine]:
    """The lines that bring Tryton's tax to the store's per tax and its total to `total`.

    Why a pair of lines and not a changed unit price: the goods keep the revenue the store booked for
    them; the pair shows on the invoice as a tax rounding of a few cents and nets to zero untaxed."""
    taxable = [line.taxable() for line in booking.lines]
    extra: list[SaleLine] = []
    for tax_id, amount in tax_corrections(taxable, known, booking.tax, rounding, step):
        name = known[tax_id].name
        extra += [
            SaleLine(None, unit, ONE, amount, f"Tax rounding to the store's {name}", (tax_id,)),
            SaleLine(None, unit, ONE, -amount, f"Tax rounding to the store's {name} (untaxed offset)"),
        ]
    untaxed = sum((round_to(line.quantity * line.unit_price, step) for line in booking.lines + extra), Decimal(0))
    diff = total - booking.tax_total - untaxed
    if diff:
        extra.append(SaleLine(None, unit, ONE, diff, "Rounding difference to the store's total"))
    return extra


def expected_tax(lines: list[SaleLine], known: dict[int, TrytonTax], rounding: str, step: Decimal) -> Decimal:
    """Tryton's tax for these lines, as Tryton will compute it."""
    amounts = tryton_tax_amounts([line.taxable() for line in lines], known, rounding, step)
    return sum(amounts.values(), Decimal(0))
