"""Tryton's sale tax arithmetic (trytond 8.2, account.tax TaxableMixin), mirrored without I/O.

The connector books the store's taxes as Tryton taxes and must end with Tryton's tax equal to the
store's to the cent. Tryton computes each tax from unit price x quantity, groups lines by (taxes,
sign of the base), and rounds per line or per document (account configuration `tax_rounding`); a
store may round otherwise, so the two can differ by a cent. Mirroring Tryton here lets the adapter
see that difference before it creates the sale and add the smallest line that removes it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

# How far (in currency steps either side of the first estimate) a correction is searched for: the
# estimate is within one step of an answer, a few more cover Tryton's half-even rounding at the edges.
SEARCH_STEPS = 5


@dataclass(frozen=True)
class TrytonTax:
    """A percentage `account.tax` of the company (children and fixed amounts are not mirrored)."""

    id: int
    name: str
    rate: Decimal
    sequence: int | None = None

    def order_key(self) -> tuple:
        """Tryton's account.tax sort_taxes order: taxes without sequence first, then by sequence and id."""
        return (0 if self.sequence is None else 1, self.sequence or 0, self.id)


@dataclass(frozen=True)
class TaxableLine:
    unit_price: Decimal
    quantity: Decimal
    taxes: tuple[int, ...]


def round_to(amount: Decimal, step: Decimal) -> Decimal:
    """Tryton's currency.round: to a multiple of the currency's rounding, half-even."""
    return (amount / step).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * step


def _round_taxes(amounts: dict[int, Decimal], step: Decimal) -> None:
    """account.tax TaxableMixin._round_taxes: round each tax, then give back the cents the rounding
    added or removed in total, one step at a time over the taxes in order."""
    remainder = Decimal(0)
    for tax_id, amount in amounts.items():
        rounded = round_to(amount, step)
        remainder += rounded - amount
        amounts[tax_id] = rounded
    remainder = round_to(remainder, step)  # half-even is its own opposite
    if abs(remainder) < step or not any(amounts.values()):
        return
    offset = step.copy_sign(remainder)
    while abs(remainder) >= step:
        for tax_id in amounts:
            if amounts[tax_id]:
                amounts[tax_id] -= offset
                remainder -= offset
                if abs(remainder) < step:
                    break


def tryton_tax_amounts(
    lines: list[TaxableLine], taxes: dict[int, TrytonTax], rounding: str, step: Decimal
) -> dict[int, Decimal]:
    """The tax per Tryton tax id that Tryton will compute for these sale lines."""
    groups: dict[tuple, list[TaxableLine]] = defaultdict(list)
    for line in lines:
        if line.taxes:
            ordered = tuple(sorted(line.taxes, key=lambda t: taxes[t].order_key()))
            groups[(ordered, line.unit_price * line.quantity >= 0)].append(line)
    result: dict[int, Decimal] = defaultdict(Decimal)
    for (ordered, _), members in groups.items():
        group: dict[int, Decimal] = {tax_id: Decimal(0) for tax_id in ordered}
        for line in members:
            current = {tax_id: line.unit_price * taxes[tax_id].rate * line.quantity for tax_id in ordered}
            if rounding == "line":
                _round_taxes(current, step)
            for tax_id, amount in current.items():
                group[tax_id] += amount
        if rounding == "document":
            _round_taxes(group, step)
        for tax_id, amount in group.items():
            result[tax_id] += amount
    return dict(result)


def tax_corrections(
    lines: list[TaxableLine], taxes: dict[int, TrytonTax], targets: dict[int, Decimal], rounding: str, step: Decimal
) -> list[tuple[int, Decimal]]:
    """(tax id, net amount) of one-unit lines carrying only that tax that make Tryton's tax per tax
    equal `targets` (the store's). Each line changes the untaxed total by its amount: the caller
    offsets it with an untaxed line. A line with only one tax forms its own group in Tryton, so it
    moves no other tax. ValueError when no such line exists (a zero rate, a tax the store never
    charged at that rate)."""
    found: list[tuple[int, Decimal]] = []
    work = list(lines)
    for tax_id in sorted(set(targets) | {t for line in lines for t in line.taxes}):
        target = targets.get(tax_id, Decimal(0))
        got = tryton_tax_amounts(work, taxes, rounding, step).get(tax_id, Decimal(0))
        if got == target:
            continue
        rate = taxes[tax_id].rate
        if not rate:
            raise ValueError(f"Tryton tax {taxes[tax_id].name} has rate 0 but the store charged {target}")
        estimate = round_to((target - got) / rate, step)
        for k in sorted(range(-SEARCH_STEPS, SEARCH_STEPS + 1), key=abs):
            amount = estimate + k * step
            trial = work + [TaxableLine(amount, Decimal(1), (tax_id,))]
            if amount and tryton_tax_amounts(trial, taxes, rounding, step).get(tax_id) == target:
                work, found = trial, found + [(tax_id, amount)]
                break
        else:
            raise ValueError(f"no line brings Tryton tax {taxes[tax_id].name} from {got} to {target}")
    return found
