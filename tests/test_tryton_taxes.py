"""Tryton in its own terms (real trytond 8.2, no mocks): the store's taxes as Tryton taxes, fee kinds on
their own products, currencies' minor units, the buyer's currency, and a party found by phone.

Every expected figure is worked out by hand in the test from the store's numbers, not by the adapter's
code. The setup snapshot's Tryton rounds tax per document (its default), the stores per line.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from adapters.erp.base import PermanentErpError
from mappings.canonical import Customer, FeeLine, Money, Order, OrderLine, ShippingLine, TaxLine
from platforms.shopify.mapping import order_from_shopify
from tests.conftest import load_fixture
from tests.test_tryton_adapter import harness, pushed, sale_lines, sale_of, shopify_order, tax_id  # noqa: F401

pytestmark = pytest.mark.tryton
D = Decimal


def _tax(title: str, rate: str, amount: str, currency: str, code: str | None = None) -> tuple[TaxLine, ...]:
    return (TaxLine(title, D(rate), Money(D(amount), currency), code),) if D(amount) else ()


def store_order(
    currency: str,
    lines: list[tuple[str | None, int, str, str]],
    shipping: tuple[str, str] | None,
    tax_title: str = "Sales tax",
    rate: str = "0.10",
    fees: tuple[FeeLine, ...] = (),
    included: bool = False,
    external_id: str = "tax-1",
    code: str | None = None,
) -> Order:
    """An order of (sku, quantity, line total, line tax) lines and (shipping, its tax), its totals added up
    the way the store does (tax inside the prices when `included`)."""
    base = shopify_order()
    money = lambda value: Money(D(value), currency)  # noqa: E731
    order_lines = tuple(
        OrderLine(
            n,
            f"L{n}",
            sku,
            f"Item {n}",
            qty,
            money(D(total) / qty),
            money("0"),
            _tax(tax_title, rate, tax, currency, code),
            subtotal=money(total),
        )
        for n, (sku, qty, total, tax) in enumerate(lines, 1)
    )
    ships = (
        (
            ShippingLine(
                "std", "Standard", money(shipping[0]), money("0"), _tax(tax_title, rate, shipping[1], currency, code)
            ),
        )
        if shipping
        else ()
    )
    taxes = [D(tax) for *_, tax in lines] + ([D(shipping[1])] if shipping else [])
    taxes += [t.amount.amount for f in fees for t in f.tax_lines]
    tax = sum(taxes, D(0))
    goods = sum((D(total) for _, _, total, _ in lines), D(0))
    ship = D(shipping[0]) if shipping else D(0)
    fee_total = sum((f.amount.amount for f in fees), D(0))
    total = goods + ship + fee_total + (D(0) if included else tax)
    totals = dataclasses.replace(
        base.totals,
        subtotal=money(goods),
        discount_total=money("0"),
        shipping_total=money(ship),
        tax_total=money(tax),
        total=money(total),
        fee_total=money(fee_total) if fees else None,
    )
    return dataclasses.replace(
        base,
        currency=currency,
        lines=order_lines,
        shipping_lines=ships,
        fee_lines=fees,
        tax_lines=_tax(tax_title, rate, str(tax), currency, code),
        totals=totals,
        taxes_included=included,
        external_id=external_id,
        presentment_currency=None,
        presentment_total=None,
    )


def amounts(harness, order: Order) -> tuple[Decimal, Decimal, Decimal]:  # type: ignore[no-untyped-def]
    sale = sale_of(harness, order.external_ref, ["state", "untaxed_amount", "tax_amount", "total_amount"])
    assert sale["state"] == "processing"
    return sale["untaxed_amount"], sale["tax_amount"], sale["total_amount"]


def booked(harness, erp_ref: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [
        (
            (ln.get("product.") or {}).get("code"),
            D(str(ln["quantity"])),
            ln["unit_price"],
            ln["amount"],
            len(ln["taxes"]),
        )
        for ln in sale_lines(harness, int(erp_ref))
    ]


def test_a_tax_included_order_is_booked_net_so_trytons_tax_and_total_are_the_stores(harness):
    order = order_from_shopify(load_fixture("shopify", "order_tax_included.json"), "acme-eu")
    erp, order, erp_ref = pushed(harness, order)
    # FR TVA 20% inside the prices: wallet 57.12 - 9.52 = 47.60; 2 card holders 45.78 - 7.63 = 38.15 (19.075
    # each); shipping 4.90 - 0.82 = 4.08. Untaxed 89.83; Tryton: 89.83 x 20% = 17.966 -> 17.97 = the store's.
    assert amounts(harness, order) == (D("89.83"), D("17.97"), D("107.80"))
    assert booked(harness, erp_ref) == [
        ("WAL-LTH-COG", 1, D("47.60"), D("47.60"), 1),
        ("CRD-HLD-NOI", 2, D("19.075"), D("38.15"), 1),
        ("SHIPPING", 1, D("4.08"), D("4.08"), 1),
    ]
    assert erp.get_order(order.external_ref).total == D("107.80")


def test_trytons_per_document_rounding_is_brought_to_the_stores_per_line_tax(harness):
    # three lines of 0.10 at 6.25%: the store rounds each line's 0.00625 to 0.01 (0.03 in all); Tryton rounds
    # the document's 0.30 x 6.25% = 0.01875 to 0.02: a cent short.
    order = store_order("USD", [(None, 1, "0.10", "0.01")] * 3, None, "MA State Tax", "0.0625")
    erp, order, erp_ref = pushed(harness, order)
    assert amounts(harness, order) == (D("0.30"), D("0.03"), D("0.33"))
    # 0.16 more under MA State Tax: (0.30 + 0.16) x 6.25% = 0.02875 -> 0.03; its untaxed twin takes 0.16 off
    assert booked(harness, erp_ref)[3:] == [(None, 1, D("0.16"), D("0.16"), 1), (None, 1, D("-0.16"), D("-0.16"), 0)]


def test_tips_and_duties_are_lines_of_their_own_products_posting_to_their_own_accounts(harness):
    fees = (
        FeeLine("Tip", Money(D("5.00"), "USD"), kind="tip"),
        FeeLine("Import duty", Money(D("3.40"), "USD"), kind="duty", source_line_id="L1"),
        FeeLine("Gift wrap", Money(D("2.00"), "USD"), _tax("Sales tax", "0.10", "0.20", "USD")),
    )
    order = store_order("USD", [("MUG-1", 2, "30.00", "3.00")], ("5.00", "0.50"), fees=fees)
    erp, order, erp_ref = pushed(harness, order)
    # untaxed 30.00 + 5.00 + 5.00 + 3.40 + 2.00 = 45.40; tax 3.00 + 0.50 + 0.20 = 3.70; total 49.10
    assert amounts(harness, order) == (D("45.40"), D("3.70"), D("49.10"))
    assert booked(harness, erp_ref) == [
        ("MUG-1", 2, D("15.00"), D("30.00"), 1),
        ("SHIPPING", 1, D("5.00"), D("5.00"), 1),
        ("TIP", 1, D("5.00"), D("5.00"), 0),
        ("DUTY", 1, D("3.40"), D("3.40"), 0),
        (None, 1, D("2.00"), D("2.00"), 1),
    ]
    descriptions = [ln["description"] for ln in sale_lines(harness, int(erp_ref))]
    assert descriptions[2:] == ["Tip: Tip", "Duty: Import duty (MUG-1)", "Fee: Gift wrap"]
    (invoice,) = sale_of(harness, order.external_ref, ["invoices"])["invoices"]
    posted = harness.rpc.call(
        "account.invoice.line",
        "search_read",
        [("invoice", "=", invoice)],
        0,
        None,
        None,
        ["product.code", "account.name"],
    )
    accounts = {(ln.get("product.") or {}).get("code"): ln["account."]["name"] for ln in posted}
    assert (accounts["TIP"], accounts["DUTY"]) == ("Tips owed to staff", "Duties collected for customs")
    assert accounts["MUG-1"] != accounts["TIP"]


def test_a_jpy_order_books_whole_yen(harness):
    # 3 for 1000 yen (333.3333 each), 1 at 1999, shipping 500, 10% tax per line 100 + 200 (199.9) + 50.
    order = store_order(
        "JPY", [("TEA-1", 3, "1000", "100"), ("POT-1", 1, "1999", "200")], ("500", "50"), external_id="jpy-1"
    )
    erp, order, erp_ref = pushed(harness, order)
    # untaxed 1000 + 1999 + 500 = 3499; Tryton 333.3333 x 3 x 10% + 199.9 + 50 = 349.89999 -> 350; total 3849
    assert amounts(harness, order) == (D("3499"), D("350"), D("3849"))
    assert [row[3] for row in booked(harness, erp_ref)] == [D("1000"), D("1999"), D("500")]
    assert erp.get_order(order.external_ref).total == D("3849")


def test_a_kwd_order_books_to_the_fils(harness):
    # 2 x 12.345 = 24.690 (tax 2.469), 7.777 (tax 0.7777 -> 0.778), shipping 1.500 (tax 0.150)
    order = store_order(
        "KWD",
        [("OUD-1", 2, "24.690", "2.469"), ("OUD-2", 1, "7.777", "0.778")],
        ("1.500", "0.150"),
        external_id="kwd-1",
    )
    erp, order, erp_ref = pushed(harness, order)
    # untaxed 33.967; Tryton 33.967 x 10% = 3.3967 -> 3.397 = 2.469 + 0.778 + 0.150; total 37.364
    assert amounts(harness, order) == (D("33.967"), D("3.397"), D("37.364"))


def test_a_mapped_tax_code_names_the_tryton_tax_and_an_unknown_tax_is_a_permanent_error(harness):
    mapped = store_order(
        "EUR", [("BAG-1", 1, "50.00", "10.00")], None, "TVA", "0.20", code="FR TVA", external_id="mapped"
    )
    erp, order, erp_ref = pushed(harness, mapped)
    assert amounts(harness, order) == (D("50.00"), D("10.00"), D("60.00"))
    assert sale_lines(harness, int(erp_ref))[0]["taxes"] == [tax_id(harness, "FR TVA")]

    unknown = store_order("USD", [("BAG-1", 1, "50.00", "4.00")], None, "Ohio Sales Tax", "0.08", external_id="unknown")
    with pytest.raises(PermanentErpError) as caught:
        erp.push_order(unknown, str(sale_of(harness, order.external_ref, ["party"])["party"]))
    message = str(caught.value)
    assert "'Ohio Sales Tax'" in message and "8%" in message and "/config#mappings" in message
    assert harness.rpc.call("sale.sale", "search_count", [("reference", "=", unknown.external_ref)]) == 0


def test_the_buyers_currency_and_total_are_on_the_sale(harness):
    order = order_from_shopify(load_fixture("shopify", "order_presentment_currency.json"), "acme-us")
    erp, order, erp_ref = pushed(harness, order)
    sale = sale_of(harness, order.external_ref, ["description", "total_amount"])
    assert sale["total_amount"] == D("85.95")  # booked in the shop's USD
    assert sale["description"] == "shopify acme-us order #1187; buyer paid 78.79 EUR"
    notes = harness.rpc.call(
        "ir.note", "search_read", [("resource", "=", f"sale.sale,{erp_ref}")], 0, None, None, ["message"]
    )
    assert any(
        "buyer paid 78.79 EUR" in n["message"] and '"currency": "EUR", "total": "78.79"' in n["message"] for n in notes
    )

    same = order_from_shopify(load_fixture("shopify", "order_discount_multiline.json"), "acme-us")
    erp, same, _ = pushed(harness, same)  # paid in the shop's own currency: nothing added
    assert sale_of(harness, same.external_ref, ["description"])["description"] == "shopify acme-us order #1001"


def test_a_party_found_by_phone_gains_the_buyers_email(harness):
    order = shopify_order()
    erp = harness.adapter()
    by_phone = dataclasses.replace(order.customer, email=None)
    party = erp.create_customer(by_phone, "shopify:acme-us:customer:phone-only")
    assert erp.find_customer("dana.whitfield@example.com", None) is None
    found = erp.find_customer("dana.whitfield@example.com", "+16175550142")
    assert found == party
    harness.add_products([line.sku for line in order.lines if line.sku])
    assert erp.push_order(order, found).created
    mechanisms = harness.rpc.call(
        "party.contact_mechanism", "search_read", [("party", "=", int(party))], 0, None, None, ["type", "value"]
    )
    assert sorted((m["type"], m["value"]) for m in mechanisms) == [
        ("email", "dana.whitfield@example.com"),
        ("phone", "+16175550142"),
    ]
    assert erp.find_customer("dana.whitfield@example.com", None) == party
    again = dataclasses.replace(order, external_id="again")
    erp.push_order(again, party)  # the email is not added twice
    assert (
        harness.rpc.call(
            "party.contact_mechanism", "search_count", [("party", "=", int(party)), ("type", "=", "email")]
        )
        == 1
    )


def test_customer_without_email_pushes_without_touching_contact_mechanisms(harness):
    order = dataclasses.replace(shopify_order(), customer=Customer(None, "Sam", "Lee", "+16175550199"))
    harness.add_products([line.sku for line in order.lines if line.sku])
    erp = harness.adapter()
    party = erp.create_customer(order.customer, "shopify:acme-us:customer:sam")
    assert erp.push_order(order, party).created
    assert (
        harness.rpc.call(
            "party.contact_mechanism", "search_count", [("party", "=", int(party)), ("type", "=", "email")]
        )
        == 0
    )


def test_fee_products_come_from_the_settings_and_default_to_tip_duty_additional_fee():
    from adapters.erp import build_erp

    base = {"url": "http://127.0.0.1:1", "database": "erp", "username": "connector"}
    defaults = build_erp("tryton", base, {"password": "pw"})
    assert defaults.fee_codes == {
        "fee": None,
        "tip": "TIP",
        "duty": "DUTY",  # type: ignore[attr-defined]
        "additional_fee": "ADDITIONAL_FEE",
    }
    chosen = build_erp(
        "tryton",
        base
        | {"tip_product": "GRAT", "duty_product": "CUSTOMS", "additional_fee_product": "XFEE", "fee_product": "FEE"},
        {"password": "pw"},
    )
    assert chosen.fee_codes == {
        "fee": "FEE",
        "tip": "GRAT",
        "duty": "CUSTOMS",  # type: ignore[attr-defined]
        "additional_fee": "XFEE",
    }
