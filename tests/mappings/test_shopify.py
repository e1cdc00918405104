"""Shopify REST order JSON -> canonical Order (platforms.shopify.mapping.order_from_shopify)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mappings.canonical import Money, Order, TaxLine
from mappings.canonical_json import order_from_json, order_to_json
from mappings.errors import MappingError
from platforms.shopify.mapping import order_from_shopify
from tests.mappings.fuzz import HOSTILE, paths, replaced, survives

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
ALL_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.json"))
STORE = "northwind"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def shop(payload: dict, key: str) -> Decimal:
    return Decimal(payload[key]["shop_money"]["amount"])


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def error_of(payload: Any) -> str:
    with pytest.raises(MappingError) as info:
        order_from_shopify(payload, STORE)
    return str(info.value)


def test_fixture_set_is_complete() -> None:
    assert ALL_FIXTURES == [
        "order_additional_fees.json",
        "order_discount_multiline.json",
        "order_duties.json",
        "order_guest.json",
        "order_jpy.json",
        "order_kwd.json",
        "order_presentment_currency.json",
        "order_tax_included.json",
        "order_tip.json",
    ]


# ---- every fixture --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_totals_equal_the_shop_money_totals_to_the_cent(name: str) -> None:
    payload = load(name)
    totals = order_from_shopify(payload, STORE).totals

    tip_lines = sum(
        (Decimal(li["price"]) * li["quantity"] for li in payload["line_items"] if li.get("tip_payment_gateway")),
        Decimal(0),
    )
    assert totals.subtotal.amount == shop(payload, "total_line_items_price_set") - tip_lines
    assert totals.discount_total.amount == shop(payload, "total_discounts_set")
    assert totals.shipping_total.amount == shop(payload, "total_shipping_price_set")
    assert totals.tax_total.amount == shop(payload, "total_tax_set")
    assert totals.total.amount == shop(payload, "total_price_set") == Decimal(payload["total_price"])
    currencies = {
        m.currency
        for m in (totals.subtotal, totals.discount_total, totals.shipping_total, totals.tax_total, totals.total)
    }
    assert currencies == {payload["currency"]}


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_lines_and_shipping_add_up_to_the_totals(name: str) -> None:
    order = order_from_shopify(load(name), STORE)
    cur = order.currency
    gross = sum((line.gross for line in order.lines), Money.zero(cur))
    discounts = sum((x.discount_total for x in (*order.lines, *order.shipping_lines)), Money.zero(cur))
    shipping = sum((s.price for s in order.shipping_lines), Money.zero(cur))

    assert gross == order.totals.subtotal
    assert discounts == order.totals.discount_total
    assert shipping == order.totals.shipping_total
    fees = sum((f.amount for f in order.fee_lines), Money.zero(cur))
    assert fees == order.totals.fees
    tax = Money.zero(cur) if order.taxes_included else order.totals.tax_total
    assert gross - discounts + shipping + tax + fees == order.totals.total


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_round_trips_through_canonical_json(name: str) -> None:
    order = order_from_shopify(load(name), STORE)
    assert order_from_json(json.loads(json.dumps(order_to_json(order)))) == order


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_identity_and_source(name: str) -> None:
    payload = load(name)
    order = order_from_shopify(payload, STORE)
    assert (order.source, order.store) == ("shopify", STORE)
    assert order.external_id == str(payload["id"])
    assert order.number == payload["name"]
    assert order.external_ref == f"shopify:{STORE}:{payload['id']}"
    assert order.status == "open"
    assert order.placed_at.tzinfo == UTC and order.updated_at.tzinfo == UTC


# ---- order_discount_multiline.json: USD, 10% code over 3 lines, tax on top ---------------------------


def test_multiline_lines() -> None:
    order = order_from_shopify(load("order_discount_multiline.json"), STORE)

    assert [line.line_no for line in order.lines] == [1, 2, 3]
    assert [line.external_id for line in order.lines] == ["14123456789001", "14123456789002", "14123456789003"]
    assert [line.sku for line in order.lines] == ["SOCK-MER-M-CHA", "SHOE-TR2-42-SLT", None]
    assert [line.quantity for line in order.lines] == [3, 1, 2]
    assert [line.unit_price for line in order.lines] == [usd("12.50"), usd("129.00"), usd("18.75")]
    assert [line.discount_total for line in order.lines] == [usd("3.75"), usd("12.90"), usd("3.75")]
    assert [line.line_total for line in order.lines] == [usd("33.75"), usd("116.10"), usd("33.75")]
    assert order.lines[0].tax_lines == (TaxLine("MA State Tax", Decimal("0.0625"), usd("2.11")),)
    assert order.lines[1].title == "Trail Runner 2" and order.lines[1].variant_title == "42 / Slate"
    assert (order.lines[0].product_id, order.lines[0].variant_id) == ("8012345678901", "44123456789001")
    assert order.lines[2].variant_id is None and order.lines[2].variant_title == ""


def test_multiline_order_level_fields() -> None:
    order = order_from_shopify(load("order_discount_multiline.json"), STORE)

    assert order.currency == "USD" and order.taxes_included is False
    [discount] = order.discounts
    assert (discount.code, discount.kind, discount.amount) == ("WELCOME10", "percentage", usd("20.40"))
    [ship] = order.shipping_lines
    assert (ship.code, ship.price, ship.discount_total) == ("STANDARD", usd("9.95"), usd("0.00"))
    assert ship.tax_lines[0].amount == usd("0.62")
    assert order.tax_lines == (TaxLine("MA State Tax", Decimal("0.0625"), usd("12.10")),)
    assert order.customer.external_id == "7201234567890" and not order.customer.is_guest
    assert order.customer.email == "Dana.Whitfield@Example.com"  # as given: the ERP side normalises
    assert order.customer.phone == "+16175550142"
    assert (order.payment.status, order.payment.gateway, order.payment.method) == ("paid", "shopify_payments", "card")
    assert order.payment.transaction_ref is None
    assert order.note == "Please leave with the front desk."
    assert order.note_attributes == {"gift_wrap": "yes", "delivery_window": "weekday mornings"}
    assert order.tags == ("vip", "wholesale", "first-order")
    assert order.placed_at == datetime(2026, 11, 20, 15, 15, tzinfo=UTC)
    assert order.updated_at == datetime(2026, 11, 20, 15, 16, 12, tzinfo=UTC)
    address = order.shipping_address
    assert address is not None
    assert (address.line1, address.line2, address.city, address.region, address.postal_code, address.country_code) == (
        "200 Clarendon St",
        "Apt 14B",
        "Boston",
        "MA",
        "02116",
        "US",
    )
    assert address.company == ""  # null in the payload


# ---- the other fixtures ------------------------------------------------------------------------------


def test_tax_included_order_does_not_add_tax_again() -> None:
    order = order_from_shopify(load("order_tax_included.json"), STORE)
    eur = lambda amount: Money(Decimal(amount), "EUR")  # noqa: E731

    assert order.taxes_included is True and order.currency == "EUR"
    assert order.totals.total == eur("107.80")  # 107.90 - 5.00 + 4.90, VAT 17.97 already inside
    assert order.totals.tax_total == eur("17.97")
    assert [line.discount_total for line in order.lines] == [eur("2.78"), eur("2.22")]
    assert order.lines[1].tax_lines[0].rate == Decimal("0.2")
    assert order.payment.method == "paypal"
    assert order.billing_address is not None and order.billing_address.region == ""  # no province


def test_presentment_currency_is_kept_apart_from_shop_money() -> None:
    order = order_from_shopify(load("order_presentment_currency.json"), STORE)

    assert order.currency == "USD"
    assert order.presentment_currency == "EUR"
    assert order.presentment_total == Money(Decimal("78.79"), "EUR")
    assert order.totals.total == usd("85.95")
    assert [line.unit_price for line in order.lines] == [usd("48.00"), usd("9.00")]
    assert order.lines[1].discount_total == usd("4.05")  # shop money, not the EUR 3.71
    assert order.shipping_lines[0].price == usd("15.00")
    assert order.payment.status == "authorized"


def test_guest_checkout() -> None:
    payload = load("order_guest.json")
    assert "customer" not in payload
    order = order_from_shopify(payload, STORE)

    assert order.customer.is_guest and order.customer.external_id is None
    assert order.customer.email == "priya.r@example.in"
    assert (order.customer.first_name, order.customer.last_name) == ("Priya", "Raghunathan")
    assert order.customer.phone == "+91 98765 43210"  # kept as given
    assert (order.payment.status, order.payment.method) == ("pending", "cod")
    assert order.payment.gateway == "Cash on Delivery (COD)"
    assert order.placed_at == datetime(2026, 11, 22, 8, 35, 33, tzinfo=UTC)  # from +05:30
    assert order.tags == () and order.note == "" and order.note_attributes == {}


def test_guest_fallbacks_for_email_and_phone() -> None:
    payload = load("order_guest.json")
    payload["email"] = ""
    payload["contact_email"] = "contact@example.in"
    payload["billing_address"]["phone"] = ""
    payload["shipping_address"] = dict(payload["shipping_address"], phone="+91 22 5555 0100")
    customer = order_from_shopify(payload, STORE).customer
    assert customer.email == "contact@example.in"
    assert customer.phone == "+91 22 5555 0100"

    payload["contact_email"] = None
    payload["shipping_address"]["phone"] = None
    payload["phone"] = None
    customer = order_from_shopify(payload, STORE).customer
    assert customer.email is None and customer.phone is None


# ---- semantics ------------------------------------------------------------------------------------


def test_shipping_discount_counts_in_discount_total_not_in_shipping_total() -> None:
    payload = load("order_discount_multiline.json")
    payload["shipping_lines"][0]["discount_allocations"] = [
        {
            "amount": "9.95",
            "discount_application_index": 1,
            "amount_set": {
                "shop_money": {"amount": "9.95", "currency_code": "USD"},
                "presentment_money": {"amount": "9.95", "currency_code": "USD"},
            },
        }
    ]
    for key, amount in (("total_discounts", "30.35"), ("total_price", "195.70")):
        payload[key] = amount
        payload[f"{key}_set"]["shop_money"]["amount"] = amount
        payload[f"{key}_set"]["presentment_money"]["amount"] = amount
    order = order_from_shopify(payload, STORE)

    assert order.totals.shipping_total == usd("9.95")
    assert order.totals.discount_total == usd("30.35")
    assert order.shipping_lines[0].net == usd("0.00")


def test_line_total_discount_is_the_fallback_without_allocations() -> None:
    payload = load("order_discount_multiline.json")
    for item in payload["line_items"]:
        allocated = item["discount_allocations"][0]["amount"]
        item["discount_allocations"] = []
        item["total_discount"] = allocated
        del item["total_discount_set"]
    order = order_from_shopify(payload, STORE)
    assert [line.discount_total for line in order.lines] == [usd("3.75"), usd("12.90"), usd("3.75")]


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"cancelled_at": "2026-11-21T09:00:00-05:00", "cancel_reason": "customer"}, "cancelled"),
        ({"closed_at": "2026-11-25T09:00:00-05:00"}, "closed"),
    ],
)
def test_status(fields: dict, status: str) -> None:
    order = order_from_shopify({**load("order_discount_multiline.json"), **fields}, STORE)
    assert order.status == status
    assert order.cancel_reason == fields.get("cancel_reason")


def test_registered_customer_without_email_uses_the_order_email() -> None:
    payload = load("order_discount_multiline.json")
    payload["customer"]["email"] = None
    payload["email"] = "orders@example.com"
    assert order_from_shopify(payload, STORE).customer.email == "orders@example.com"


def test_fields_we_do_not_read_are_not_validated() -> None:
    payload = load("order_presentment_currency.json")
    payload["line_items"][0]["price_set"]["presentment_money"] = "not money"
    payload["discount_applications"] = "garbage"
    payload["fulfillment_status"] = {"unexpected": True}
    assert order_from_shopify(payload, STORE).lines[0].unit_price == usd("48.00")


def test_number_falls_back_to_order_number() -> None:
    payload = load("order_discount_multiline.json")
    payload["name"] = None
    assert order_from_shopify(payload, STORE).number == "1001"


@pytest.mark.parametrize(
    ("gateway", "method"),
    [
        ("Cash on Delivery (COD)", "cod"),
        ("cash_on_delivery", "cod"),
        ("COD", "cod"),
        ("shopify_payments", "card"),
        ("bogus", "card"),
        ("stripe", "card"),
        ("paypal", "paypal"),
        ("PayPal Express Checkout", "paypal"),
        ("manual", "manual"),
        ("gift_card", "gift_card"),
        ("Bank Deposit", "bank_transfer"),
        ("bank_transfer", "bank_transfer"),
        ("Klarna", "other"),
        ("Barcode Pay", "other"),
    ],
)
def test_payment_method_vocabulary(gateway: str, method: str) -> None:
    payload = load("order_guest.json")
    payload["payment_gateway_names"] = [gateway]
    assert order_from_shopify(payload, STORE).payment.method == method


def test_gateway_field_is_used_when_gateway_names_are_absent() -> None:
    payload = load("order_guest.json")
    del payload["payment_gateway_names"]
    payload["gateway"] = "manual"
    payload["financial_status"] = None
    payment = order_from_shopify(payload, STORE).payment
    assert (payment.gateway, payment.method, payment.status) == ("manual", "manual", "pending")


# ---- malformed payloads -----------------------------------------------------------------------------


def test_missing_line_items() -> None:
    payload = load("order_discount_multiline.json")
    del payload["line_items"]
    message = error_of(payload)
    assert "#1001" in message and "line_items: Missing data for required field." in message


def test_price_that_is_not_a_number() -> None:
    payload = load("order_discount_multiline.json")
    payload["line_items"][1]["price"] = "abc"
    assert "line_items[1].price: Not a valid number." in error_of(payload)


def test_shop_money_amount_that_is_not_a_number() -> None:
    payload = load("order_discount_multiline.json")
    payload["line_items"][2]["price_set"]["shop_money"]["amount"] = "12,50"
    assert "line_items[2].price_set.shop_money.amount: Not a valid number." in error_of(payload)


def test_total_off_by_one_cent_does_not_reconcile() -> None:
    payload = load("order_discount_multiline.json")
    payload["total_price"] = "205.66"
    payload["total_price_set"]["shop_money"]["amount"] = "205.66"
    message = error_of(payload)
    assert "Shopify order #1001: totals do not reconcile" in message
    assert "lines 204.00 − discounts 20.40 + shipping 9.95 + tax 12.10 = 205.65 USD" in message
    assert "total_price_set.shop_money is 205.66 USD" in message


def test_plain_amount_disagreeing_with_its_shop_money_twin() -> None:
    payload = load("order_discount_multiline.json")
    payload["total_price"] = "205.66"
    assert "total_price is 205.66 but total_price_set.shop_money.amount is 205.65" in error_of(payload)


def test_line_gross_not_matching_total_line_items_price() -> None:
    payload = load("order_discount_multiline.json")
    payload["line_items"][0]["quantity"] = 4
    assert "quantity × price adds up to 216.50 USD" in error_of(payload)


def test_allocations_not_matching_total_discounts() -> None:
    payload = load("order_discount_multiline.json")
    payload["line_items"][0]["discount_allocations"][0]["amount"] = "3.70"
    payload["line_items"][0]["discount_allocations"][0]["amount_set"]["shop_money"]["amount"] = "3.70"
    assert "discounts do not reconcile" in error_of(payload)


def test_shipping_set_not_matching_shipping_lines() -> None:
    payload = load("order_discount_multiline.json")
    payload["total_shipping_price_set"]["shop_money"]["amount"] = "0.00"
    assert "shipping_lines prices add up to 9.95 USD" in error_of(payload)


def test_shop_money_in_another_currency() -> None:
    payload = load("order_presentment_currency.json")
    payload["line_items"][0]["price_set"]["shop_money"]["currency_code"] = "EUR"
    assert "line_items[0].price_set.shop_money.currency_code is EUR" in error_of(payload)


@pytest.mark.parametrize("key", ["created_at", "updated_at"])
def test_timestamp_without_offset(key: str) -> None:
    payload = load("order_discount_multiline.json")
    payload[key] = "2026-11-20T10:15:00"
    assert f"{key}: Timestamp has no UTC offset" in error_of(payload)


def test_non_dict_line_item() -> None:
    payload = load("order_discount_multiline.json")
    payload["line_items"][0] = "SOCK-MER-M-CHA"
    assert "line_items[0]: Invalid input type." in error_of(payload)


@pytest.mark.parametrize("payload", [[], [{"id": 1}], "order", None, 42])
def test_payload_that_is_not_an_object(payload: Any) -> None:
    assert "expected a JSON object" in error_of(payload)


def test_empty_object_names_the_missing_fields() -> None:
    message = error_of({})
    assert "(unidentified)" in message and "id: Missing data for required field." in message


# ---- fuzz: any malformed value becomes a MappingError, never another exception ------------------------


# Subtrees the mapping never reads: replacing the subtree itself is still tried, but walking
# into it would only make the test slower.
_UNREAD = {
    "client_details",
    "discount_applications",
    "default_address",
    "email_marketing_consent",
    "current_shipping_price_set",
    "current_subtotal_price_set",
    "current_total_discounts_set",
    "current_total_price_set",
    "current_total_tax_set",
    "subtotal_price_set",
    "discounted_price_set",
    "refunds",
    "fulfillments",
    "returns",
    "duties",
    "properties",
}


def _survives(payload: dict) -> str | None:
    return survives(lambda: order_from_shopify(payload, STORE), Order)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fuzz_top_level_and_line_level_values(name: str) -> None:
    payload = load(name)
    paths = [(key,) for key in payload] + [
        ("line_items", i, key) for i, item in enumerate(payload["line_items"]) for key in item
    ]
    failures = [
        f"{path} <- {value!r}: {problem}"
        for path in paths
        for value in (None, "x", [], {})
        if (problem := _survives(replaced(payload, path, value)))
    ]
    assert not failures, "\n".join(failures[:20])


@pytest.mark.fuzz
@pytest.mark.parametrize("name", ["order_discount_multiline.json", "order_guest.json"])
def test_fuzz_every_nested_value_with_hostile_input(name: str) -> None:
    payload = load(name)
    failures = [
        f"{path} <- {value!r}: {problem}"
        for path in paths(payload, _UNREAD)
        for value in HOSTILE
        if (problem := _survives(replaced(payload, path, value)))
    ]
    assert not failures, "\n".join(failures[:20])


# ---- tips, duties, additional fees: money that is neither goods nor shipping ------------------------


def test_tip_is_a_fee_line_of_its_own_not_goods() -> None:
    # 2 × 24.50 beanies = 49.00, NY tax 8.875% = 4.35, shipping 6.00, a 15% tip of 7.35
    order = order_from_shopify(load("order_tip.json"), STORE)

    assert [(line.line_no, line.sku) for line in order.lines] == [(1, "BEANIE-MER-CHR")]
    assert [(f.kind, f.title, f.amount, f.source_line_id) for f in order.fee_lines] == [
        ("tip", "Tip", usd("7.35"), "15334455667790")
    ]
    t = order.totals
    assert (t.subtotal, t.shipping_total, t.tax_total, t.fees, t.total) == (
        usd("49.00"),
        usd("6.00"),
        usd("4.35"),
        usd("7.35"),
        usd("66.70"),
    )
    assert order.fees_of("tip") == usd("7.35") and order.fees_of("duty") == usd("0")
    assert usd("49.00") + usd("6.00") + usd("4.35") + usd("7.35") == t.total


def test_tip_lines_may_be_left_out_of_total_line_items_price() -> None:
    payload = load("order_tip.json")
    payload["total_line_items_price"] = "49.00"
    payload["total_line_items_price_set"]["shop_money"]["amount"] = "49.00"
    assert order_from_shopify(payload, STORE) == order_from_shopify(load("order_tip.json"), STORE)


def test_a_tip_known_only_from_total_tip_received_is_still_booked() -> None:
    payload = load("order_tip.json")
    payload["line_items"] = payload["line_items"][:1]
    payload["total_line_items_price"] = "49.00"
    payload["total_line_items_price_set"]["shop_money"]["amount"] = "49.00"
    order = order_from_shopify(payload, STORE)
    assert [(f.kind, f.amount, f.source_line_id) for f in order.fee_lines] == [("tip", usd("7.35"), None)]
    assert order.totals.total == usd("66.70")


def test_tip_lines_disagreeing_with_total_tip_received_are_parked() -> None:
    payload = load("order_tip.json")
    payload["total_tip_received"] = "7.00"
    assert "tips do not reconcile: the tip line items add up to 7.35 USD, but total_tip_received is 7.00" in error_of(
        payload
    )


def test_an_order_that_still_does_not_add_up_names_every_part_and_the_difference() -> None:
    payload = load("order_tip.json")
    payload["total_price"] = "66.75"
    payload["total_price_set"]["shop_money"]["amount"] = "66.75"
    message = error_of(payload)
    assert (
        "totals do not reconcile: lines 49.00 − discounts 0.00 + shipping 6.00 + tax 4.35 + tips 7.35 = "
        "66.70 USD, Shopify total_price_set.shop_money is 66.75 USD (a difference of 0.05)"
    ) in message


def _gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


def test_duties_are_fee_lines_naming_their_line_and_tariff_code() -> None:
    # GBP shop, buyer in Canada: scarf 60.00 + gloves 45.00, duties 10.80 + 7.65, GST 5% on goods,
    # duties and shipping (3.00 + 2.25 + 0.54 + 0.38 + 0.60 = 6.77), shipping 12.00
    order = order_from_shopify(load("order_duties.json"), STORE)

    assert [
        (f.kind, f.title, f.amount, f.source_line_id, [t.amount for t in f.tax_lines]) for f in order.fee_lines
    ] == [
        ("duty", "Duty: Lambswool Scarf (HS 611710, origin GB)", _gbp("10.80"), "15334455667791", [_gbp("0.54")]),
        ("duty", "Duty: Leather Gloves (HS 420329, origin GB)", _gbp("7.65"), "15334455667792", [_gbp("0.38")]),
    ]
    t = order.totals
    assert (t.subtotal, t.shipping_total, t.tax_total, t.fees, t.total) == (
        _gbp("105.00"),
        _gbp("12.00"),
        _gbp("6.77"),
        _gbp("18.45"),
        _gbp("142.22"),
    )
    assert _gbp("105.00") + _gbp("12.00") + _gbp("6.77") + _gbp("18.45") == t.total
    assert (order.presentment_currency, order.presentment_total) == ("CAD", Money(Decimal("248.89"), "CAD"))


def test_duty_money_on_the_duty_itself_as_older_payloads_send_it() -> None:
    payload = load("order_duties.json")
    for line in payload["line_items"]:
        for duty in line["duties"]:
            duty["shop_money"] = duty.pop("price_set")["shop_money"]
    assert order_from_shopify(payload, STORE) == order_from_shopify(load("order_duties.json"), STORE)


def test_duties_known_only_from_the_order_total_make_one_line() -> None:
    payload = load("order_duties.json")
    for line in payload["line_items"]:
        line["duties"] = []
    assert [(f.kind, f.title, f.amount) for f in order_from_shopify(payload, STORE).fee_lines] == [
        ("duty", "Duties", _gbp("18.45"))
    ]


def test_duties_included_in_the_prices_are_not_added_again() -> None:
    payload = load("order_duties.json")
    payload["duties_included"] = True
    payload["total_price"] = "123.77"  # 142.22 − 18.45
    payload["total_price_set"]["shop_money"]["amount"] = "123.77"
    order = order_from_shopify(payload, STORE)
    assert order.fee_lines == () and order.totals.total == _gbp("123.77")


def test_line_duties_disagreeing_with_the_order_total_are_parked() -> None:
    payload = load("order_duties.json")
    payload["original_total_duties_set"]["shop_money"]["amount"] = "18.40"
    assert (
        "duties do not reconcile: line_items[].duties add up to 18.45 GBP, "
        "but original_total_duties_set.shop_money is 18.40 GBP"
    ) in error_of(payload)


def test_additional_fees_such_as_a_retail_delivery_fee() -> None:
    # Colorado: 3 × 14.00 socks, state 2.9% 1.22 + Denver 4.81% 2.02, shipping 5.00, delivery fee 0.28
    order = order_from_shopify(load("order_additional_fees.json"), STORE)
    assert [(f.kind, f.amount) for f in order.fee_lines] == [("additional_fee", usd("0.28"))]
    assert order.totals.total == usd("42.00") + usd("5.00") + usd("3.24") + usd("0.28") == usd("50.52")


# ---- currencies with 0 and 3 decimals ------------------------------------------------------------


def test_yen_has_no_decimals() -> None:
    # 2 × ¥1650 with 10% consumption tax included (300), shipping ¥550 (tax 50)
    order = order_from_shopify(load("order_jpy.json"), STORE)
    yen = lambda amount: Money(Decimal(amount), "JPY")  # noqa: E731
    t = order.totals
    assert (t.subtotal, t.shipping_total, t.tax_total, t.total) == (yen("3300"), yen("550"), yen("350"), yen("3850"))
    assert order.lines[0].line_total == yen("3300")


def test_dinar_keeps_three_decimals() -> None:
    # 12.750 KWD less 10% (1.275) = 11.475, shipping 1.500, no VAT: 12.975
    order = order_from_shopify(load("order_kwd.json"), STORE)
    kwd = lambda amount: Money(Decimal(amount), "KWD")  # noqa: E731
    assert order.lines[0].line_total == kwd("11.475")
    assert order.totals.total == kwd("12.975") and order.totals.discount_total == kwd("1.275")


def test_yen_with_decimals_is_parked() -> None:
    payload = load("order_jpy.json")  # every sum still adds up: only the yen's exponent is wrong
    line = payload["line_items"][0]
    line["price"] = line["price_set"]["shop_money"]["amount"] = "1650.5"
    for key, amount in (("total_line_items_price", "3301"), ("total_price", "3851")):
        payload[key] = payload[f"{key}_set"]["shop_money"]["amount"] = amount
    assert "line 1 unit price 1650.5 JPY has more decimals than JPY's 0" in error_of(payload)


# ---- order edits ---------------------------------------------------------------------------------


def test_units_an_edit_took_off_are_counted_apart_and_the_totals_still_reconcile() -> None:
    payload = load("order_discount_multiline.json")
    sock = payload["line_items"][0]
    sock["current_quantity"] = sock["quantity"] - 2
    order = order_from_shopify(payload, "northwind")
    line = order.lines[0]
    assert (line.quantity, line.removed, line.current_quantity) == (sock["quantity"], 2, sock["quantity"] - 2)
    assert order.totals.total.amount == Decimal(payload["total_price"])
    assert order_from_json(json.loads(json.dumps(order_to_json(order)))) == order


def test_an_unedited_line_has_nothing_removed_with_or_without_current_quantity() -> None:
    payload = load("order_discount_multiline.json")
    payload["line_items"][1].pop("current_quantity", None)
    order = order_from_shopify(payload, "northwind")
    assert [line.removed for line in order.lines] == [0] * len(order.lines)


def test_current_quantity_above_quantity_is_refused() -> None:
    payload = load("order_discount_multiline.json")
    payload["line_items"][0]["current_quantity"] = payload["line_items"][0]["quantity"] + 1
    assert "current_quantity 4 is more than quantity 3" in error_of(payload)
