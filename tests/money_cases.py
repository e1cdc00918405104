"""Orders whose money has more parts than goods, shipping and tax, with every figure worked by hand from
its fixture (tests/fixtures/shopify; the arithmetic is in tests/mappings/test_shopify.py)."""

from __future__ import annotations

from decimal import Decimal

# fixture: total, tax, fee total, of which tips, duties and additional fees, then presentment currency and total
MONEY_CASES = {
    "order_tip": ("66.70", "4.35", "7.35", "7.35", "0", "0", "USD", "66.70"),
    "order_duties": ("142.22", "6.77", "18.45", "0", "18.45", "0", "CAD", "248.89"),
    "order_additional_fees": ("50.52", "3.24", "0.28", "0", "0", "0.28", "USD", "50.52"),
    "order_jpy": ("3850", "350", "0", "0", "0", "0", "JPY", "3850"),
    "order_kwd": ("12.975", "0", "0", "0", "0", "0", "KWD", "12.975"),
}
MONEY_KEYS = (
    "total",
    "tax_total",
    "fee_total",
    "tip_total",
    "duty_total",
    "additional_fee_total",
    "presentment_currency",
    "presentment_total",
)


def expected_money(fixture: str) -> dict[str, object]:
    """The case as the ERP's columns: amounts as Decimals, the currency as text."""
    return {
        key: value if key == "presentment_currency" else Decimal(value)
        for key, value in zip(MONEY_KEYS, MONEY_CASES[fixture], strict=False)
    }


# Refunds that give fees back (tests/fixtures/shopify/refunds/fee_refund_*.json, worked by hand in
# tests/mappings/test_shopify_refunds.py): the order they refund, its shop currency, then the credit note's
# total, the goods' tax, and the tips, duties and additional fees given back (each tax included).
REFUND_CASES = {
    "fee_refund_tip": ("order_tip", "USD", "34.02", "2.17", "7.35", "0", "0"),
    "fee_refund_duties": ("order_duties", "GBP", "73.80", "3.00", "0", "10.80", "0"),
}
CREDITED_KEYS = ("total", "tax_total", "tip_total", "duty_total", "additional_fee_total")


def expected_credit(case: str) -> dict[str, Decimal]:
    return {key: Decimal(value) for key, value in zip(CREDITED_KEYS, REFUND_CASES[case][2:], strict=False)}
