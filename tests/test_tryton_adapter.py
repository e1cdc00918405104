"""The Tryton back end against a real trytond 8.2 (no mocks): what each contract call leaves in Tryton.

The harness (tests/erp_backends/tryton.py) sets Tryton up once in .tryton/ (about a minute the first
time) and gives every test a database reset to the setup snapshot. The generic promises every back end
keeps are in test_erp_contract.py; this module checks the Tryton side of them: the sale, its lines and
totals, the party, the notes, the cancelled shipments, the return sale, stock and shipments.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.erp import build_erp
from adapters.erp.base import PaymentRecord, PermanentErpError, RetryableErpError
from adapters.erp.tryton import TrytonErp, parse_tracking
from mappings.canonical import Money, Order, Refund, RefundLine, Shipment, ShipmentLine, StockLevel
from platforms.shopify.mapping import order_from_shopify
from platforms.shopify.refunds import refund_from_shopify
from platforms.woocommerce.mapping import order_from_woocommerce, refund_from_woocommerce
from tests.conftest import load_fixture
from tests.erp_backends.tryton import TrytonHarness

pytestmark = pytest.mark.tryton
CENT = Decimal("0.01")


@pytest.fixture
def harness(tmp_path):  # type: ignore[no-untyped-def]
    h = TrytonHarness(tmp_path)
    yield h
    h.close()


def shopify_order(name: str = "order_discount_multiline", **changes) -> Order:  # type: ignore[no-untyped-def]
    payload = load_fixture("shopify", f"{name}.json")
    payload.update(changes)
    return order_from_shopify(payload, "acme-us")


def pushed(harness: TrytonHarness, order: Order | None = None) -> tuple[TrytonErp, Order, str]:
    order = order or shopify_order()
    harness.add_products([line.sku for line in order.lines if line.sku])
    erp = harness.adapter()
    customer = erp.find_customer((order.customer.email or "").lower() or None, None) or erp.create_customer(
        order.customer, f"shopify:acme-us:customer:{order.customer.external_id}"
    )
    result = erp.push_order(order, customer)
    assert result.created, result
    return erp, order, result.erp_ref


def sale_of(harness: TrytonHarness, order_ref: str, fields: list[str]) -> dict:
    (row,) = harness.rpc.call("sale.sale", "search_read", [("reference", "=", order_ref)], 0, None, None, fields)
    return row


def sale_lines(harness: TrytonHarness, sale_id: int) -> list[dict]:
    return harness.rpc.call(
        "sale.line",
        "search_read",
        [("sale", "=", sale_id)],
        0,
        None,
        [("sequence", "ASC"), ("id", "ASC")],
        ["product.code", "quantity", "unit_price", "amount", "description", "taxes"],
    )


def tax_id(harness: TrytonHarness, name: str) -> int:
    (found,) = harness.rpc.call("account.tax", "search", [("name", "=", name)], 0, None, None)
    return found


def test_an_order_becomes_a_confirmed_sale_with_the_stores_total(harness):
    order = shopify_order()
    harness.add_products([line.sku for line in order.lines if line.sku])
    erp = harness.adapter()
    customer = erp.create_customer(order.customer, "shopify:acme-us:customer:7201234567890")
    started = time.monotonic()
    result = erp.push_order(order, customer)
    elapsed = time.monotonic() - started
    print(f"\npush_order (addresses, create, quote, confirm, note): {elapsed * 1000:.0f} ms")

    sale = sale_of(
        harness,
        order.external_ref,
        [
            "id",
            "state",
            "party",
            "total_amount",
            "untaxed_amount",
            "tax_amount",
            "currency.code",
            "comment",
            "invoice_address",
            "shipment_address",
            "shipments",
            "invoices",
            "sale_date",
        ],
    )
    assert result.erp_ref == str(sale["id"]) and result.note == ""
    assert sale["state"] == "processing"  # confirmed and processed: invoice and shipment exist
    assert sale["shipments"] and sale["invoices"]
    assert str(sale["party"]) == customer
    assert sale["currency."]["code"] == "USD"
    assert sale["total_amount"] == order.totals.total.amount == Decimal("205.65")
    # the store's tax as Tryton's own tax: MA State Tax 6.25% on 193.55 of goods and shipping
    assert (sale["untaxed_amount"], sale["tax_amount"]) == (Decimal("193.55"), Decimal("12.10"))
    assert sale["comment"] == order.note
    assert sale["sale_date"] == order.placed_at.date()

    lines = sale_lines(harness, sale["id"])
    got = [
        ((ln.get("product.") or {}).get("code"), Decimal(str(ln["quantity"])), ln["unit_price"], ln["amount"])
        for ln in lines
    ]
    assert got == [
        ("SOCK-MER-M-CHA", 3, Decimal("11.25"), Decimal("33.75")),  # 3 x 12.50 less 3.75 discount
        ("SHOE-TR2-42-SLT", 1, Decimal("116.10"), Decimal("116.10")),
        (None, 2, Decimal("16.875"), Decimal("33.75")),  # no SKU: a line without product
        ("SHIPPING", 1, Decimal("9.95"), Decimal("9.95")),
    ]
    assert lines[0]["description"] == "Merino Crew Sock - M / Charcoal"
    assert [ln["taxes"] for ln in lines] == [[tax_id(harness, "MA State Tax")]] * 4

    (address,) = harness.rpc.call(
        "party.address",
        "read",
        [sale["shipment_address"]],
        ["street_unstructured", "postal_code", "city", "country.code"],
    )
    assert address["street_unstructured"] == "200 Clarendon St\nApt 14B"
    assert (address["postal_code"], address["country."]["code"]) == ("02116", "US")
    assert address["city"].startswith("Boston")
    assert sale["invoice_address"] == sale["shipment_address"]  # billing and shipping are the same address

    view = erp.get_order(order.external_ref)
    assert (view.status, view.currency, view.total) == ("confirmed", "USD", Decimal("205.65"))
    assert view.customer_id == customer
    assert view.payment_status == "paid"  # the store's status at import, until payments are recorded


@pytest.mark.parametrize(
    "platform,fixture",
    [
        ("shopify", "order_tax_included"),
        ("shopify", "order_presentment_currency"),
        ("shopify", "order_guest"),
        ("woocommerce", "order_processing_coupon"),
        ("woocommerce", "order_cod_guest"),
        ("woocommerce", "order_refunded_partial"),
    ],
)
def test_totals_match_the_store_to_the_cent(harness, platform, fixture):
    payload = load_fixture(platform, f"{fixture}.json")
    order = order_from_shopify(payload, "acme") if platform == "shopify" else order_from_woocommerce(payload, "acme")
    erp, order, erp_ref = pushed(harness, order)
    (sale,) = harness.rpc.call("sale.sale", "read", [int(erp_ref)], ["state", "total_amount", "currency.code"])
    assert sale["state"] == "processing"
    assert (sale["total_amount"], sale["currency."]["code"]) == (order.totals.total.amount, order.currency)
    assert erp.get_order(order.external_ref).total == order.totals.total.amount


def test_a_net_unit_price_that_does_not_divide_evenly_gets_a_rounding_line(harness):
    base = shopify_order()
    line = dataclasses.replace(
        base.lines[0],
        quantity=3,
        unit_price=Money(Decimal("3.34"), "USD"),
        discount_total=Money(Decimal("0.01"), "USD"),
        tax_lines=(),
    )  # 10.01 for 3 units
    total = Money(Decimal("10.01"), "USD")
    zero = Money(Decimal("0"), "USD")
    order = dataclasses.replace(
        base,
        lines=(line,),
        shipping_lines=(),
        tax_lines=(),
        external_id="rounding-1",
        totals=dataclasses.replace(
            base.totals,
            subtotal=Money(Decimal("10.02"), "USD"),
            discount_total=Money(Decimal("0.01"), "USD"),
            shipping_total=zero,
            tax_total=zero,
            total=total,
        ),
    )
    erp, order, erp_ref = pushed(harness, order)
    lines = sale_lines(harness, int(erp_ref))
    assert [(ln["unit_price"], ln["amount"]) for ln in lines] == [(Decimal("3.3367"), Decimal("10.01"))]
    assert erp.get_order(order.external_ref).total == Decimal("10.01")


def test_pushing_twice_makes_one_sale_and_an_older_version_changes_nothing(harness):
    erp, order, erp_ref = pushed(harness)
    customer = str(sale_of(harness, order.external_ref, ["party"])["party"])
    again = erp.push_order(order, customer)
    assert (again.erp_ref, again.created, again.updated) == (erp_ref, False, False)
    older = dataclasses.replace(order, updated_at=order.updated_at - timedelta(hours=1), note="older")
    assert not erp.push_order(older, customer).updated
    count = harness.rpc.call("sale.sale", "search_count", [("reference", "=", order.external_ref)])
    assert count == 1
    assert sale_of(harness, order.external_ref, ["comment"])["comment"] == order.note


def test_a_confirmed_sale_takes_a_new_comment_but_not_new_lines(harness):
    erp, order, erp_ref = pushed(harness)
    customer = str(sale_of(harness, order.external_ref, ["party"])["party"])
    harness.rpc.call("sale.sale", "write", [int(erp_ref)], {"comment": f"{order.note}\nChecked by Sam."})
    newer = dataclasses.replace(order, updated_at=order.updated_at + timedelta(hours=1), note="Ring twice.")
    result = erp.push_order(newer, customer)
    assert result.updated and "only its comment" in result.note
    # the store's note is replaced; what was written in Tryton stays
    assert sale_of(harness, order.external_ref, ["comment"])["comment"] == "Ring twice.\nChecked by Sam."

    changed = dataclasses.replace(
        newer,
        updated_at=newer.updated_at + timedelta(hours=1),
        lines=(dataclasses.replace(order.lines[0], quantity=5),) + order.lines[1:],
    )
    result = erp.push_order(changed, customer)
    assert not result.updated and not result.created
    assert "not applied" in result.note and "processing" in result.note
    assert Decimal(str(sale_lines(harness, int(erp_ref))[0]["quantity"])) == 3


def test_a_quotation_is_rewritten_by_a_newer_version(harness):
    order = shopify_order()
    harness.add_products([line.sku for line in order.lines if line.sku])
    cfg = harness.config()
    erp = build_erp(
        "tryton",
        {k: v for k, v in cfg.items() if k not in ("kind", "password")} | {"confirm": False},
        {"password": cfg["password"]},
    )
    customer = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    first = erp.push_order(order, customer)
    assert "quotation" in first.note
    assert sale_of(harness, order.external_ref, ["state"])["state"] == "quotation"
    assert erp.get_order(order.external_ref).status == "new"

    more = dataclasses.replace(order.lines[0], quantity=4, discount_total=Money(Decimal("5.00"), "USD"))
    totals = dataclasses.replace(order.totals, total=Money(Decimal("216.90"), "USD"))  # 4 x 12.50 - 5.00 = 45.00
    newer = dataclasses.replace(
        order, updated_at=order.updated_at + timedelta(hours=1), lines=(more,) + order.lines[1:], totals=totals
    )
    result = erp.push_order(newer, customer)
    assert result.updated and result.erp_ref == first.erp_ref
    sale = sale_of(harness, order.external_ref, ["state", "total_amount"])
    assert (sale["state"], sale["total_amount"]) == ("quotation", Decimal("216.90"))
    assert Decimal(str(sale_lines(harness, int(first.erp_ref))[0]["quantity"])) == 4
    assert erp.cancel_order(order.external_ref, "changed mind") is True
    assert sale_of(harness, order.external_ref, ["state"])["state"] == "cancelled"
    erp.close()


def test_an_unknown_sku_is_a_permanent_error_that_names_it_and_creates_nothing(harness):
    order = shopify_order()
    harness.add_products(["SHOE-TR2-42-SLT"])
    erp = harness.adapter()
    customer = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    with pytest.raises(PermanentErpError) as caught:
        erp.push_order(order, customer)
    message = str(caught.value)
    assert "SOCK-MER-M-CHA" in message and "/config#skus" in message and "create product code" in message
    assert harness.rpc.call("sale.sale", "search_count", [("reference", "=", order.external_ref)]) == 0


def test_customers_are_found_by_email_and_phone_and_created_once_per_ref(harness):
    order = shopify_order()
    erp = harness.adapter()
    assert erp.find_customer("dana.whitfield@example.com", "+16175550142") is None
    created = erp.create_customer(order.customer, "shopify:acme-us:customer:7201234567890")
    assert erp.create_customer(order.customer, "shopify:acme-us:customer:7201234567890") == created
    assert erp.find_customer("dana.whitfield@example.com", None) == created
    assert erp.find_customer("DANA.Whitfield@example.com ", None) == created
    assert erp.find_customer(None, "+16175550142") == created
    assert erp.find_customer(None, "16175550142") == created
    assert erp.find_customer("someone.else@example.com", "+16175559999") is None

    (party,) = harness.rpc.call("party.party", "read", [int(created)], ["name", "contact_mechanisms", "identifiers"])
    assert party["name"] == "Dana Whitfield"
    mechanisms = harness.rpc.call("party.contact_mechanism", "read", party["contact_mechanisms"], ["type", "value"])
    assert sorted((m["type"], m["value"]) for m in mechanisms) == [
        ("email", "dana.whitfield@example.com"),
        ("phone", "+16175550142"),
    ]
    (ident,) = harness.rpc.call("party.identifier", "read", party["identifiers"], ["code"])
    assert ident["code"] == "shopify:acme-us:customer:7201234567890"
    with pytest.raises(PermanentErpError, match="no customer email, phone or name"):
        erp.create_customer(
            dataclasses.replace(order.customer, email=None, phone=None, first_name="", last_name=""), "x"
        )


def test_a_payment_is_a_note_on_the_sale_once_per_key(harness):
    erp, order, erp_ref = pushed(harness, shopify_order(financial_status="pending"))
    assert erp.get_order(order.external_ref).payment_status == "pending"
    payment = PaymentRecord(
        key=f"{order.external_ref}:payment:1",
        order_ref=order.external_ref,
        amount=Money(Decimal("100.00"), "USD"),
        method="card",
        gateway="shopify_payments",
        transaction_ref="tx-1",
        paid_at=datetime(2026, 11, 20, 15, 20, tzinfo=UTC),
    )
    first = erp.record_payment(payment)
    assert erp.record_payment(payment) == first
    view = erp.get_order(order.external_ref)
    assert (view.paid_total, view.payment_status) == (Decimal("100.00"), "partially_paid")
    rest = dataclasses.replace(payment, key=f"{order.external_ref}:payment:2", amount=Money(Decimal("105.65"), "USD"))
    assert erp.record_payment(rest) != first
    view = erp.get_order(order.external_ref)
    assert (view.paid_total, view.payment_status) == (Decimal("205.65"), "paid")
    notes = harness.rpc.call(
        "ir.note", "search_read", [("resource", "=", f"sale.sale,{erp_ref}")], 0, None, [("id", "ASC")], ["message"]
    )
    payments = [n["message"] for n in notes if n["message"].startswith("Payment of")]
    assert len(payments) == 2 and "100.00 USD by card via shopify_payments (transaction tx-1)" in payments[0]
    with pytest.raises(PermanentErpError, match="no sale with reference"):
        erp.record_payment(dataclasses.replace(payment, order_ref="shopify:acme-us:404"))


def test_cancelling_a_processing_sale_cancels_its_shipment_and_invoice(harness):
    erp, order, erp_ref = pushed(harness)
    started = time.monotonic()
    assert erp.cancel_order(order.external_ref, "customer changed their mind") is True
    print(f"\ncancel_order of a processing sale: {(time.monotonic() - started) * 1000:.0f} ms")
    assert erp.cancel_order(order.external_ref, "customer changed their mind") is False
    sale = sale_of(
        harness, order.external_ref, ["state", "comment", "shipments", "invoices", "shipment_state", "invoice_state"]
    )
    assert (sale["state"], sale["shipment_state"], sale["invoice_state"]) == ("done", "none", "none")
    assert sale["comment"].startswith(order.note) and "customer changed their mind" in sale["comment"]
    shipments = harness.rpc.call("stock.shipment.out", "read", sale["shipments"], ["state"])
    invoices = harness.rpc.call("account.invoice", "read", sale["invoices"], ["state"])
    assert {s["state"] for s in shipments} == {i["state"] for i in invoices} == {"cancelled"}
    assert erp.get_order(order.external_ref).status == "cancelled"
    newer = dataclasses.replace(order, updated_at=order.updated_at + timedelta(hours=1), note="too late")
    assert "cancelled" in erp.push_order(newer, str(sale_of(harness, order.external_ref, ["party"])["party"])).note


def test_a_shipped_sale_cannot_be_cancelled(harness):
    erp, order, _ = pushed(harness)
    line = order.lines[1]
    harness.seed_shipment(
        Shipment(
            ref="",
            order_ref=order.external_ref,
            lines=(ShipmentLine(line.sku, 1),),
            shipped_at=datetime.now(UTC),
            tracking_number="TRACK-1",
        )
    )
    with pytest.raises(PermanentErpError, match="already shipped"):
        erp.cancel_order(order.external_ref, "too late")
    assert erp.get_order(order.external_ref).status == "confirmed"


def test_a_credit_note_is_a_confirmed_return_sale(harness):
    erp, order, erp_ref = pushed(harness)
    line = order.lines[0]
    refund = Refund(
        source="shopify",
        store="acme-us",
        order_external_id=order.external_id,
        external_id="r1",
        created_at=datetime(2026, 11, 22, tzinfo=UTC),
        currency="USD",
        lines=(
            RefundLine(
                line.external_id, line.sku, 1, Money(Decimal("11.25"), "USD"), Money(Decimal("0.70"), "USD"), True
            ),
            RefundLine(
                order.lines[1].external_id,
                order.lines[1].sku,
                1,
                Money(Decimal("116.10"), "USD"),
                Money(Decimal("7.26"), "USD"),
                False,
            ),
        ),
        # the order's shipping with its MA State Tax, as a refund carries it: 9.95 + 0.62
        shipping=Money(Decimal("10.57"), "USD"),
        adjustment=Money(Decimal("0"), "USD"),
        total=Money(Decimal("145.88"), "USD"),
        reason="damaged in transit",
    )
    started = time.monotonic()
    credit = erp.create_credit_note(refund, order.external_ref)
    print(f"\ncreate_credit_note (return sale create, quote, confirm): {(time.monotonic() - started) * 1000:.0f} ms")
    assert erp.create_credit_note(refund, order.external_ref) == credit
    (ret,) = harness.rpc.call(
        "sale.sale",
        "read",
        [int(credit)],
        ["state", "origin", "total_amount", "tax_amount", "comment", "invoices", "shipment_returns"],
    )
    assert (ret["state"], ret["total_amount"]) == ("processing", Decimal("-145.88"))
    # the refunded tax reverses Tryton's MA State Tax on goods and shipping alike: 0.70 + 7.26 + 0.62 = 8.58 =
    # (-11.25 - 116.10 - 9.95) x 6.25% = -8.58125 -> -8.58 (shipping booked untaxed at 10.57 would leave -7.96)
    assert ret["tax_amount"] == Decimal("-8.58")
    assert ret["origin"] == f"sale.sale,{erp_ref}"
    assert ret["comment"] == "damaged in transit"
    assert ret["invoices"] and len(ret["shipment_returns"]) == 1  # only the restocked sock comes back
    ma = tax_id(harness, "MA State Tax")
    lines = [
        ((ln.get("product.") or {}).get("code"), Decimal(str(ln["quantity"])), ln["amount"], ln["taxes"])
        for ln in sale_lines(harness, int(credit))
    ]
    assert lines == [
        ("SOCK-MER-M-CHA", -1, Decimal("-11.25"), [ma]),
        (None, -1, Decimal("-116.10"), [ma]),
        ("SHIPPING", -1, Decimal("-9.95"), [ma]),
    ]
    view = erp.get_order(order.external_ref)
    assert (view.credited_total, view.payment_status) == (Decimal("145.88"), "partially_refunded")
    with pytest.raises(PermanentErpError, match="no sale with reference"):
        erp.create_credit_note(refund, "shopify:acme-us:404")


def _code(line: dict) -> str | None:
    return (line.get("product.") or {}).get("code")


def credit_lines(harness: TrytonHarness, credit: str) -> list[tuple]:
    return [
        (_code(ln), Decimal(str(ln["quantity"])), ln["amount"], ln["taxes"], ln["description"])
        for ln in sale_lines(harness, int(credit))
    ]


def gift_wrap_refund(fee_name: str) -> dict:
    """A WooCommerce refund of order_processing_coupon: the tote (31.50 + 3.15 tax), the shipping (7.50 + 0.75)
    and a fee named `fee_name` (5.00 + 0.50), all at the store's 10% Sales tax: 48.40."""
    return {
        "id": 902,
        "date_created_gmt": "2026-11-25T10:00:00",
        "amount": "48.40",
        "reason": "gift wrap torn",
        "line_items": [
            {
                "id": 7420,
                "sku": "TOTE-CNV-NAT",
                "quantity": -1,
                "total": "-31.50",
                "total_tax": "-3.15",
                "meta_data": [{"key": "_refunded_item_id", "value": "7312"}],
            }
        ],
        "shipping_lines": [{"total": "-7.50", "total_tax": "-0.75"}],
        "fee_lines": [
            {
                "id": 7421,
                "name": fee_name,
                "total": "-5.00",
                "total_tax": "-0.50",
                "meta_data": [{"key": "_refunded_item_id", "value": "7315"}],
            }
        ],
    }


def test_a_fee_given_back_with_its_tax_reverses_the_tax_the_orders_fee_was_booked_with(harness):
    payload = load_fixture("woocommerce", "order_processing_coupon.json")  # Gift wrap 5.00 + 0.50 Sales tax
    erp, order, _ = pushed(harness, order_from_woocommerce(payload, "acme"))
    refund = refund_from_woocommerce(gift_wrap_refund("Gift wrap"), payload, "acme")
    credit = erp.create_credit_note(refund, order.external_ref)
    (ret,) = harness.rpc.call("sale.sale", "read", [int(credit)], ["state", "total_amount", "tax_amount"])
    # (-31.50 - 7.50 - 5.00) x 10% = -4.40 = the store's 3.15 + 0.75 + 0.50: no correction lines needed
    assert (ret["state"], ret["total_amount"], ret["tax_amount"]) == ("processing", Decimal("-48.40"), Decimal("-4.40"))
    sales = tax_id(harness, "Sales tax")
    assert credit_lines(harness, credit) == [
        (None, -1, Decimal("-31.50"), [sales], "Refund: TOTE-CNV-NAT (not returned to stock)"),
        ("SHIPPING", -1, Decimal("-7.50"), [sales], "Refund: shipping"),
        (None, -1, Decimal("-5.00"), [sales], "Refund: Fee: Gift wrap"),
    ]  # fee_product unset: no product
    assert harness.credited(refund.external_ref)["tax_total"] == Decimal("4.40")


def test_a_fee_given_back_that_the_order_did_not_have_puts_its_tax_on_the_tax_product(harness):
    payload = load_fixture("woocommerce", "order_processing_coupon.json")
    erp, order, _ = pushed(harness, order_from_woocommerce(payload, "acme"))
    refund = refund_from_woocommerce(gift_wrap_refund("Rush handling"), payload, "acme")
    credit = erp.create_credit_note(refund, order.external_ref)
    (ret,) = harness.rpc.call("sale.sale", "read", [int(credit)], ["total_amount", "tax_amount"])
    # no Tryton tax of the order's to reverse for 0.50 of it: the total is the store's, Tryton's tax 3.90
    assert (ret["total_amount"], ret["tax_amount"]) == (Decimal("-48.40"), Decimal("-3.90"))
    assert credit_lines(harness, credit)[2:] == [
        (None, -1, Decimal("-5.00"), [], "Refund: Fee: Rush handling"),
        ("TAX", -1, Decimal("-0.50"), [], "Refund: tax"),
    ]


def test_a_duty_given_back_without_its_tax_carries_no_tryton_tax(harness):
    # the order's scarf duty 10.80 was charged GST 0.54; Shopify gives the duty back without it
    erp, order, _ = pushed(harness, shopify_order("order_duties"))
    refund = refund_from_shopify(load_fixture("shopify", "refunds/fee_refund_duties.json"), "acme-us", "GBP")
    credit = erp.create_credit_note(refund, order.external_ref)
    (gst,) = harness.rpc.call(
        "account.tax", "search", [("name", "=", "GST"), ("rate", "=", Decimal("0.05"))], 0, None, None
    )
    assert credit_lines(harness, credit) == [
        ("SCARF-LMB-GRY", -1, Decimal("-60.00"), [gst], "Refund: Lambswool Scarf - Heather Grey"),
        ("DUTY", -1, Decimal("-10.80"), [], "Refund: Duty: Duty refunded (duty 9001)"),
    ]
    assert harness.credited(refund.external_ref) == {
        "total": Decimal("73.80"),
        "tax_total": Decimal("3.00"),
        "tip_total": Decimal(0),
        "duty_total": Decimal("10.80"),
        "additional_fee_total": Decimal(0),
    }


def test_stock_changes_per_warehouse_since_the_cursor(harness):
    erp = harness.adapter()
    levels, cursor = erp.stock_changes(None)
    assert levels == [] and cursor is None  # the setup snapshot holds only service products
    harness.add_products(["SKU-A", "SKU-B"])
    now = datetime.now(UTC)
    harness.seed_stock([StockLevel("SKU-A", "", Decimal(7), now), StockLevel("SKU-B", "WH", Decimal(2), now)])
    levels, cursor = erp.stock_changes(None)
    assert sorted((ln.sku, ln.warehouse, ln.on_hand) for ln in levels) == [("SKU-A", "WH", 7), ("SKU-B", "WH", 2)]
    assert all(ln.updated_at.tzinfo is not None for ln in levels)
    assert erp.stock_changes(cursor) == ([], cursor)

    erp_, order, _ = pushed(harness, shopify_order())  # a sale reserves, it does not change on-hand stock
    harness.seed_stock([StockLevel("SKU-A", "", Decimal(4), now)])
    levels, cursor2 = erp.stock_changes(cursor)
    assert ("SKU-A", Decimal(4)) in [(ln.sku, ln.on_hand) for ln in levels]
    assert "SKU-B" not in [ln.sku for ln in levels]
    with pytest.raises(PermanentErpError, match="reset the sync cursor"):
        erp.stock_changes("not-a-cursor")


def test_done_shipments_are_read_with_carrier_tracking_and_lines(harness):
    erp, order, _ = pushed(harness)
    assert erp.shipments(None) == ([], None)
    sock, shoe = order.lines[0], order.lines[1]
    harness.seed_shipment(
        Shipment(
            ref="",
            order_ref=order.external_ref,
            lines=(ShipmentLine(sock.sku, 2), ShipmentLine(shoe.sku, 1)),
            shipped_at=datetime(2026, 11, 21, tzinfo=UTC),
            carrier="UPS",
            tracking_number="1Z999AA10123456784",
        )
    )
    found, cursor = erp.shipments(None)
    (shipment,) = found
    assert (shipment.order_ref, shipment.carrier, shipment.tracking_number) == (
        order.external_ref,
        "UPS",
        "1Z999AA10123456784",
    )
    assert sorted((ln.sku, ln.quantity) for ln in shipment.lines) == [(shoe.sku, 1), (sock.sku, 2)]
    assert shipment.warehouse == "WH" and shipment.shipped_at.date().isoformat() == "2026-11-21"
    assert erp.shipments(cursor) == ([], cursor)

    # the last sock went into a new shipment when Tryton processed the sale; ship it too
    harness.seed_shipment(
        Shipment(
            ref="",
            order_ref=order.external_ref,
            lines=(ShipmentLine(sock.sku, 1),),
            shipped_at=datetime.now(UTC),
            tracking_number="94001",
        )
    )
    found, cursor2 = erp.shipments(cursor)
    assert [(s.carrier, s.tracking_number, [(ln.sku, ln.quantity) for ln in s.lines]) for s in found] == [
        ("", "94001", [(sock.sku, 1)])
    ]
    assert found[0].ref != shipment.ref and cursor2 != cursor


def test_tracking_references_are_parsed():
    assert parse_tracking("UPS:1Z999") == ("UPS", "1Z999")
    assert parse_tracking("DHL Express: 123 456") == ("DHL Express", "123 456")
    assert parse_tracking("9400 1000 0000") == ("", "9400 1000 0000")
    assert parse_tracking("https://track.example/1") == ("", "https://track.example/1")
    assert parse_tracking(None) == ("", "")


def test_an_erp_that_is_down_is_retryable_and_works_again(harness):
    order = shopify_order()
    harness.add_products([line.sku for line in order.lines if line.sku])
    erp = harness.adapter()
    customer = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    with harness.down():
        with pytest.raises(RetryableErpError, match="unreachable"):
            erp.push_order(order, customer)
        with pytest.raises(RetryableErpError):
            erp.get_order(order.external_ref)
        with pytest.raises(RetryableErpError):
            erp.test_connection()
    assert erp.push_order(order, customer).created
    assert "Tryton 8.2" in erp.test_connection()


def test_bad_credentials_and_database_are_permanent_errors(harness):
    cfg = harness.config()
    settings = {k: v for k, v in cfg.items() if k not in ("kind", "password")}
    wrong = build_erp("tryton", settings, {"password": "not-the-password"})
    with pytest.raises(PermanentErpError, match="refused the login"):
        wrong.get_order("x")
    missing = build_erp("tryton", settings | {"database": "nope"}, {"password": cfg["password"]})
    with pytest.raises(PermanentErpError, match="no database 'nope'"):
        missing.get_order("x")
    with pytest.raises(PermanentErpError, match="erp.password"):
        build_erp("tryton", settings, {})


def test_tryton_validation_errors_are_permanent_with_trytons_message(harness):
    erp, order, erp_ref = pushed(harness)
    with pytest.raises(PermanentErpError, match="not allowed to modify"):
        erp.rpc.call("sale.sale", "write", [int(erp_ref)], {"description": "changed"})


def test_an_import_in_progress_is_waited_for_and_a_failed_one_is_taken_over(harness):
    order = shopify_order()
    harness.add_products([line.sku for line in order.lines if line.sku])
    erp = harness.adapter()
    customer = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    (usd,) = harness.rpc.call("currency.currency", "search", [("code", "=", "USD")], 0, 1, None)
    # another worker created the sale a moment ago and is quoting it
    (sale_id,) = harness.rpc.call(
        "sale.sale", "create", [{"party": int(customer), "currency": usd, "reference": order.external_ref}]
    )
    with pytest.raises(RetryableErpError, match="another worker is importing"):
        erp.push_order(order, customer)
    # ...and failed: its note lets the next attempt take the sale over at once
    harness.rpc.call(
        "ir.note",
        "create",
        [{"resource": f"sale.sale,{sale_id}", "message": 'failed\n[storefront-connector] {"failed": "boom"}'}],
    )
    result = erp.push_order(order, customer)
    assert (result.erp_ref, result.created, result.updated) == (str(sale_id), False, True)
    sale = sale_of(harness, order.external_ref, ["state", "total_amount"])
    assert (sale["state"], sale["total_amount"]) == ("processing", Decimal("205.65"))


def test_concurrent_pushes_of_one_order_make_one_sale(harness):
    order = shopify_order()
    harness.add_products([line.sku for line in order.lines if line.sku])
    cfg = harness.config()
    settings = {k: v for k, v in cfg.items() if k not in ("kind", "password")}
    erps = [build_erp("tryton", settings, {"password": cfg["password"]}) for _ in range(3)]
    customer = erps[0].create_customer(order.customer, "shopify:acme-us:customer:1")
    for erp in erps:
        erp.test_connection()  # logged in, so the pushes start together
    outcomes: list = []

    def push(erp: TrytonErp) -> None:
        try:
            outcomes.append(erp.push_order(order, customer))
        except RetryableErpError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=push, args=(erp,)) for erp in erps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert harness.rpc.call("sale.sale", "search_count", [("reference", "=", order.external_ref)]) == 1
    results = [o for o in outcomes if not isinstance(o, Exception)]
    assert sum(r.created for r in results) == 1, outcomes
    (erp_ref,) = {r.erp_ref for r in results}
    assert all(erp.push_order(order, customer).erp_ref == erp_ref for erp in erps)  # the retries agree
    for erp in erps:
        erp.close()


def test_an_expired_session_logs_in_again(harness, monkeypatch):
    erp = harness.adapter()
    erp.test_connection()
    erp.rpc._post("common.db.logout", [], action="log out")  # as if the session had expired: HTTP 401
    logins = []
    login = erp.rpc.login
    monkeypatch.setattr(erp.rpc, "login", lambda: (logins.append(1), login())[1])
    assert erp.find_customer("nobody@example.com", None) is None
    assert logins == [1]


def test_warehouse_settings_choose_the_warehouse_and_name_it(harness):
    cfg = harness.config()
    settings = {k: v for k, v in cfg.items() if k not in ("kind", "password")}
    erp = build_erp(
        "tryton", settings | {"warehouse": "WH", "warehouse_names": {"WH": "boston"}}, {"password": cfg["password"]}
    )
    order = shopify_order()
    harness.add_products([line.sku for line in order.lines if line.sku])
    customer = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    erp.push_order(order, customer)
    (wh,) = harness.rpc.call("stock.location", "search", [("code", "=", "WH")], 0, 1, None)
    assert sale_of(harness, order.external_ref, ["warehouse"])["warehouse"] == wh
    harness.seed_stock([StockLevel("SOCK-MER-M-CHA", "WH", Decimal(9), datetime.now(UTC))])
    levels, _ = erp.stock_changes(None)
    assert ("SOCK-MER-M-CHA", "boston", Decimal(9)) in [(ln.sku, ln.warehouse, ln.on_hand) for ln in levels]
    harness.seed_shipment(
        Shipment(
            ref="",
            order_ref=order.external_ref,
            lines=(ShipmentLine("SOCK-MER-M-CHA", 3),),
            shipped_at=datetime.now(UTC),
            tracking_number="T-1",
        )
    )
    (shipment,), _ = erp.shipments(None)
    assert shipment.warehouse == "boston"
    erp.close()
    elsewhere = build_erp("tryton", settings | {"warehouse": "NOPE"}, {"password": cfg["password"]})
    with pytest.raises(PermanentErpError, match="no warehouse with code NOPE"):
        elsewhere.push_order(dataclasses.replace(order, external_id="2"), customer)
    elsewhere.close()


def test_a_return_finds_its_warehouse_by_reported_name_even_one_made_after_the_adapter_read_them(harness):
    cfg = harness.config()
    settings = {k: v for k, v in cfg.items() if k not in ("kind", "password")}
    erp = build_erp(
        "tryton",
        settings | {"warehouse": "WH", "warehouse_names": {"WH": "boston", "LON": "london"}},
        {"password": cfg["password"]},
    )
    order = shopify_order("order_duties")
    harness.add_products([line.sku for line in order.lines if line.sku])
    erp.push_order(order, erp.create_customer(order.customer, "shopify:acme-us:customer:1"))  # reads the warehouses
    harness.add_warehouse("LON")
    refund = refund_from_shopify(load_fixture("shopify", "refunds/fee_refund_duties.json"), "acme-us", "GBP")
    london = tuple(dataclasses.replace(ln, warehouse="london") for ln in refund.lines)
    refund = dataclasses.replace(refund, lines=london)
    erp.create_credit_note(refund, order.external_ref)
    assert harness.returned_to(refund.external_ref) == {"SCARF-LMB-GRY": "LON"}
    assert harness.staff_note(refund.external_ref) == refund.reason  # nothing for staff to move
    erp.close()
