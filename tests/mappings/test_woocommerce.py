"""WooCommerce wc/v3 order and refund JSON -> canonical (platforms.woocommerce.mapping)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mappings.canonical import Money, Order, Refund, TaxLine
from mappings.canonical_json import order_from_json, order_to_json, refund_from_json, refund_to_json
from mappings.errors import MappingError
from platforms.woocommerce.mapping import order_from_woocommerce, refund_from_woocommerce
from tests.mappings.fuzz import DELETE, HOSTILE, paths, replaced, survives

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "woocommerce"
ORDERS = sorted(p.name for p in FIXTURES.glob("order_*.json"))
STORE = "harbor"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def money(currency: str) -> Callable[[str], Money]:
    return lambda amount: Money(Decimal(amount), currency)


usd, eur, aud = money("USD"), money("EUR"), money("AUD")


def error_of(payload: Any) -> str:
    with pytest.raises(MappingError) as info:
        order_from_woocommerce(payload, STORE)
    return str(info.value)


def refund_error_of(refund: Any, order: Any = None) -> str:
    with pytest.raises(MappingError) as info:
        refund_from_woocommerce(refund, load("order_refunded_partial.json") if order is None else order, STORE)
    return str(info.value)


def test_fixture_set_is_complete() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == [
        "order_cancelled.json",
        "order_cod_guest.json",
        "order_processing_coupon.json",
        "order_refunded_partial.json",
        "refund_901.json",
    ]


# ---- every order fixture ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ORDERS)
def test_totals_equal_woocommerce_totals_to_the_cent(name: str) -> None:
    payload = load(name)
    totals = order_from_woocommerce(payload, STORE).totals

    assert totals.subtotal.amount == sum(Decimal(item["subtotal"]) for item in payload["line_items"])
    assert totals.discount_total.amount == Decimal(payload["discount_total"])
    assert totals.shipping_total.amount == Decimal(payload["shipping_total"])
    assert totals.tax_total.amount == Decimal(payload["total_tax"])
    assert totals.total.amount == Decimal(payload["total"])
    fees = [Decimal(fee["total"]) for fee in payload["fee_lines"]]
    assert totals.fee_total == (Money(sum(fees, Decimal(0)), payload["currency"]) if fees else None)
    assert {
        m.currency
        for m in (totals.subtotal, totals.discount_total, totals.shipping_total, totals.tax_total, totals.total)
    } == {payload["currency"]}


@pytest.mark.parametrize("name", ORDERS)
def test_lines_shipping_and_fees_add_up_to_the_total(name: str) -> None:
    order = order_from_woocommerce(load(name), STORE)
    cur = order.currency
    gross = sum((line.gross for line in order.lines), Money.zero(cur))
    discounts = sum((line.discount_total for line in order.lines), Money.zero(cur))
    shipping = sum((s.price for s in order.shipping_lines), Money.zero(cur))
    fees = sum((f.amount for f in order.fee_lines), Money.zero(cur))
    taxes = sum(
        (t.amount for x in (*order.lines, *order.shipping_lines, *order.fee_lines) for t in x.tax_lines),
        Money.zero(cur),
    )

    assert order.taxes_included is False  # WooCommerce amounts exclude tax whatever the store setting
    assert taxes == order.totals.tax_total == sum((t.amount for t in order.tax_lines), Money.zero(cur))
    assert gross - discounts + shipping + fees + order.totals.tax_total == order.totals.total


@pytest.mark.parametrize("name", ORDERS)
def test_round_trips_through_canonical_json(name: str) -> None:
    order = order_from_woocommerce(load(name), STORE)
    assert order_from_json(json.loads(json.dumps(order_to_json(order)))) == order


@pytest.mark.parametrize("name", ORDERS)
def test_identity_and_source(name: str) -> None:
    payload = load(name)
    order = order_from_woocommerce(payload, STORE)
    assert (order.source, order.store) == ("woocommerce", STORE)
    assert order.external_id == str(payload["id"]) and order.number == payload["number"]
    assert order.external_ref == f"woocommerce:{STORE}:{payload['id']}"
    assert order.placed_at.tzinfo == UTC and order.updated_at.tzinfo == UTC
    assert order.note_attributes["prices_include_tax"] == str(payload["prices_include_tax"]).lower()
    assert order.tags == ()


# ---- order_processing_coupon.json: USD, 10% coupon on two lines, tax on top, a fee -------------------


def test_coupon_order_lines() -> None:
    order = order_from_woocommerce(load("order_processing_coupon.json"), STORE)

    assert [line.line_no for line in order.lines] == [1, 2, 3]
    assert [line.external_id for line in order.lines] == ["7311", "7312", "7313"]
    assert [line.sku for line in order.lines] == ["BEANIE-MER-CHA", "TOTE-CNV-NAT", None]  # "" -> None
    assert [(line.product_id, line.variant_id) for line in order.lines] == [
        ("310", "315"),
        ("402", None),
        ("418", None),
    ]  # variation_id 0 means a simple product
    assert [line.quantity for line in order.lines] == [2, 1, 3]
    assert [line.unit_price for line in order.lines] == [usd("24.00"), usd("35.00"), usd("9.50")]
    assert [line.gross for line in order.lines] == [usd("48.00"), usd("35.00"), usd("28.50")]
    assert [line.discount_total for line in order.lines] == [usd("4.80"), usd("3.50"), usd("0.00")]
    assert [line.line_total for line in order.lines] == [usd("43.20"), usd("31.50"), usd("28.50")]
    assert order.lines[0].tax_lines == (TaxLine("Sales tax", Decimal("0.1"), usd("4.32")),)
    assert order.lines[0].title == "Merino Beanie - Charcoal"


def test_coupon_order_discounts_shipping_fees_and_taxes() -> None:
    order = order_from_woocommerce(load("order_processing_coupon.json"), STORE)

    [discount] = order.discounts
    assert (discount.code, discount.kind, discount.amount) == ("autumn10", "coupon", usd("8.30"))
    [ship] = order.shipping_lines
    assert (ship.code, ship.title, ship.price, ship.discount_total) == (
        "flat_rate",
        "Flat rate",
        usd("7.50"),
        usd("0.00"),
    )
    assert ship.tax_lines == (TaxLine("Sales tax", Decimal("0.1"), usd("0.75")),)
    [fee] = order.fee_lines
    assert (fee.title, fee.amount, fee.tax_lines[0].amount) == ("Gift wrap", usd("5.00"), usd("0.50"))
    assert order.totals.fee_total == usd("5.00")
    assert order.tax_lines == (TaxLine("Sales tax", Decimal("0.1"), usd("11.57")),)  # 10.82 cart + 0.75 shipping


def test_coupon_order_parties_payment_and_notes() -> None:
    order = order_from_woocommerce(load("order_processing_coupon.json"), STORE)

    assert order.status == "open" and order.cancel_reason is None
    assert order.customer.external_id == "12" and not order.customer.is_guest
    assert (order.customer.email, order.customer.name, order.customer.phone) == (
        "maya.chen@example.com",
        "Maya Chen",
        "+1 212-555-0187",
    )
    payment = order.payment
    assert (payment.status, payment.method, payment.gateway) == ("paid", "card", "Credit Card (Stripe)")
    assert payment.transaction_ref == "ch_3QhZk2LTUR9LBPfg0a7Yx1Cd"
    assert payment.paid_at == datetime(2026, 11, 20, 15, 15, 4, tzinfo=UTC)
    assert order.placed_at == datetime(2026, 11, 20, 15, 15, tzinfo=UTC)  # date_created_gmt
    assert order.note == "Please ring the buzzer for 3F."
    # Private ("_") meta and non-string values are plugin internals, not notes for a person.
    assert order.note_attributes == {
        "is_vat_exempt": "no",
        "gift_message": "Happy birthday, Sam!",
        "prices_include_tax": "false",
    }
    address = order.billing_address
    assert address is not None
    assert (
        address.line1,
        address.line2,
        address.city,
        address.region,
        address.postal_code,
        address.country_code,
        address.phone,
    ) == ("418 Hudson St", "Apt 3F", "New York", "NY", "10014", "US", "+1 212-555-0187")
    assert order.shipping_address is not None and order.shipping_address.phone == ""


# ---- order_cod_guest.json: EUR, prices include tax, guest, cash on delivery --------------------------


def test_guest_checkout() -> None:
    payload = load("order_cod_guest.json")
    assert payload["customer_id"] == 0
    customer = order_from_woocommerce(payload, STORE).customer

    assert customer.is_guest and customer.external_id is None
    assert customer.email == "Camille.Dubois@Example.FR"  # as given: the ERP side normalises
    assert customer.phone == "06 12 34 56 78"
    assert (customer.first_name, customer.last_name) == ("Camille", "Dubois")


def test_blank_email_and_phone_become_none() -> None:
    payload = load("order_cod_guest.json")
    payload["billing"].update(email="", phone="  ")
    customer = order_from_woocommerce(payload, STORE).customer
    assert customer.email is None and customer.phone is None


def test_cash_on_delivery_stays_pending_until_paid() -> None:
    payload = load("order_cod_guest.json")
    payment = order_from_woocommerce(payload, STORE).payment
    assert (payment.status, payment.method, payment.gateway) == ("pending", "cod", "Paiement à la livraison")
    assert payment.paid_at is None and payment.transaction_ref is None  # "" -> None

    payload["date_paid_gmt"] = "2026-11-25T14:02:00"
    payment = order_from_woocommerce(payload, STORE).payment
    assert (payment.status, payment.paid_at) == ("paid", datetime(2026, 11, 25, 14, 2, tzinfo=UTC))


def test_prices_including_tax_still_map_to_tax_exclusive_amounts() -> None:
    order = order_from_woocommerce(load("order_cod_guest.json"), STORE)

    assert order.note_attributes == {"prices_include_tax": "true"}
    assert order.totals.total == eur("50.78")  # 37.42 + 4.90 shipping + 8.46 VAT
    assert order.totals.tax_total == eur("8.46") and order.totals.fee_total is None
    assert [t.amount for t in order.lines[1].tax_lines] == [eur("2.48")]  # total_tax, not the raw 2.483333
    assert order.lines[1].tax_lines[0].rate == Decimal("0.2")


def test_unit_price_from_a_subtotal_that_does_not_divide() -> None:
    line = order_from_woocommerce(load("order_cod_guest.json"), STORE).lines[0]

    assert line.quantity == 3
    assert line.unit_price == eur("8.3333")  # 25.00 / 3 to 4 places, half-even
    assert line.subtotal == line.gross == eur("25.00")  # the exact figure survives the rounding
    assert line.line_total == eur("25.00")
    assert isinstance(line.unit_price.amount, Decimal)


@pytest.mark.parametrize("price", [8.333333, 8.333333333333334, "8.333333", 8.33])
def test_price_is_a_json_number_read_without_float_drift(price: Any) -> None:
    payload = load("order_cod_guest.json")
    payload["line_items"][0]["price"] = price  # total / quantity as PHP prints it; 8.33 × 3 is a cent short
    line = order_from_woocommerce(payload, STORE).lines[0]
    assert line.gross == eur("25.00") and line.unit_price == eur("8.3333")  # from subtotal, never from price


def test_price_that_does_not_match_the_line_total() -> None:
    payload = load("order_cod_guest.json")
    payload["line_items"][0]["price"] = 8.34  # 25.02: two cents off is not rounding
    assert "line_items[0]: price 8.34 × quantity 3 does not match total 25.00" in error_of(payload)


def test_unit_price_with_four_places_is_kept_exactly() -> None:
    payload = load("order_cod_guest.json")
    item = payload["line_items"][0]
    item.update(quantity=16, price=1.5625)
    line = order_from_woocommerce(payload, STORE).lines[0]
    assert line.unit_price == eur("1.5625") and line.unit_price * 16 == line.gross


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-22T08:41:29", datetime(2026, 11, 22, 8, 41, 29, tzinfo=UTC)),
        ("2026-11-22T08:41:29Z", datetime(2026, 11, 22, 8, 41, 29, tzinfo=UTC)),
        ("2026-11-22T09:41:29+01:00", datetime(2026, 11, 22, 8, 41, 29, tzinfo=UTC)),
    ],
)
def test_date_modified_gmt_is_read_as_utc(value: str, expected: datetime) -> None:
    payload = load("order_cod_guest.json")
    payload["date_modified_gmt"] = value
    payload["date_modified"] = "2026-11-22T09:41:29"  # shop-local time: never read
    assert order_from_woocommerce(payload, STORE).updated_at == expected


# ---- refunds -----------------------------------------------------------------------------------------


def test_partially_refunded_order() -> None:
    order = order_from_woocommerce(load("order_refunded_partial.json"), STORE)
    assert order.status == "open"
    assert (order.payment.status, order.payment.method, order.payment.gateway) == (
        "partially_refunded",
        "paypal",
        "PayPal",
    )
    assert order.totals.total == aud("89.10")  # WooCommerce keeps the original total after a refund
    assert (order.lines[1].product_id, order.lines[1].variant_id) == ("530", "533")


def test_refund_maps_to_positive_amounts() -> None:
    refund = refund_from_woocommerce(load("refund_901.json"), load("order_refunded_partial.json"), STORE)

    assert (refund.source, refund.store, refund.order_external_id, refund.external_id) == (
        "woocommerce",
        STORE,
        "5102",
        "901",
    )
    assert refund.external_ref == f"woocommerce:{STORE}:5102:refund:901"
    assert refund.created_at == datetime(2026, 11, 23, 22, 30, tzinfo=UTC)
    [line] = refund.lines
    assert (line.line_external_id, line.sku, line.quantity) == ("7401", "CNDL-BW-200", 1)  # _refunded_item_id
    assert (line.subtotal, line.tax, line.restock) == (aud("11.00"), aud("1.10"), False)
    assert refund.shipping == aud("0") and refund.adjustment == aud("0")
    assert refund.total == aud("12.10") and refund.reason == "damaged"
    assert refund_from_json(json.loads(json.dumps(refund_to_json(refund)))) == refund


def test_refund_total_is_lines_tax_shipping_and_adjustment() -> None:
    payload = load("refund_901.json")
    payload["shipping_lines"] = [
        {
            "id": 7412,
            "method_title": "Australia Post Parcel",
            "method_id": "flat_rate",
            "total": "-6.00",
            "total_tax": "-0.60",
            "taxes": [],
            "meta_data": [],
        }
    ]
    payload["amount"] = "20.70"  # 12.10 + 6.60 shipping + 2.00 goodwill typed into the amount box
    refund = refund_from_woocommerce(payload, load("order_refunded_partial.json"), STORE)

    assert refund.shipping == aud("6.60") and refund.adjustment == aud("2.00")
    lines = sum((x.subtotal + x.tax for x in refund.lines), aud("0"))
    assert lines + refund.shipping + refund.adjustment == refund.total == aud("20.70")


def test_amount_only_refund_is_all_adjustment() -> None:
    payload = load("refund_901.json")
    payload.update(line_items=[], tax_lines=[], amount="5.00", reason="late delivery")
    refund = refund_from_woocommerce(payload, load("order_refunded_partial.json"), STORE)
    assert refund.lines == () and refund.adjustment == aud("5.00") == refund.total


def test_money_only_refund_of_a_line_has_quantity_zero() -> None:
    payload = load("refund_901.json")
    payload["line_items"][0].update(
        quantity=0, subtotal="-5.00", subtotal_tax="-0.50", total="-5.00", total_tax="-0.50", price=0
    )
    payload["amount"] = "5.50"
    [line] = refund_from_woocommerce(payload, load("order_refunded_partial.json"), STORE).lines
    assert (line.line_external_id, line.quantity, line.subtotal, line.tax) == ("7401", 0, aud("5.00"), aud("0.50"))


def test_a_refunded_fee_is_its_own_part_with_its_tax_not_an_adjustment() -> None:
    payload = load("refund_901.json")
    payload["fee_lines"] = [
        {
            "id": 7413,
            "name": "Gift wrap",
            "total": "-5.00",
            "total_tax": "-0.50",
            "meta_data": [{"key": "_refunded_item_id", "value": "7410"}],
        }
    ]
    payload["amount"] = "17.60"
    refund = refund_from_woocommerce(payload, load("order_refunded_partial.json"), STORE)
    [fee] = refund.fees
    assert (fee.kind, fee.title, fee.amount, fee.tax, fee.source_line_id) == (
        "fee",
        "Gift wrap",
        aud("5.00"),
        aud("0.50"),
        "7410",
    )
    assert refund.adjustment == aud("0.00") and refund.total == aud("17.60") and refund.fee_total == aud("5.50")


def test_fees_cannot_make_the_refund_more_than_its_amount() -> None:
    payload = load("refund_901.json")
    payload["fee_lines"] = [{"id": 7413, "name": "Gift wrap", "total": "-5.00", "total_tax": "-0.50"}]
    with pytest.raises(MappingError, match="more than the refund amount 12.10 AUD"):
        refund_from_woocommerce(payload, load("order_refunded_partial.json"), STORE)


def test_refund_line_without_meta_is_matched_by_product() -> None:
    payload = load("refund_901.json")
    payload["line_items"][0]["meta_data"] = []
    refund = refund_from_woocommerce(payload, load("order_refunded_partial.json"), STORE)
    assert refund.lines[0].line_external_id == "7401"

    order = load("order_refunded_partial.json")
    order["line_items"][1].update(product_id=540, variation_id=0)  # two lines now sell the same product
    assert "no _refunded_item_id meta, and 2 order lines have product 540" in refund_error_of(payload, order)


def test_refund_of_a_line_the_order_does_not_have() -> None:
    payload = load("refund_901.json")
    payload["line_items"][0]["meta_data"][0]["value"] = "9999"
    message = refund_error_of(payload)
    assert "WooCommerce refund 901 of order #5102" in message
    assert "line_items[0]: _refunded_item_id '9999' is not a line of the order" in message


def test_refunded_lines_exceeding_the_amount() -> None:
    payload = load("refund_901.json")
    payload["amount"] = "10.00"
    assert (
        "refunded lines, shipping and fees add up to 12.10 AUD, more than the refund amount 10.00 AUD"
        in refund_error_of(payload)
    )


def test_refund_amounts_must_be_negative() -> None:
    payload = load("refund_901.json")
    payload["line_items"][0]["total"] = "11.00"
    assert "line_items[0].total: Expected a negative amount" in refund_error_of(payload)


@pytest.mark.parametrize("refund", [None, [], "901"])
def test_refund_that_is_not_an_object(refund: Any) -> None:
    assert "expected a JSON object (a WooCommerce refund)" in refund_error_of(refund)


def test_refund_with_a_broken_order() -> None:
    assert "order currency: Missing data for required field." in refund_error_of(
        load("refund_901.json"), {"id": 5102, "number": "5102"}
    )


# ---- status and payment ------------------------------------------------------------------------------


def test_cancelled_order_never_paid() -> None:
    order = order_from_woocommerce(load("order_cancelled.json"), STORE)
    assert (order.status, order.cancel_reason) == ("cancelled", "cancelled in WooCommerce")
    assert (order.payment.status, order.payment.method, order.payment.gateway) == (
        "voided",
        "bank_transfer",
        "Direct bank transfer",
    )
    assert order.shipping_address is None  # every field blank: a download needs no shipping address
    assert order.shipping_lines == () and order.lines[0].tax_lines == ()


@pytest.mark.parametrize(
    ("woo", "status", "payment"),
    [
        ("pending", "open", "pending"),
        ("on-hold", "open", "pending"),
        ("checkout-draft", "open", "pending"),
        ("shipped", "open", "pending"),  # plugin-defined
        ("failed", "cancelled", "voided"),
        ("trash", "cancelled", "pending"),
        ("completed", "closed", "pending"),
        ("refunded", "closed", "refunded"),
    ],
)
def test_status_vocabulary(woo: str, status: str, payment: str) -> None:
    payload = load("order_cancelled.json")
    payload["status"] = woo
    order = order_from_woocommerce(payload, STORE)
    assert (order.status, order.payment.status) == (status, payment)
    assert order.cancel_reason is None  # only "cancelled" has one


def test_refunds_adding_up_to_the_total_mean_refunded() -> None:
    payload = load("order_refunded_partial.json")
    payload["refunds"].append({"id": 905, "reason": "", "total": "-77.00"})
    assert order_from_woocommerce(payload, STORE).payment.status == "refunded"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("cod", "cod"),
        ("bacs", "bank_transfer"),
        ("cheque", "other"),
        ("paypal", "paypal"),
        ("ppcp-gateway", "paypal"),
        ("ppec_paypal", "paypal"),
        ("braintree_paypal", "paypal"),
        ("stripe", "card"),
        ("stripe_cc", "card"),
        ("woocommerce_payments", "card"),
        ("square_credit_card", "card"),
        ("", "other"),
        ("klarna_payments", "other"),
    ],
)
def test_payment_method_vocabulary(method: str, expected: str) -> None:
    payload = load("order_cod_guest.json")
    payload.update(payment_method=method, payment_method_title="")
    payment = order_from_woocommerce(payload, STORE).payment
    assert (payment.method, payment.gateway) == (expected, method)  # no title: the id is the gateway


# ---- shapes WooCommerce allows -----------------------------------------------------------------------


def _fee_only(payload: dict) -> dict:
    """The coupon order reduced to its gift-wrap fee, shipping and tax."""
    payload.update(
        line_items=[],
        coupon_lines=[],
        discount_total="0.00",
        discount_tax="0.00",
        cart_tax="0.50",
        total_tax="1.25",
        total="13.75",
    )
    payload["tax_lines"][0]["tax_total"] = "0.50"
    return payload


def test_fee_only_order_is_valid() -> None:
    # A merchant can bill a bare fee from the admin; it still has to reach the ERP.
    order = order_from_woocommerce(_fee_only(load("order_processing_coupon.json")), STORE)
    assert order.lines == () and order.totals.subtotal == usd("0")
    assert order.totals.fee_total == usd("5.00") and order.totals.total == usd("13.75")


def test_order_with_nothing_to_book() -> None:
    payload = _fee_only(load("order_processing_coupon.json"))
    payload["fee_lines"] = []
    assert "line_items: an order needs at least one line item or fee line" in error_of(payload)


def test_negative_fee_is_a_manual_discount() -> None:
    payload = load("order_processing_coupon.json")
    payload["fee_lines"][0].update(
        name="Loyalty discount", total="-5.00", total_tax="-0.50", taxes=[{"id": 1, "total": "-0.5", "subtotal": ""}]
    )
    payload.update(cart_tax="9.82", total_tax="10.57", total="116.27")
    payload["tax_lines"][0]["tax_total"] = "9.82"
    order = order_from_woocommerce(payload, STORE)
    assert order.fee_lines[0].amount == usd("-5.00") and order.totals.fee_total == usd("-5.00")
    assert order.fee_lines[0].tax_lines[0].amount == usd("-0.50")


def _quebec_tax_lines(gst: str, qst: str) -> list[dict]:
    """The order's tax_lines of a Quebec store: GST 5% (rate 1) and QST 9.975% (rate 2), with their totals."""
    rates = (("CA-GST-1", "GST", gst, 5), ("CA-QC-QST-2", "QST", qst, 9.975))
    return [
        {
            "id": n,
            "rate_code": code,
            "rate_id": n,
            "label": label,
            "compound": False,
            "tax_total": total,
            "shipping_tax_total": "0.00",
            "rate_percent": percent,
        }
        for n, (code, label, total, percent) in enumerate(rates, start=1)
    ]


def test_line_with_two_tax_rates() -> None:
    payload = load("order_cancelled.json")  # Quebec: GST 5% and QST 9.975% on 29.95
    payload["line_items"][0].update(
        total_tax="4.48",
        taxes=[{"id": 1, "total": "1.4975", "subtotal": "1.4975"}, {"id": 2, "total": "2.987513", "subtotal": ""}],
    )
    payload["tax_lines"] = _quebec_tax_lines(gst="1.50", qst="2.98")
    payload.update(cart_tax="4.48", total_tax="4.48", total="34.43")
    order = order_from_woocommerce(payload, STORE)
    assert [(t.title, t.rate, t.amount) for t in order.lines[0].tax_lines] == [
        ("GST", Decimal("0.05"), money("CAD")("1.50")),
        ("QST", Decimal("0.09975"), money("CAD")("2.98")),
    ]


def test_tax_entry_of_empty_string_is_a_rate_not_applied() -> None:
    payload = load("order_cancelled.json")  # GST applied, QST configured but "" (not applied) on the line
    payload["line_items"][0].update(
        total_tax="1.50",
        taxes=[{"id": 1, "total": "1.4975", "subtotal": "1.4975"}, {"id": 2, "total": "", "subtotal": ""}],
    )
    payload["tax_lines"] = _quebec_tax_lines(gst="1.50", qst="0.00")
    payload.update(cart_tax="1.50", total_tax="1.50", total="31.45")
    order = order_from_woocommerce(payload, STORE)
    assert [(t.title, t.amount) for t in order.lines[0].tax_lines] == [("GST", money("CAD")("1.50"))]


def test_fields_we_do_not_read_are_not_validated() -> None:
    payload = load("order_processing_coupon.json")
    payload["date_completed"] = "not a date"
    payload["line_items"][0]["image"] = "garbage"
    payload["discount_tax"] = {"unexpected": True}
    payload["meta_data"].append({"id": 1, "key": "_secret_list", "value": [1, 2]})
    assert order_from_woocommerce(payload, STORE).totals.total == usd("127.27")


def test_number_falls_back_to_id() -> None:
    payload = load("order_cancelled.json")
    payload["number"] = ""
    assert order_from_woocommerce(payload, STORE).number == "6630"


# ---- malformed payloads -----------------------------------------------------------------------------


def test_missing_line_items() -> None:
    payload = load("order_processing_coupon.json")
    del payload["line_items"]
    message = error_of(payload)
    assert "WooCommerce order #4821" in message and "line_items: Missing data for required field." in message


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("line_items", 0, "quantity"), "2", "line_items[0].quantity: Not a valid integer."),
        (("line_items", 1, "subtotal"), "35,00", "line_items[1].subtotal: Not a valid number."),
        (("line_items", 1, "price"), "abc", "line_items[1].price: Not a valid number."),
        (("total",), 127.27, None),  # a number where Woo writes a string is still a valid amount
        (("shipping_total",), "-7.50", "shipping_total: Not a valid number."),
        (("customer_id",), "12", "customer_id: Not a valid integer."),
        (("currency",), "usd", "currency: Not an ISO 4217 currency code."),
    ],
)
def test_wrong_types_name_the_field(path: tuple, value: Any, expected: str | None) -> None:
    payload = replaced(load("order_processing_coupon.json"), path, value)
    if expected is None:
        assert order_from_woocommerce(payload, STORE).totals.total == usd("127.27")
    else:
        assert expected in error_of(payload)


def test_tampered_total_does_not_reconcile() -> None:
    payload = load("order_processing_coupon.json")
    payload["total"] = "127.28"
    message = error_of(payload)
    assert "WooCommerce order #4821: totals do not reconcile" in message
    assert (
        "lines 111.50 − discounts 8.30 + shipping 7.50 + fees 5.00 + tax 11.57 = 127.27 USD, "
        "WooCommerce total is 127.28 USD"
    ) in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"discount_total": "8.40"}, "line_items subtotal − total add up to 8.30 USD, but discount_total is 8.40 USD"),
        ({"shipping_total": "8.00"}, "shipping_lines totals add up to 7.50 USD, but shipping_total is 8.00 USD"),
        ({"cart_tax": "10.80"}, "cart_tax + shipping_tax add up to 11.55 USD, but total_tax is 11.57 USD"),
    ],
)
def test_order_figures_that_disagree(change: dict, expected: str) -> None:
    assert expected in error_of({**load("order_processing_coupon.json"), **change})


def test_line_taxes_that_disagree_with_total_tax() -> None:
    payload = load("order_processing_coupon.json")
    payload["line_items"][2]["total_tax"] = "2.86"
    assert "line, shipping and fee total_tax add up to 11.58 USD, but total_tax is 11.57 USD" in error_of(payload)


def test_line_total_above_subtotal() -> None:
    payload = load("order_processing_coupon.json")
    payload["line_items"][2]["total"] = "29.00"
    assert "line_items[2]: total 29.00 (after coupons) exceeds subtotal 28.50" in error_of(payload)


def test_tax_rate_missing_from_tax_lines() -> None:
    payload = load("order_processing_coupon.json")
    payload["line_items"][0]["taxes"][0]["id"] = 7
    assert "line_items[0].taxes: rate 7 is not among the order's tax_lines" in error_of(payload)


@pytest.mark.parametrize("value", ["yesterday", "2026-13-40T25:61:00", "", 1763651772])
def test_timestamp_with_garbage(value: Any) -> None:
    payload = load("order_processing_coupon.json")
    payload["date_modified_gmt"] = value
    assert "date_modified_gmt: Not a valid datetime." in error_of(payload)


def test_missing_gmt_date_is_not_replaced_by_local_time() -> None:
    payload = load("order_processing_coupon.json")
    del payload["date_created_gmt"]
    assert "date_created_gmt: Missing data for required field." in error_of(payload)


@pytest.mark.parametrize("payload", [[], [{"id": 1}], "order", None, 42])
def test_payload_that_is_not_an_object(payload: Any) -> None:
    assert "expected a JSON object (a WooCommerce order)" in error_of(payload)


def test_empty_object_names_the_missing_fields() -> None:
    message = error_of({})
    assert "(unidentified)" in message and "id: Missing data for required field." in message
    assert "(and " in message  # capped at the first few problems


# ---- fuzz: any malformed value becomes a MappingError, never another exception ------------------------


_UNREAD = {"_links", "image", "customer_user_agent", "payment_url"}  # walking in would only cost time
_HOSTILE = [*HOSTILE[:-1], "-0.001", DELETE]


@pytest.mark.parametrize("name", ORDERS)
def test_fuzz_top_level_and_line_level_values(name: str) -> None:
    payload = load(name)
    paths = [(key,) for key in payload] + [
        (group, i, key)
        for group in ("line_items", "shipping_lines", "fee_lines", "tax_lines")
        for i, item in enumerate(payload[group])
        for key in item
    ]
    failures = [
        f"{path} <- {value!r}: {problem}"
        for path in paths
        for value in (None, "x", [], {})
        if (
            problem := survives(
                lambda path=path, value=value: order_from_woocommerce(replaced(payload, path, value), STORE), Order
            )
        )
    ]
    assert not failures, "\n".join(failures[:20])


def test_fuzz_refund_values() -> None:
    refund, order = load("refund_901.json"), load("order_refunded_partial.json")
    failures = [
        f"refund{path} <- {value!r}: {problem}"
        for path in paths(refund, _UNREAD)
        for value in _HOSTILE
        if (
            problem := survives(
                lambda path=path, value=value: refund_from_woocommerce(replaced(refund, path, value), order, STORE),
                Refund,
            )
        )
    ]
    failures += [
        f"order{path} <- {value!r}: {problem}"
        for path in [("id",), ("currency",), ("line_items",), *paths(order["line_items"], _UNREAD, ("line_items",))]
        for value in _HOSTILE
        if (
            problem := survives(
                lambda path=path, value=value: refund_from_woocommerce(refund, replaced(order, path, value), STORE),
                Refund,
            )
        )
    ]
    assert not failures, "\n".join(failures[:20])


@pytest.mark.fuzz
@pytest.mark.parametrize("name", ["order_processing_coupon.json", "order_cod_guest.json"])
def test_fuzz_every_nested_value_with_hostile_input(name: str) -> None:
    payload = load(name)
    failures = [
        f"{path} <- {value!r}: {problem}"
        for path in paths(payload, _UNREAD)
        for value in _HOSTILE
        if (
            problem := survives(
                lambda path=path, value=value: order_from_woocommerce(replaced(payload, path, value), STORE), Order
            )
        )
    ]
    assert not failures, "\n".join(failures[:20])


def test_yen_taxes_split_over_two_rates_round_to_whole_yen() -> None:
    # A JPY store (0 decimals): 2980 yen at two stacked rates, 8% = 238.4 and 2% = 59.6, total tax 298.
    # Rounded to cents, as before, each rate would carry fractions of a yen and the order would be parked.
    payload = load("order_cancelled.json")
    payload.update(currency="JPY", status="processing", cart_tax="298", total_tax="298", total="3278")
    payload["line_items"][0].update(
        subtotal="2980",
        total="2980",
        price=2980,
        total_tax="298",
        subtotal_tax="298",
        taxes=[{"id": 1, "total": "238.4", "subtotal": "238.4"}, {"id": 2, "total": "59.6", "subtotal": "59.6"}],
    )
    payload["tax_lines"] = [
        {
            "id": 1,
            "rate_code": "JP-CT-1",
            "rate_id": 1,
            "label": "Consumption tax",
            "compound": False,
            "tax_total": "238",
            "shipping_tax_total": "0",
            "rate_percent": 8,
        },
        {
            "id": 2,
            "rate_code": "JP-LOCAL-2",
            "rate_id": 2,
            "label": "Local tax",
            "compound": False,
            "tax_total": "60",
            "shipping_tax_total": "0",
            "rate_percent": 2,
        },
    ]
    order = order_from_woocommerce(payload, STORE)
    yen = money("JPY")
    assert [t.amount for t in order.lines[0].tax_lines] == [yen("238"), yen("60")]
    assert order.totals.total == yen("2980") + yen("298") == yen("3278")


def test_dinar_amounts_keep_their_three_decimals() -> None:
    # A KWD store: 12.750 less a 1.275 coupon = 11.475, shipping 1.500, no VAT: 12.975
    payload = load("order_cancelled.json")
    payload.update(
        currency="KWD",
        status="processing",
        discount_total="1.275",
        shipping_total="1.500",
        total="12.975",
        cart_tax="0.000",
        total_tax="0.000",
        shipping_tax="0.000",
    )
    payload["line_items"][0].update(subtotal="12.750", total="11.475", price=11.475)
    payload["shipping_lines"] = [
        {
            "id": 1,
            "method_title": "Aramex",
            "method_id": "flat_rate",
            "instance_id": "1",
            "total": "1.500",
            "total_tax": "0.000",
            "taxes": [],
            "meta_data": [],
        }
    ]
    order = order_from_woocommerce(payload, STORE)
    kwd = money("KWD")
    assert order.lines[0].line_total == kwd("11.475") and order.totals.total == kwd("12.975")


def test_a_fetched_refund_holding_a_nul_is_refused_naming_where() -> None:
    refund = load("refund_901.json")
    refund["reason"] = "damaged\x00in transit"
    assert "WooCommerce refund 901 of order" in refund_error_of(refund)
    assert "reason holds a NUL character" in refund_error_of(refund)
