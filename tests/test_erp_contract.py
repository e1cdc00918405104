"""One contract, every back end: the same promises, checked the same way on each ERP."""

from __future__ import annotations

import dataclasses
import importlib
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from adapters.erp.base import PaymentRecord, PermanentErpError, RetryableErpError
from mappings.attribution import attribute
from mappings.canonical import (
    ErpRefund,
    ErpRefundLine,
    Money,
    Receipt,
    Refund,
    RefundLine,
    Shipment,
    ShipmentLine,
    StockLevel,
    Undelivered,
)
from mappings.customers import normalise_name
from platforms.shopify.mapping import order_from_shopify
from platforms.shopify.refunds import refund_from_shopify
from tests.conftest import load_fixture
from tests.money_cases import MONEY_CASES, REFUND_CASES, expected_credit, expected_money

CENT = Decimal("0.01")
HARNESSES = {
    "sql": "tests.erp_backends.sql:SqlHarness",
    "rest": "tests.erp_backends.rest:RestHarness",
    "files": "tests.erp_backends.files:FilesHarness",
    "tryton": "tests.erp_backends.tryton:TrytonHarness",
}


# The Tryton harness's tests are in the tryton tier from collection on, so `-m "not tryton"` leaves them out
# and no trytond starts (a mark applied inside the fixture came after `-m` had selected).
@pytest.fixture(
    params=[pytest.param(name, marks=pytest.mark.tryton) if name == "tryton" else name for name in HARNESSES]
)
def harness(request, tmp_path):  # type: ignore[no-untyped-def]
    module_name, class_name = HARNESSES[request.param].split(":")
    harness = getattr(importlib.import_module(module_name), class_name)(tmp_path)
    yield harness
    harness.close()


def an_order(**changes):  # type: ignore[no-untyped-def]
    payload = load_fixture("shopify", "order_discount_multiline.json")
    payload.update(changes)
    return payload, order_from_shopify(payload, "acme-us")


def push(harness, order):  # type: ignore[no-untyped-def]
    harness.add_products([line.sku for line in order.lines if line.sku])
    erp = harness.adapter()
    customer_id = erp.find_customer("dana.whitfield@example.com", None) or erp.create_customer(
        order.customer, "shopify:acme-us:customer:1"
    )
    return erp.push_order(order, customer_id)


def test_an_order_is_created_once_with_its_totals(harness):
    payload, order = an_order()
    first, second = push(harness, order), push(harness, order)
    assert first.created and not second.created and first.erp_ref == second.erp_ref
    view = harness.adapter().get_order(order.external_ref)
    assert view.currency == "USD"
    assert view.total.quantize(CENT) == Decimal(payload["total_price"])
    skus = [line.sku for line in view.lines if line.sku in {ln.sku for ln in order.lines}]
    assert skus == [line.sku for line in order.lines]


@pytest.mark.parametrize("fixture", list(MONEY_CASES))
def test_every_part_of_the_money_is_booked_as_its_own_amount(harness, fixture):
    order = order_from_shopify(load_fixture("shopify", f"{fixture}.json"), "acme-us")
    push(harness, order)
    booked, expected = harness.booked(order.external_ref), expected_money(fixture)
    assert {"total", "tax_total", "tip_total", "duty_total"} <= set(booked)  # what every ERP must keep apart
    assert booked == {key: expected[key] for key in booked}


@pytest.mark.parametrize("case", list(REFUND_CASES))
def test_tips_and_duties_given_back_are_credited_as_their_own_amounts(harness, case):
    fixture, currency = REFUND_CASES[case][:2]
    order = order_from_shopify(load_fixture("shopify", f"{fixture}.json"), "acme-us")
    push(harness, order)
    refund = refund_from_shopify(load_fixture("shopify", f"refunds/{case}.json"), "acme-us", currency)
    erp = harness.adapter()
    assert erp.create_credit_note(refund, order.external_ref) == erp.create_credit_note(refund, order.external_ref)
    expected = expected_credit(case)
    assert erp.get_order(order.external_ref).credited_total == expected["total"]
    credited = harness.credited(refund.external_ref)
    assert {"total", "tax_total", "tip_total", "duty_total"} <= set(credited)  # what every ERP must keep apart
    assert credited == {key: expected[key] for key in credited}


def a_restock(harness, *warehouses):  # type: ignore[no-untyped-def]
    """The duties order pushed, and a refund restocking one line per warehouse given (None: it names none): the
    scarf (fee_refund_duties' own line, 73.80 with its duty), then the gloves (45.00 + 2.25 GST, as ordered)."""
    order = order_from_shopify(load_fixture("shopify", "order_duties.json"), "acme-us")
    push(harness, order)
    refund = refund_from_shopify(load_fixture("shopify", "refunds/fee_refund_duties.json"), "acme-us", "GBP")
    (scarf,) = refund.lines
    gloves = dataclasses.replace(
        scarf,
        line_external_id=order.lines[1].external_id,
        sku=order.lines[1].sku,
        subtotal=Money(Decimal("45.00"), "GBP"),
        tax=Money(Decimal("2.25"), "GBP"),
    )
    pairs = zip((scarf, gloves), warehouses, strict=False)
    lines = tuple(dataclasses.replace(line, warehouse=code) for line, code in pairs)
    more = sum((line.subtotal.amount + line.tax.amount for line in lines[1:]), Decimal(0))
    return (
        harness.adapter(),
        order,
        dataclasses.replace(refund, lines=lines, total=Money(refund.total.amount + more, "GBP")),
    )


@pytest.mark.parametrize("warehouse", ["LON", None], ids=["named", "none"])
def test_returned_units_go_back_into_the_warehouse_the_refund_names(harness, warehouse):
    erp, order, refund = a_restock(harness, warehouse)
    harness.add_warehouse("LON")  # so the ERP has more than one (a return naming none is not there by chance)
    assert erp.create_credit_note(refund, order.external_ref) == erp.create_credit_note(refund, order.external_ref)
    assert harness.returned_to(refund.external_ref) == {"SCARF-LMB-GRY": warehouse or harness.default_warehouse}


@pytest.mark.parametrize("warehouses", [("NOWHERE",), ("LON", "PAR")], ids=["unknown", "several"])
def test_a_return_the_erp_cannot_take_where_the_refund_says_is_credited_and_says_where_the_goods_are(
    harness, warehouses
):
    erp, order, refund = a_restock(harness, *warehouses)
    for code in ("LON", "PAR"):
        harness.add_warehouse(code)
    assert erp.create_credit_note(refund, order.external_ref) == erp.create_credit_note(refund, order.external_ref)
    assert erp.get_order(order.external_ref).credited_total == refund.total.amount
    named = {line.sku: line.warehouse for line in refund.lines}
    if not harness.knows_warehouses:  # each line keeps the warehouse it names: the ERP's import resolves it
        assert harness.returned_to(refund.external_ref) == named
        return
    # A return has one warehouse, and it must know it: the goods go back where they came from, and the
    # credit note tells staff where the store restocked them (the money is never held up by a mapping typo).
    assert harness.returned_to(refund.external_ref) == dict.fromkeys(named, harness.default_warehouse)
    note = harness.staff_note(refund.external_ref)
    assert all(f"{code} ({sku})" in note for sku, code in named.items()), note


def routed_to(order, warehouse, **lines):  # type: ignore[no-untyped-def]
    """The order as the connector's routing sends it: its warehouse, and each line's (by SKU, else the order's)."""
    return dataclasses.replace(
        order,
        warehouse=warehouse,
        lines=tuple(dataclasses.replace(ln, warehouse=lines.get(ln.sku or "", warehouse)) for ln in order.lines),
    )


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_the_routed_warehouse_is_written_read_back_and_kept_by_a_later_version(harness, split):
    _, order = an_order()
    shoe = order.lines[1].sku
    for code in ("BER", "MAIN"):
        harness.add_warehouse(code)
    routed = routed_to(order, "BER", **({shoe: "MAIN"} if split else {}))
    assert push(harness, routed).created
    assert not push(harness, routed).created  # a replay
    view = harness.adapter().get_order(order.external_ref)
    skus = {ln.sku for ln in order.lines if ln.sku}
    goods = {line.sku: line.warehouse for line in view.lines if line.sku in skus}
    assert view.warehouse == "BER"
    if harness.knows_warehouses:  # one warehouse per sale: the split's other lines are told in its comment
        assert goods == dict.fromkeys(skus, "BER")
        assert (f"{shoe} from MAIN" in harness.staff_note(order.external_ref)) is split
    else:
        assert goods == {line.sku: "MAIN" if split and line.sku == shoe else "BER" for line in routed.lines if line.sku}
    newer = dataclasses.replace(routed, updated_at=order.updated_at + timedelta(hours=1), note="leave at the door")
    assert push(harness, newer).updated
    assert harness.adapter().get_order(order.external_ref).warehouse == "BER"


def test_an_order_routed_to_a_warehouse_the_erp_does_not_know_is_refused_where_the_erp_keeps_warehouses(harness):
    _, order = an_order()
    if not harness.knows_warehouses:  # the ERP's import resolves the code it is given
        assert push(harness, routed_to(order, "NOWHERE")).created
        return
    with pytest.raises(
        PermanentErpError, match="no warehouse with code or name NOWHERE.*create the warehouse in Tryton, then retry"
    ):
        push(harness, routed_to(order, "NOWHERE"))
    assert harness.adapter().get_order(order.external_ref) is None


def test_a_newer_version_updates_and_an_older_one_changes_nothing(harness):
    _, order = an_order()
    push(harness, order)
    newer = dataclasses.replace(order, updated_at=order.updated_at + timedelta(hours=1), note="leave at the door")
    assert push(harness, newer).updated
    older = dataclasses.replace(order, updated_at=order.updated_at - timedelta(hours=1))
    result = push(harness, older)
    assert not result.created and not result.updated


def test_customers_are_found_by_email_then_phone(harness):
    _, order = an_order()
    erp = harness.adapter()
    assert erp.find_customer("nobody@example.com", None) is None
    created = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    assert erp.find_customer("dana.whitfield@example.com", None) == created
    phone = "".join(ch for ch in (order.customer.phone or "") if ch.isdigit() or ch == "+")
    if phone:
        assert erp.find_customer(None, phone) == created


def test_customers_with_the_same_name_at_the_same_postcode_are_found_for_a_person_to_decide(harness):
    _, order = an_order()
    push(harness, order)  # Tryton keeps a party's postcode on the addresses an order gives it
    erp = harness.adapter()
    name, postcode = order.customer.name, order.customer.postcode
    assert name and postcode
    (found,) = erp.similar_customers(f"  {name.upper()} ", postcode.lower().replace(" ", ""))
    assert (normalise_name(found.name), found.email) == (normalise_name(name), "dana.whitfield@example.com")
    assert found.id == erp.find_customer("dana.whitfield@example.com", None)
    assert erp.similar_customers(name, "99999") == []
    assert erp.similar_customers("Dana Whitfield-Smith", postcode) == []
    assert erp.similar_customers("", postcode) == [] and erp.similar_customers(name, "") == []


def test_an_account_owner_the_erp_gives_is_read_and_a_customer_we_created_has_none(harness):
    _, order = an_order()
    erp = harness.adapter()
    account = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    other = erp.create_customer(
        dataclasses.replace(order.customer, email="lee@example.com", phone=None), "shopify:acme-us:customer:2"
    )
    assert erp.customer_owner(account) is None
    harness.set_owner(account, "REP-ANNA")
    assert erp.customer_owner(account) == "REP-ANNA"
    assert erp.customer_owner(other) is None


@pytest.mark.parametrize("owner", ["REP-ANNA", None], ids=["owner", "no-owner"])
def test_the_order_carries_the_web_channel_the_accounts_owner_and_their_credit(harness, owner):
    payload, order = an_order()
    harness.add_products([line.sku for line in order.lines if line.sku])
    erp = harness.adapter()
    customer_id = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    credit = attribute(owner, "split", Decimal("0.5"))
    assert erp.push_order(order, customer_id, credit).created
    assert not erp.push_order(order, customer_id, credit).created  # a replay
    view = erp.get_order(order.external_ref)
    half = (Decimal(payload["total_price"]) / 2).quantize(CENT, rounding=ROUND_HALF_UP)
    expected = ("web", "REP-ANNA", Decimal("0.5"), half) if owner else ("web", None, Decimal(0), Decimal(0))
    assert (view.channel, view.owner, view.owner_share, view.owner_credit) == expected
    # A later version carries the same attribution (the connector keeps it), its credit of the new total.
    newer = dataclasses.replace(order, updated_at=order.updated_at + timedelta(hours=1), note="leave at the door")
    assert erp.push_order(newer, customer_id, credit).updated
    view = erp.get_order(order.external_ref)
    assert (view.channel, view.owner, view.owner_share, view.owner_credit) == expected


def test_payment_cancel_and_credit_note_are_idempotent(harness):
    payload, order = an_order()
    push(harness, order)
    erp = harness.adapter()
    payment = PaymentRecord(
        key=f"{order.external_ref}:payment",
        order_ref=order.external_ref,
        amount=order.totals.total,
        method="card",
        gateway="shopify_payments",
        transaction_ref="tx-1",
        paid_at=datetime(2026, 11, 20, 15, 20, tzinfo=UTC),
    )
    assert erp.record_payment(payment) == erp.record_payment(payment)
    view = erp.get_order(order.external_ref)
    assert view.paid_total.quantize(CENT) == Decimal(payload["total_price"])
    assert view.payment_status == "paid"

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
                line.external_id, line.sku, 1, Money(Decimal("10.00"), "USD"), Money(Decimal("0.80"), "USD"), True
            ),
        ),
        shipping=Money(Decimal("0"), "USD"),
        adjustment=Money(Decimal("0"), "USD"),
        total=Money(Decimal("10.80"), "USD"),
        reason="damaged",
    )
    assert erp.create_credit_note(refund, order.external_ref) == erp.create_credit_note(refund, order.external_ref)
    assert erp.get_order(order.external_ref).credited_total.quantize(CENT) == Decimal("10.80")

    assert erp.cancel_order(order.external_ref, "customer") is True
    assert erp.cancel_order(order.external_ref, "customer") is False
    assert erp.get_order(order.external_ref).status == "cancelled"


def test_a_split_tender_is_several_payments_and_the_order_is_paid_once_they_cover_it(harness):
    payload, order = an_order()  # total 205.65 USD
    push(harness, order)
    erp = harness.adapter()
    at = datetime(2026, 11, 20, 15, 15, 58, tzinfo=UTC)
    gift = PaymentRecord(
        key=f"{order.external_ref}:payment:1068278501",
        order_ref=order.external_ref,
        amount=Money(Decimal("50.00"), "USD"),
        method="gift_card",
        gateway="gift_card",
        transaction_ref=None,
        paid_at=at,
    )
    card = PaymentRecord(
        key=f"{order.external_ref}:payment:1068278504",
        order_ref=order.external_ref,
        amount=Money(Decimal("155.65"), "USD"),
        method="card",
        gateway="shopify_payments",
        transaction_ref="ch_3QhZk2LTUR9LBPfg",
        paid_at=at,
    )
    first = erp.record_payment(gift)
    view = erp.get_order(order.external_ref)
    assert (view.paid_total.quantize(CENT), view.payment_status) == (Decimal("50.00"), "partially_paid")
    second = erp.record_payment(card)
    assert first != second and erp.record_payment(gift) == first and erp.record_payment(card) == second
    view = erp.get_order(order.external_ref)
    # 50.00 + 155.65 = 205.65, the order total.
    assert view.paid_total.quantize(CENT) == Decimal("205.65") == Decimal(payload["total_price"])
    assert view.payment_status == "paid"


def test_stock_changes_come_once_each_and_the_cursor_holds_when_nothing_changed(harness):
    harness.add_products(["SKU-A", "SKU-B", "SKU-C"])
    now = datetime.now(UTC)
    harness.seed_stock(
        [
            StockLevel("SKU-A", "", Decimal(5), now),
            StockLevel("SKU-B", "", Decimal(0), now),
            StockLevel("SKU-C", "", Decimal(12), now),
        ]
    )
    erp = harness.adapter()
    seen, cursor = {}, None
    for _ in range(10):
        levels, cursor_next = erp.stock_changes(cursor, limit=2)
        if not levels:
            assert cursor_next == cursor
            break
        seen.update({level.sku: level.on_hand for level in levels})
        cursor = cursor_next
    assert {k: v for k, v in seen.items() if k.startswith("SKU-")} == {"SKU-A": 5, "SKU-B": 0, "SKU-C": 12}
    harness.seed_stock([StockLevel("SKU-B", "", Decimal(3), now)])
    levels, _ = erp.stock_changes(cursor)
    assert [(level.sku, level.on_hand) for level in levels] == [("SKU-B", 3)]


def test_shipments_of_pushed_orders_are_read_with_tracking(harness):
    _, order = an_order()
    push(harness, order)
    line = order.lines[0]
    harness.seed_shipment(
        Shipment(
            ref="SHIP-1",
            order_ref=order.external_ref,
            lines=(ShipmentLine(line.sku, 1),),
            shipped_at=datetime(2026, 11, 21, tzinfo=UTC),
            carrier="UPS",
            tracking_number="1Z999AA10123456784",
            tracking_url="https://www.ups.com/track?tracknum=1Z999AA10123456784",
        )
    )
    erp = harness.adapter()
    shipments, cursor = erp.shipments(None)
    (shipment,) = [s for s in shipments if s.order_ref == order.external_ref]
    assert shipment.tracking_number == "1Z999AA10123456784"
    assert [(ln.sku, ln.quantity) for ln in shipment.lines] == [(line.sku, 1)]
    assert erp.shipments(cursor) == ([], cursor)


def test_receipts_are_what_finance_recorded_never_the_payments_the_store_made(harness):
    payload, order = an_order()
    push(harness, order)
    erp = harness.adapter()
    total = Money(Decimal(payload["total_price"]), "USD")
    # The store's own payment, which the connector books: it must never come back as a receipt.
    erp.record_payment(
        PaymentRecord(
            f"{order.external_ref}:payment",
            order.external_ref,
            total,
            "card",
            "shopify_payments",
            None,
            datetime.now(UTC),
        )
    )
    assert [r for r in erp.receipts(None)[0] if r.order_ref == order.external_ref] == []

    now = datetime.now(UTC)
    ref = harness.seed_receipt(Receipt("RCPT-1", order.external_ref, total, now, "cod", "COLL-77"))
    receipts, cursor = erp.receipts(None)
    (receipt,) = [r for r in receipts if r.order_ref == order.external_ref]
    assert (receipt.ref, receipt.amount) == (ref, total)
    assert receipt.received_at.tzinfo is not None and receipt.received_at.date() == now.date()
    assert erp.receipts(cursor) == ([], cursor)


def test_parcels_returned_undelivered_are_read_with_their_reason(harness):
    _, order = an_order()
    push(harness, order)
    erp = harness.adapter()
    assert [u for u in erp.undelivered(None)[0] if u.order_ref == order.external_ref] == []

    now = datetime.now(UTC)
    ref = harness.seed_undelivered(Undelivered("RET-1", order.external_ref, "refused by the buyer", now))
    found, cursor = erp.undelivered(None)
    (parcel,) = [u for u in found if u.order_ref == order.external_ref]
    assert parcel.ref == ref and parcel.reason
    assert parcel.returned_at.tzinfo is not None and parcel.returned_at.date() == now.date()
    assert erp.undelivered(cursor) == ([], cursor)


def test_offline_refunds_are_the_erps_own_credit_notes_never_those_the_connector_wrote(harness):
    payload, order = an_order()
    push(harness, order)
    erp = harness.adapter()
    line = order.lines[0]
    # A store refund the connector credits: it must never come back as the ERP's own.
    usd = Money(Decimal("10.80"), "USD")
    zero = Money(Decimal(0), "USD")
    store_line = RefundLine(
        line.external_id, line.sku, 1, Money(Decimal("10.00"), "USD"), Money(Decimal("0.80"), "USD"), True
    )
    ours = Refund(
        "shopify",
        "acme-us",
        order.external_id,
        "r1",
        datetime(2026, 11, 22, tzinfo=UTC),
        "USD",
        (store_line,),
        zero,
        zero,
        usd,
    )
    erp.create_credit_note(ours, order.external_ref)
    refund = ErpRefund(
        ref="CN-900",
        order_ref=order.external_ref,
        lines=(ErpRefundLine(line.sku or "", 1, Money(Decimal("19.99"), "USD"), True, "LON"),),
        shipping=Money(Decimal("5.00"), "USD"),
        total=Money(Decimal("24.99"), "USD"),
        created_at=datetime(2026, 11, 26, 9, 30, tzinfo=UTC),
        reason="returned at the counter",
    )
    made = harness.seed_offline_refund(refund)  # with the ERP's own number and time where it gives them
    assert dataclasses.replace(made, ref=refund.ref, created_at=refund.created_at) == refund
    found, cursor = erp.offline_refunds(None)
    assert [r for r in found if r.order_ref == order.external_ref] == [made]
    assert erp.offline_refunds(cursor) == ([], cursor)


def test_an_unknown_sku_is_a_permanent_error_that_names_it(harness):
    if not harness.validates_skus:
        pytest.skip(f"the {harness.kind} back end takes any SKU; the ERP checks on import")
    _, order = an_order()
    erp = harness.adapter()
    harness.add_products([line.sku for line in order.lines[1:]])
    customer_id = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    with pytest.raises(PermanentErpError, match=order.lines[0].sku):
        erp.push_order(order, customer_id)


def test_an_erp_that_is_down_is_a_retryable_error_and_then_works(harness):
    _, order = an_order()
    harness.add_products([line.sku for line in order.lines])
    erp = harness.adapter()
    customer_id = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    with harness.down(), pytest.raises(RetryableErpError):
        erp.push_order(order, customer_id)
    assert erp.push_order(order, customer_id).created
