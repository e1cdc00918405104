"""The merchant's mapping tables applied to a canonical order (pure): what the store calls a thing
→ what the ERP calls it. Edited on /config; a missing entry leaves the value as the store sent it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mappings.canonical import Order, TaxLine

KINDS = ("sku", "payment_method", "shipping_method", "tax", "location", "stock_priority")


@dataclass(frozen=True)
class MerchantTables:
    sku: dict[str, str] = field(default_factory=dict)  # store SKU → ERP SKU (item code)
    payment_method: dict[str, str] = field(default_factory=dict)  # our method or the gateway → ERP method
    shipping_method: dict[str, str] = field(default_factory=dict)  # shipping code or title → ERP carrier/service
    tax: dict[str, str] = field(default_factory=dict)  # tax title → ERP tax code
    location: dict[str, str] = field(default_factory=dict)  # store location id → ERP warehouse(s), comma-separated
    # ERP SKU → store slugs and `offline`, comma-separated: who gets a unit left by rounding (mappings.allocation)
    stock_priority: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: list[tuple[str, str, str]]) -> MerchantTables:
        """Rows of (kind, source, target); later rows win (store-specific after global)."""
        tables: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
        for kind, source, target in rows:
            if kind in tables:
                tables[kind][source] = target
        return cls(**tables)


def apply_tables(order: Order, tables: MerchantTables) -> Order:
    if not any((tables.sku, tables.payment_method, tables.shipping_method, tables.tax)):
        return order

    def coded(taxes: tuple[TaxLine, ...]) -> tuple[TaxLine, ...]:
        return tuple(dataclasses.replace(t, code=tables.tax.get(t.title, t.code)) for t in taxes)

    lines = tuple(
        dataclasses.replace(
            line, sku=tables.sku.get(line.sku, line.sku) if line.sku else line.sku, tax_lines=coded(line.tax_lines)
        )
        for line in order.lines
    )
    shipping = tuple(
        dataclasses.replace(
            s,
            code=tables.shipping_method.get(s.code) or tables.shipping_method.get(s.title) or s.code,
            tax_lines=coded(s.tax_lines),
        )
        for s in order.shipping_lines
    )
    method = (
        tables.payment_method.get(order.payment.gateway)
        or tables.payment_method.get(order.payment.method)
        or order.payment.method
    )
    return dataclasses.replace(
        order,
        lines=lines,
        shipping_lines=shipping,
        fee_lines=tuple(dataclasses.replace(f, tax_lines=coded(f.tax_lines)) for f in order.fee_lines),
        payment=dataclasses.replace(order.payment, method=method),
        tax_lines=coded(order.tax_lines),
    )
