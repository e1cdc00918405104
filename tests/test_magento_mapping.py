"""Magento orders and credit memos to canonical documents, to the cent (platforms/magento/mapping.py).

The orders are the fake store's (tests/fakes/magento_orders.py), their figures worked out the way Magento's
totals collectors make them; each test states what the customer paid, computed by hand, so a fake and a
mapping that agree on a wrong rule still fail.
"""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from mappings.canonical import Money, Order
from mappings.errors import MappingError
from platforms.magento.mapping import order_from_magento, payment_method, refund_from_magento
from tests.fakes.magento_orders import Line, build_creditmemo, build_order

AT = "2026-11-20 09:00:01"


def d(text: str) -> Decimal:
    return Decimal(text)


def eur(text: str) -> Money:
    return Money(Decimal(text), "EUR")


def invariant(order: Order) -> None:
    """Totals: total = subtotal − discounts + shipping + fees + tax (the canonical order is tax-exclusive)."""
    t = order.totals
    assert not order.taxes_included
    assert t.total == t.subtotal - t.discount_total + t.shipping_total + t.fees + t.tax_total
    assert t.subtotal == sum((ln.gross for ln in order.lines), Money.zero(order.currency))
    line_tax = sum((ln.tax_total for ln in order.lines), Money.zero(order.currency))
    ship_tax = sum((tx.amount for s in order.shipping_lines for tx in s.tax_lines), Money.zero(order.currency))
    assert line_tax + ship_tax == t.tax_total


def test_prices_excluding_tax_with_a_line_discount_and_shipping() -> None:
    raw = build_order(
        1,
        [Line("MUG", "12.50", 2, "19", "10"), Line("TEE", "20.00", 1, "19")],
        created_at=AT,
        shipping="5.00",
        coupon="TENOFF",
        next_item_id=10,
    )
    order = order_from_magento(raw, "eu")
    invariant(order)
    # MUG: 25.00 − 2.50 = 22.50 net, tax 4.28 (22.50 × 19% = 4.275); TEE 20.00, tax 3.80; shipping 5.00, tax 0.95
    mug, tee = order.lines
    assert (mug.sku, mug.quantity, mug.gross, mug.discount_total, mug.tax_total) == (
        "MUG",
        2,
        eur("25.00"),
        eur("2.50"),
        eur("4.28"),
    )
    assert mug.unit_price == eur("12.50")
    assert (tee.gross, tee.discount_total, tee.tax_total) == (eur("20.00"), eur("0"), eur("3.80"))
    assert order.totals.total == eur("56.53")  # 22.50 + 4.28 + 20.00 + 3.80 + 5.00 + 0.95
    assert order.totals.tax_total == eur("9.03")
    assert order.shipping_lines[0].price == eur("5.00")
    assert order.shipping_lines[0].tax_lines[0].rate == d("0.19")
    assert order.discounts[0].code == "TENOFF" and order.discounts[0].amount == eur("2.50")
    assert (order.source, order.external_id, order.number, order.external_ref) == (
        "magento",
        "1",
        "000000001",
        "magento:eu:1",
    )
    assert order.currency == "EUR" and order.presentment_currency is None


def test_prices_including_tax_the_discount_carries_its_tax_compensation() -> None:
    """Catalog prices with 19% VAT in them: 3 × 19.99 less 10%, a configurable at 40.00, shipping 4.99 less
    half. The customer pays 53.97 + 40.00 + 2.49 = 96.46."""
    raw = build_order(
        2,
        [Line("MUG", "19.99", 3, "19", "10"), Line("TEE-M-RED", "40.00", 1, "19", parent_sku="TEE")],
        created_at=AT,
        prices_incl_tax=True,
        shipping="4.99",
        shipping_discount_percent="50",
        next_item_id=20,
    )
    order = order_from_magento(raw, "eu")
    invariant(order)
    assert order.totals.total == eur("96.46")
    mug, tee = order.lines
    # 59.97 incl. → 50.39 net; 6.00 off incl. tax, of which 0.96 was tax: 5.04 off the net; tax 8.62 on 45.35
    assert (mug.gross, mug.discount_total, mug.tax_total) == (eur("50.39"), eur("5.04"), eur("8.62"))
    assert mug.gross.amount + mug.tax_total.amount - mug.discount_total.amount == d("53.97")
    # 3 × price (16.80 rounded) would be 50.40: the line's gross is the row total, its unit price exact to 4 dp
    assert mug.unit_price == eur("16.7967")
    assert (tee.gross + tee.tax_total).amount == d("40.00")
    ship = order.shipping_lines[0]
    assert (ship.price, ship.discount_total, ship.tax_lines[0].amount) == (eur("4.19"), eur("2.10"), eur("0.40"))
    assert (ship.net + ship.tax_lines[0].amount).amount == d("2.49")


def test_a_configurable_is_one_line_with_the_simple_products_sku() -> None:
    raw = build_order(3, [Line("TEE-M-RED", "30.00", 2, "0", parent_sku="TEE")], created_at=AT, next_item_id=30)
    assert len(raw["items"]) == 2 and raw["items"][1]["parent_item_id"] == 30
    raw["items"][0]["sku"] = "TEE"  # should a store keep the parent's own sku on its row, the child still names it
    order = order_from_magento(raw, "eu")
    (line,) = order.lines
    assert (line.external_id, line.sku, line.quantity, line.gross) == ("30", "TEE-M-RED", 2, eur("60.00"))
    assert (line.product_id, line.variant_id) == ("530", "930")
    assert order.totals.total == eur("65.00")


def test_a_bundle_priced_by_its_parts_books_the_parts() -> None:
    raw = build_order(
        4,
        [Line("KIT", "0", 1, "0"), Line("PART-A", "8.00", 1, "0"), Line("PART-B", "4.00", 2, "0")],
        created_at=AT,
        next_item_id=40,
    )
    kit, part_a, part_b = raw["items"]
    kit["product_type"] = "bundle"
    part_a["parent_item_id"] = part_b["parent_item_id"] = kit["item_id"]
    order = order_from_magento(raw, "eu")
    assert [(ln.sku, ln.quantity, ln.gross) for ln in order.lines] == [
        ("PART-A", 1, eur("8.00")),
        ("PART-B", 2, eur("8.00")),
    ]
    invariant(order)


def test_guest_addresses_and_payment_methods() -> None:
    raw = build_order(5, [Line("MUG", "10.00")], created_at=AT, guest=True, payment="cashondelivery", next_item_id=50)
    order = order_from_magento(raw, "eu")
    assert order.customer.is_guest and order.customer.email == "anna@example.com"
    assert order.payment.method == "cod" and order.payment.status == "pending"  # not invoiced yet
    assert order.billing_address is not None and order.billing_address.line1 == "Hauptstraße 1"
    assert order.shipping_address is not None and order.shipping_address.postal_code == "20095"
    assert order.status == "open"
    registered = order_from_magento(build_order(6, [Line("MUG", "10.00")], created_at=AT, customer_id=42), "eu")
    assert registered.customer.external_id == "42"
    assert [payment_method(c) for c in ("banktransfer", "checkmo", "braintree", "paypal_express", "klarna")] == [
        "bank_transfer",
        "manual",
        "card",
        "paypal",
        "other",
    ]
    paid = order_from_magento(build_order(7, [Line("MUG", "10.00")], created_at=AT, payment="braintree"), "eu")
    assert paid.payment.status == "paid" and paid.payment.transaction_ref == "txn-7"


def test_states_map_onto_open_cancelled_closed() -> None:
    base = build_order(8, [Line("MUG", "10.00")], created_at=AT)
    for state, expected in (
        ("new", "open"),
        ("processing", "open"),
        ("holded", "open"),
        ("complete", "closed"),
        ("closed", "closed"),
        ("canceled", "cancelled"),
    ):
        order = order_from_magento({**base, "state": state}, "eu")
        assert order.status == expected
    cancelled = order_from_magento({**base, "state": "canceled"}, "eu")
    assert cancelled.payment.status == "voided" and cancelled.cancel_reason == "cancelled in Magento"


def test_the_erp_books_the_base_currency() -> None:
    """The customer saw and was shown USD at 1.10 per EUR; the store's base (its books) is EUR."""
    raw = build_order(9, [Line("MUG", "20.00", 1, "19")], created_at=AT, order_currency="USD", rate="1.10")
    order = order_from_magento(raw, "eu")
    assert order.currency == "EUR" and order.totals.total == eur("29.75")  # 20 + 3.80 + 5 + 0.95
    assert order.presentment_currency == "USD"
    assert order.presentment_total == Money(d("32.73"), "USD")  # 29.75 × 1.10 = 32.725, as Magento rounded it


def test_a_virtual_order_has_no_shipping() -> None:
    raw = build_order(10, [Line("EBOOK", "9.99", 1, "7", virtual=True)], created_at=AT)
    order = order_from_magento(raw, "eu")
    assert order.shipping_lines == () and order.shipping_address is None
    assert not order.lines[0].requires_shipping
    assert order.totals.total == eur("10.69")  # 9.99 + 0.70


def test_totals_that_do_not_reconcile_are_refused_with_the_figures() -> None:
    raw = build_order(11, [Line("MUG", "10.00")], created_at=AT)
    raw["base_grand_total"] = 20.00  # a gift card or store credit this mapping does not read
    raw["grand_total"] = 20.00
    with pytest.raises(MappingError, match=r"#000000011: totals do not reconcile.*base_grand_total is 20"):
        order_from_magento(raw, "eu")
    broken = build_order(12, [Line("MUG", "10.00")], created_at=AT)
    broken["items"][0]["qty_ordered"] = 1.5
    with pytest.raises(MappingError, match="not a whole number"):
        order_from_magento(broken, "eu")
    with pytest.raises(MappingError, match="base_currency_code"):
        order_from_magento({**build_order(13, [Line("MUG", "1.00")], created_at=AT), "base_currency_code": None}, "eu")


# ---- credit memos ------------------------------------------------------------------------------------


def test_a_credit_memo_with_shipping_restock_and_a_fee_kept() -> None:
    raw = build_order(
        20,
        [Line("MUG", "19.99", 3, "19", "10"), Line("TEE", "40.00", 1, "19")],
        created_at=AT,
        prices_incl_tax=True,
        shipping="4.99",
        shipping_discount_percent="50",
        next_item_id=200,
    )
    memo = build_creditmemo(
        70,
        raw,
        {200: 1},
        created_at="2026-11-21 10:00:00",
        shipping=True,
        adjustment_negative="2.00",
        back_to_stock=True,
    )
    refund = refund_from_magento(memo, raw, "eu")
    (line,) = refund.lines
    # One mug: 53.97 / 3 = 17.99 back (15.12 net + 2.87 tax); the shipping paid, 2.49; 2.00 kept as a fee
    assert (line.line_external_id, line.sku, line.quantity, line.restock) == ("200", "MUG", 1, True)
    assert (line.subtotal, line.tax) == (eur("15.12"), eur("2.87"))
    assert refund.shipping == eur("2.49") and refund.adjustment == eur("-2.00")
    assert refund.total == eur("18.48")
    assert refund.total == line.subtotal + line.tax + refund.shipping + refund.adjustment
    assert refund.external_ref == "magento:eu:20:refund:70"


def test_a_credit_memo_of_a_configurable_names_the_booked_line() -> None:
    raw = build_order(21, [Line("TEE-M-RED", "30.00", 2, "19", parent_sku="TEE")], created_at=AT, next_item_id=210)
    memo = build_creditmemo(71, raw, {210: 1}, created_at="2026-11-21 10:00:00", adjustment_positive="1.50")
    refund = refund_from_magento(memo, raw, "eu")
    (line,) = refund.lines  # the child's row (zero amounts) adds nothing
    assert (line.line_external_id, line.quantity, line.subtotal, line.tax, line.restock) == (
        "210",
        1,
        eur("30.00"),
        eur("5.70"),
        False,
    )
    assert refund.adjustment == eur("1.50") and refund.total == eur("37.20")


def test_a_credit_memo_that_does_not_add_up_is_refused() -> None:
    raw = build_order(22, [Line("MUG", "10.00")], created_at=AT, next_item_id=220)
    memo = build_creditmemo(72, raw, {220: 1}, created_at="2026-11-21 10:00:00")
    bad = copy.deepcopy(memo)
    bad["base_grand_total"] = 99.0
    with pytest.raises(MappingError, match=r"credit memo #000000072 of order #000000022: .*base_grand_total 99"):
        refund_from_magento(bad, raw, "eu")
    stranger = copy.deepcopy(memo)
    stranger["items"][0]["order_item_id"] = 999
    with pytest.raises(MappingError, match="999 is not an item of the order"):
        refund_from_magento(stranger, raw, "eu")
