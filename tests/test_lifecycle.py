"""An order's whole life on both platforms: paid, refunded, cancelled, COD — the ERP to the cent at every step."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal

import pytest
import responses
from sqlalchemy import select

from adapters.erp.sql_contract import erp_credit_note_lines, erp_credit_notes, erp_payments
from connector.base.models import Reservation, Store
from tests.conftest import load_fixture
from tests.stack import WOO_STORE, WOO_URL
from tests.storefronts import map_locations
from tests.test_api import SUPPORT, sign_in

CENT = Decimal("0.01")


def cents(value) -> Decimal:  # type: ignore[no-untyped-def]
    return Decimal(value).quantize(CENT)


def credited(stack) -> Decimal:  # type: ignore[no-untyped-def]
    return cents(sum((n.total for n in stack.erp_rows(erp_credit_notes)), Decimal(0)))


# ---- Shopify ---------------------------------------------------------------------------------------


def shopify_version(payload: dict, updated_at: str, **changes) -> dict:  # type: ignore[no-untyped-def]
    version = copy.deepcopy(payload)
    version.update(updated_at=updated_at, **changes)
    return version


def test_shopify_create_paid_partially_refunded_refunded(stack):
    order = load_fixture("shopify", "order_discount_multiline.json")
    total = Decimal(order["total_price"])

    stack.post_shopify(shopify_version(order, "2026-11-20T10:15:30-05:00", financial_status="authorized"))
    stack.run_jobs()
    (row,) = stack.erp_orders()
    assert (row.payment_status, cents(row.total)) == ("authorized", total)
    assert stack.erp_rows(erp_payments) == []

    stack.post_shopify(
        shopify_version(order, "2026-11-20T10:20:00-05:00", financial_status="paid"), topic="orders/paid"
    )
    stack.run_jobs()
    (row,) = stack.erp_orders()
    (payment,) = stack.erp_rows(erp_payments)
    assert row.payment_status == "paid" and cents(payment.amount) == total and payment.currency == "USD"

    partial = load_fixture("shopify", "refunds", "refund_partial_line.json")
    shipping = load_fixture("shopify", "refunds", "refund_with_shipping.json")
    for refund in (partial, shipping, partial):  # the first one delivered twice
        stack.post_shopify(refund, topic="refunds/create")
    stack.run_jobs()
    (row,) = stack.erp_orders()
    assert row.payment_status == "partially_refunded"
    assert cents(row.total) == total
    assert credited(stack) == Decimal("11.95") + Decimal("133.93")
    line_no = {item["id"]: n for n, item in enumerate(order["line_items"], start=1)}
    expected = [
        (line_no[item["line_item_id"]], item["quantity"], item["restock_type"] == "return")
        for refund in (partial, shipping)
        for item in refund["refund_line_items"]
    ]
    lines = stack.erp_rows(erp_credit_note_lines)
    assert [(ln.order_line_no, int(ln.quantity), ln.restock) for ln in lines] == expected
    assert {(True, 1), (False, 1)} == {(restock, qty) for _, qty, restock in expected}

    rest = load_fixture("shopify", "refunds", "refund_amount_only.json")
    remaining = total - credited(stack)
    rest["id"] = 9101234567004
    rest["transactions"][0]["amount"] = str(remaining)
    adjustment = rest["order_adjustments"][0]
    adjustment["amount"] = str(-remaining)
    adjustment["amount_set"]["shop_money"]["amount"] = adjustment["amount_set"]["presentment_money"]["amount"] = str(
        -remaining
    )
    stack.post_shopify(rest, topic="refunds/create")
    stack.post_shopify(
        shopify_version(order, "2026-11-24T09:00:00-05:00", financial_status="refunded"), topic="orders/updated"
    )
    stack.run_jobs()
    (row,) = stack.erp_orders()
    assert row.payment_status == "refunded"
    assert credited(stack) == total
    assert len(stack.erp_rows(erp_payments)) == 1
    assert {e.status for e in stack.events()} == {"succeeded"}


def test_shopify_tips_and_duties_given_back_are_credited_and_returns_go_back_to_their_warehouse(stack):
    """A scarf returned with its duty (to the location mapped to LON) and a beanie returned with the tip (to
    an unmapped location: the ERP's default warehouse); figures worked in tests/money_cases.py."""
    map_locations(stack, [(None, "gid://shopify/Location/71234567002", "LON")])
    for order in ("order_duties", "order_tip"):
        stack.post_shopify(load_fixture("shopify", f"{order}.json"))
    stack.run_jobs()
    for refund in ("fee_refund_duties", "fee_refund_tip"):
        stack.post_shopify(load_fixture("shopify", "refunds", f"{refund}.json"), topic="refunds/create")
    stack.run_jobs()
    assert {e.status for e in stack.events()} == {"succeeded"}
    notes = {n.external_ref.rsplit(":", 1)[-1]: n for n in stack.erp_rows(erp_credit_notes)}
    duty, tip = notes["9101234567201"], notes["9101234567101"]
    assert (cents(duty.total), cents(duty.duty_total), cents(duty.tip_total), duty.currency) == (
        Decimal("73.80"),
        Decimal("10.80"),
        Decimal("0"),
        "GBP",
    )
    assert (cents(tip.total), cents(tip.tip_total), cents(tip.fee_total), cents(tip.tax_total)) == (
        Decimal("34.02"),
        Decimal("7.35"),
        Decimal("7.35"),
        Decimal("2.17"),
    )
    lines = {(ln.sku, ln.restock, ln.warehouse) for ln in stack.erp_rows(erp_credit_note_lines)}
    assert lines == {("SCARF-LMB-GRY", True, "LON"), ("BEANIE-MER-CHR", True, None)}  # the tip is no goods


def test_a_location_mapped_to_a_warehouse_name_no_erp_could_hold_still_gets_the_credit_note(stack):
    """A typo in the location table (a name longer than any warehouse the connector keeps) must not fail
    the customer's credit note on PostgreSQL's column width: the units go to the ERP's default."""
    map_locations(stack, [(None, "gid://shopify/Location/71234567002", "L" * 65)])
    stack.post_shopify(load_fixture("shopify", "order_duties.json"))
    stack.run_jobs()
    stack.post_shopify(load_fixture("shopify", "refunds", "fee_refund_duties.json"), topic="refunds/create")
    stack.run_jobs()
    assert {e.status for e in stack.events()} == {"succeeded"}
    (note,) = stack.erp_rows(erp_credit_notes)
    assert cents(note.total) == Decimal("73.80")
    assert {(ln.sku, ln.warehouse) for ln in stack.erp_rows(erp_credit_note_lines)} == {("SCARF-LMB-GRY", None)}


def test_shopify_an_edit_that_takes_units_off_holds_no_stock_for_them_and_shows_it(stack):
    order = load_fixture("shopify", "order_discount_multiline.json")
    sock = order["line_items"][0]
    stack.post_shopify(order)
    stack.run_jobs()
    edited = shopify_version(order, "2026-11-21T09:00:00-05:00")
    edited["line_items"][0]["current_quantity"] = sock["quantity"] - 2  # two socks taken off by an edit
    stack.post_shopify(edited, topic="orders/updated")
    stack.run_jobs()
    with stack.rt.sessions() as session:
        held = {r.sku: r.quantity for r in session.scalars(select(Reservation)) if not r.released}
    assert held[sock["sku"]] == sock["quantity"] - 2
    (row,) = stack.erp_orders()
    # The ERP order keeps the units as placed, so its total stays the store's total_price; the store's
    # refund of the two socks is what credits them.
    assert cents(row.total) == Decimal(order["total_price"])
    assert [int(ln.quantity) for ln in stack.erp_lines(row.external_ref)][:1] == [sock["quantity"]]
    latest = max(stack.events(), key=lambda e: e.id)
    assert latest.status == "succeeded" and f"2 × {sock['sku']}" in latest.result["edits"]
    page = sign_in(stack, SUPPORT, "support").get(f"/console/events/{latest.id}").get_data(as_text=True)
    assert "Order edits" in page and f"2 × {sock['sku']}" in page


def test_an_order_bound_by_another_event_after_this_one_looked_is_bound_once_at_the_newer_version(stack, monkeypatch):
    from connector.base.models import OrderAttribution, OrderLink
    from connector.orders import lifecycle

    order = load_fixture("shopify", "order_discount_multiline.json")
    stack.post_shopify(order)
    stack.run_jobs()
    with stack.rt.sessions() as session:
        held_before = sorted((r.sku, r.quantity) for r in session.scalars(select(Reservation)))
    # The next version's event looked for the order's binding before the first event's commit made it: it finds
    # none, writes as for a new order, and its first binding (with the stock that order holds) is refused whole.
    from adapters.prepared import Sent

    looked = []
    real = lifecycle._LINK.send

    def not_yet(conn, params):  # type: ignore[no-untyped-def]
        looked.append(params["external_id"])
        return Sent(lambda: []) if len(looked) == 1 else real(conn, params)

    monkeypatch.setattr(lifecycle._LINK, "send", not_yet)
    stack.post_shopify(shopify_version(order, "2026-11-21T09:00:00-05:00"), topic="orders/updated")
    stack.run_jobs()

    assert looked and all(e.status == "succeeded" for e in stack.events())
    with stack.rt.sessions() as session:
        (link,) = session.scalars(select(OrderLink)).all()
        assert link.source_updated_at.isoformat() == "2026-11-21T14:00:00+00:00"  # moved to the newer version
        assert len(session.scalars(select(OrderAttribution)).all()) == 1
        assert sorted((r.sku, r.quantity) for r in session.scalars(select(Reservation))) == held_before
    (row,) = stack.erp_orders()
    assert cents(row.total) == Decimal(order["total_price"])


def test_shopify_refund_before_its_order_waits_for_it(stack):
    stack.post_shopify(load_fixture("shopify", "refunds", "refund_partial_line.json"), topic="refunds/create")
    stack.run_jobs()
    (event,) = stack.events()
    assert event.status == "pending" and "before its order" in event.last_error
    stack.post_shopify(load_fixture("shopify", "order_discount_multiline.json"))
    stack.run_jobs(include_delayed=True)
    assert credited(stack) == Decimal("11.95")


def test_shopify_create_then_cancelled_cancels_with_the_reason(stack):
    order = load_fixture("shopify", "order_discount_multiline.json")
    stack.post_shopify(order)
    stack.run_jobs()
    cancelled = shopify_version(
        order, "2026-11-21T08:00:00-05:00", cancelled_at="2026-11-21T08:00:00-05:00", cancel_reason="customer"
    )
    stack.post_shopify(cancelled, topic="orders/cancelled")
    stack.post_shopify(cancelled, topic="orders/updated")
    stack.run_jobs()
    (row,) = stack.erp_orders()
    assert (row.status, row.cancel_reason) == ("cancelled", "customer")
    assert cents(row.total) == Decimal(order["total_price"])


@pytest.mark.parametrize("document", ["payment", "cancellation"])
def test_a_document_that_failed_after_its_order_was_written_is_made_on_the_retry(stack, document):
    """Found by the chaos test: the order landed, the payment call failed, and the retry saw "this version
    is already there" and stopped, so the payment never reached the ERP."""
    from adapters.erp import RetryableErpError

    method = {"payment": "record_payment", "cancellation": "cancel_order"}[document]
    calls = []

    def down_once(erp):  # type: ignore[no-untyped-def]
        real = getattr(erp, method)

        def call(*args):  # type: ignore[no-untyped-def]
            calls.append(args)
            if len(calls) == 1:
                raise RetryableErpError(f"the ERP's {document} service is down")
            return real(*args)

        setattr(erp, method, call)
        # As a back end that books payments after the order (REST, files, Tryton): the SQL tables book a new
        # order's payment in the order's own transaction, where no payment can fail after its order.
        erp.books_payments_with_order = False
        return erp

    stack.wrap_erp(down_once)
    order = load_fixture("shopify", "order_discount_multiline.json")
    if document == "cancellation":
        stack.post_shopify(shopify_version(order, "2026-11-20T10:15:30-05:00", financial_status="pending"))
        stack.run_jobs()
        order = shopify_version(
            order,
            "2026-11-21T08:00:00-05:00",
            financial_status="pending",
            cancel_reason="fraud",
            cancelled_at="2026-11-21T08:00:00-05:00",
        )
    stack.post_shopify(order, topic="orders/updated")
    stack.run_jobs()
    assert stack.events()[-1].status == "pending" and len(stack.erp_orders()) == 1
    stack.run_jobs(include_delayed=True)
    event = stack.events()[-1]
    (row,) = stack.erp_orders()
    assert event.status == "succeeded" and len(calls) == 2
    if document == "payment":
        (payment,) = stack.erp_rows(erp_payments)
        assert row.payment_status == "paid" and cents(payment.amount) == cents(order["total_price"])
    else:
        assert (row.status, row.cancel_reason) == ("cancelled", "fraud")


def test_shopify_cash_on_delivery_enters_unpaid_then_is_confirmed(stack):
    order = load_fixture("shopify", "order_guest.json")
    stack.post_shopify(order)
    stack.run_jobs()
    (row,) = stack.erp_orders()
    assert (row.payment_method, row.payment_status) == ("cod", "pending")
    assert stack.erp_rows(erp_payments) == []
    stack.post_shopify(
        shopify_version(order, "2026-11-25T10:00:00+05:30", financial_status="paid"), topic="orders/paid"
    )
    stack.run_jobs()
    (row,) = stack.erp_orders()
    (payment,) = stack.erp_rows(erp_payments)
    assert row.payment_status == "paid"
    assert (payment.method, cents(payment.amount), payment.currency) == (
        "cod",
        cents(order["total_price"]),
        order["currency"],
    )


def test_shopify_edit_arriving_after_a_newer_update_is_ignored(stack):
    order = load_fixture("shopify", "order_discount_multiline.json")
    newer = shopify_version(order, "2026-11-22T00:00:00-05:00", financial_status="paid", note="newer")
    stale_edit = shopify_version(order, "2026-11-21T00:00:00-05:00", financial_status="pending")
    stale_edit["line_items"] = stale_edit["line_items"][:1]
    stack.post_shopify(newer, topic="orders/updated")
    stack.run_jobs()
    stack.post_shopify(stale_edit, topic="orders/updated")  # Shopify sends the edited order as an update
    stack.run_jobs()
    (row,) = stack.erp_orders()
    assert row.payment_status == "paid"
    assert len(stack.erp_lines(row.external_ref)) == len(order["line_items"])


def test_shopify_orders_edited_is_recorded_with_what_changed_and_an_order_body_under_it_is_refused(stack):
    order = load_fixture("shopify", "order_discount_multiline.json")
    stack.post_shopify(order)
    stack.run_jobs()
    sock, shoe = (item["id"] for item in order["line_items"][:2])
    # The body Shopify sends for orders/edited: what the edit changed, not the order (its REST webhook docs).
    edit = {
        "order_edit": {
            "id": 78912345,
            "app_id": None,
            "created_at": "2026-11-21T09:00:00-05:00",
            "committed_at": "2026-11-21T09:01:00-05:00",
            "notify_customer": False,
            "order_id": order["id"],
            "staff_note": "",
            "user_id": 88123456789,
            "line_items": {
                "additions": [{"id": 15999999999001, "delta": 1}],
                "removals": [{"id": sock, "delta": 2}, {"id": shoe, "delta": 1}],
            },
            "discounts": {"line_item": {"additions": [], "removals": []}},
            "shipping_lines": {"additions": [], "removals": []},
        }
    }
    stack.post_shopify(edit, topic="orders/edited")
    stack.post_shopify(shopify_version(order, "2026-11-21T09:02:00-05:00"), topic="orders/edited")
    stack.run_jobs()
    recorded, refused = sorted((e for e in stack.events() if e.topic == "orders/edited"), key=lambda e: e.id)
    assert recorded.status == "succeeded"
    assert recorded.result["edits"] == f"+1 of line 15999999999001, −2 of line {sock}, −1 of line {shoe}"
    (row,) = stack.erp_orders()
    assert recorded.result["erp_ref"] == str(row.id)
    assert refused.status == "failed" and "not a shopify orders/edited payload" in refused.last_error


def test_shopify_returns_are_recorded_on_their_order_and_shown_and_other_bodies_under_them_are_refused(stack):
    order = load_fixture("shopify", "order_discount_multiline.json")  # the order the return fixtures name
    stack.post_shopify(order)
    stack.run_jobs()
    for topic, name in (("returns/request", "request"), ("returns/approve", "approve"), ("returns/close", "close")):
        stack.post_shopify(load_fixture("shopify", f"returns/{name}.json"), topic=topic)
    stack.post_shopify(order, topic="returns/approve")  # a signed order body replayed under a returns topic
    unknown = {**load_fixture("shopify", "returns/request.json"), "order": {"id": 1}, "id": 2}
    stack.post_shopify(unknown, topic="returns/request")
    stack.run_jobs()
    requested, approved, closed, refused, orphan = sorted(
        (e for e in stack.events() if e.topic.startswith("returns/")), key=lambda e: e.id
    )
    (row,) = stack.erp_orders()
    assert [e.status for e in (requested, approved, closed, orphan)] == ["succeeded"] * 4
    assert requested.result["return"] == (
        "#1001-R1 requested: 2 × SOCK-MER-M-CHA (size too small, "
        "'Runs a size small'), 1 × SHOE-TR2-42-SLT (defective, 'Sole came loose')"
    )
    assert approved.result["return"].startswith("#1001-R1 open: 2 × SOCK-MER-M-CHA")
    assert closed.result["return"] == "return 3547267221 closed"
    assert {e.result["erp_ref"] for e in (requested, approved, closed)} == {str(row.id)}
    assert {e.order_number for e in (requested, approved, closed)} == {"#1001"}  # found by order search
    assert orphan.result["erp_ref"] is None and "1 × line 14123456789002" in orphan.result["return"]
    assert refused.status == "failed" and "not a shopify returns/approve payload" in refused.last_error
    assert len(stack.erp_orders()) == 1 and stack.erp_rows(erp_credit_notes) == []  # a return alone books nothing
    page = sign_in(stack, SUPPORT, "support").get(f"/console/events/{approved.id}").get_data(as_text=True)
    assert "Return" in page and "2 × SOCK-MER-M-CHA (size too small" in page


# ---- WooCommerce -----------------------------------------------------------------------------------


def woo_version(payload: dict, modified: str, **changes) -> dict:  # type: ignore[no-untyped-def]
    version = copy.deepcopy(payload)
    version.update(date_modified=modified, date_modified_gmt=modified, **changes)
    return version


@pytest.fixture
def woo_api():  # type: ignore[no-untyped-def]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def serve_refund(mock, order_id: int, refund: dict) -> None:  # type: ignore[no-untyped-def]
    mock.get(
        re.compile(rf"{re.escape(WOO_URL)}/wp-json/wc/v3/orders/{order_id}/refunds/{refund['id']}(\?.*)?$"), json=refund
    )


def test_woocommerce_create_paid_partially_refunded_refunded(stack, woo_api):
    paid = load_fixture("woocommerce", "order_refunded_partial.json")
    total = Decimal(paid["total"])
    unpaid = woo_version(paid, "2026-11-21T02:00:00", status="on-hold", date_paid=None, date_paid_gmt=None, refunds=[])
    stack.post_woocommerce(unpaid, topic="order.created")
    stack.run_jobs()
    (row,) = stack.erp_orders()
    assert (row.payment_status, cents(row.total), row.currency) == ("pending", total, "AUD")

    stack.post_woocommerce(woo_version(paid, "2026-11-21T03:03:10", status="processing", refunds=[]))
    stack.run_jobs()
    assert stack.erp_orders()[0].payment_status == "paid"
    assert [cents(p.amount) for p in stack.erp_rows(erp_payments)] == [total]

    refund_901 = load_fixture("woocommerce", "refund_901.json")
    serve_refund(woo_api, paid["id"], refund_901)
    stack.post_woocommerce(paid)  # the fixture: refunds [901]
    stack.post_woocommerce(paid)  # the same state sent again: deduped
    stack.run_jobs()
    assert stack.erp_orders()[0].payment_status == "partially_refunded"
    assert credited(stack) == Decimal("12.10")

    refund_902 = {
        **copy.deepcopy(refund_901),
        "id": 902,
        "amount": str(total - Decimal("12.10")),
        "reason": "order returned",
        "line_items": [],
        "shipping_lines": [],
        "fee_lines": [],
    }
    serve_refund(woo_api, paid["id"], refund_902)
    done = woo_version(
        paid,
        "2026-11-24T10:00:00",
        status="refunded",
        refunds=[{"id": 902, "reason": "order returned", "total": f"-{refund_902['amount']}"}, *paid["refunds"]],
    )
    stack.post_woocommerce(done)
    stack.run_jobs()
    (row,) = stack.erp_orders()
    assert row.payment_status == "refunded"
    assert cents(row.total) == total
    assert credited(stack) == total
    # Refund 901 was fetched once only, though two later order payloads named it.
    fetched = [c.request.url for c in woo_api.calls if "/refunds/901" in c.request.url]
    assert len(fetched) == 1


def test_woocommerce_two_states_in_one_second_are_two_events_and_the_later_one_is_taken(stack):
    """WooCommerce keeps date_modified to the second: checkout creates the order pending and the gateway's
    answer makes it processing within the same second. The second state must not pass for a re-delivery of
    the first, or the order would never reach the ERP (reconciliation lists it under the same key)."""
    paid = load_fixture("woocommerce", "order_refunded_partial.json")
    second = "2026-11-21T02:00:00"
    pending = woo_version(paid, second, status="pending", date_paid=None, date_paid_gmt=None, refunds=[])
    processing = woo_version(paid, second, status="processing", refunds=[])
    stack.post_woocommerce(pending, topic="order.created")
    stack.post_woocommerce(processing)
    stack.post_woocommerce(processing)  # the same state sent again: still one event
    stack.run_jobs()
    assert [e.status for e in stack.events()] == ["succeeded", "succeeded"]
    (row,) = stack.erp_orders()
    assert (row.payment_status, cents(row.total)) == ("paid", Decimal(paid["total"]))


@pytest.mark.parametrize("rule, restocked", [(None, False), ("never", False), ("always", True)])
def test_woocommerce_refunded_units_go_back_into_stock_by_the_stores_rule(stack, woo_api, rule, restocked):
    if rule is not None:
        with stack.rt.sessions.begin() as session:
            store = session.scalars(select(Store).where(Store.slug == WOO_STORE)).one()
            store.settings = {**store.settings, "restock_refunds": rule}
    paid = load_fixture("woocommerce", "order_refunded_partial.json")
    serve_refund(woo_api, paid["id"], load_fixture("woocommerce", "refund_901.json"))
    stack.post_woocommerce(paid)  # refund 901: one candle
    stack.run_jobs()
    assert [(ln.sku, int(ln.quantity), ln.restock) for ln in stack.erp_rows(erp_credit_note_lines)] == [
        ("CNDL-BW-200", 1, restocked)
    ]


def test_woocommerce_create_then_cancelled(stack):
    order = load_fixture("woocommerce", "order_processing_coupon.json")
    stack.post_woocommerce(order, topic="order.created")
    stack.run_jobs()
    stack.post_woocommerce(woo_version(order, "2026-11-21T09:00:00", status="cancelled"))
    stack.run_jobs()
    (row,) = stack.erp_orders()
    assert row.status == "cancelled" and "WooCommerce" in row.cancel_reason
    assert cents(row.total) == Decimal(order["total"])


def test_woocommerce_deleted_order_is_cancelled(stack):
    order = load_fixture("woocommerce", "order_processing_coupon.json")
    stack.post_woocommerce(order, topic="order.created")
    stack.run_jobs()
    stack.post_woocommerce({"id": order["id"]}, topic="order.deleted")
    stack.run_jobs()
    assert stack.erp_orders()[0].status == "cancelled"


def test_woocommerce_cash_on_delivery_enters_unpaid_then_is_confirmed(stack):
    order = load_fixture("woocommerce", "order_cod_guest.json")
    stack.post_woocommerce(order, topic="order.created")
    stack.run_jobs()
    (row,) = stack.erp_orders()
    assert (row.payment_method, row.payment_status) == ("cod", "pending")
    delivered = woo_version(
        order,
        "2026-11-25T16:00:00",
        status="completed",
        date_paid="2026-11-25T16:00:00",
        date_paid_gmt="2026-11-25T16:00:00",
        date_completed_gmt="2026-11-25T16:00:00",
    )
    stack.post_woocommerce(delivered)
    stack.run_jobs()
    (row,) = stack.erp_orders()
    (payment,) = stack.erp_rows(erp_payments)
    assert row.payment_status == "paid"
    assert (payment.method, cents(payment.amount)) == ("cod", cents(order["total"]))


def test_woocommerce_pending_orders_wait_until_they_move_on(stack):
    order = load_fixture("woocommerce", "order_processing_coupon.json")
    stack.post_woocommerce(
        woo_version(order, "2026-11-20T15:00:00", status="pending", date_paid_gmt=None), topic="order.created"
    )
    stack.run_jobs()
    assert stack.erp_orders() == []
    assert "not imported" in stack.events()[0].result["note"]
    stack.post_woocommerce(order)
    stack.run_jobs()
    assert len(stack.erp_orders()) == 1


def test_woocommerce_coalesced_updates_out_of_order_keep_the_newest(stack):
    order = load_fixture("woocommerce", "order_processing_coupon.json")
    newer = woo_version(order, "2026-11-22T12:00:00", status="completed", customer_note="newest")
    older = woo_version(order, "2026-11-21T12:00:00", customer_note="older")
    for payload in (newer, older, newer):
        assert stack.post_woocommerce(payload).status_code == 200
    stack.run_jobs()
    assert len(stack.events()) == 2
    assert len(stack.erp_orders()) == 1
    assert "stale" in stack.events()[1].result["note"]


def test_woocommerce_ping_and_forged_signature(stack):
    ping = stack.client.post(
        "/webhooks/woocommerce/acme-eu",
        data=b"webhook_id=17",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert ping.status_code == 200
    forged = stack.post_woocommerce(load_fixture("woocommerce", "order_cancelled.json"), secret="wrong")
    assert forged.status_code == 401
    unsigned = stack.client.post(
        "/webhooks/woocommerce/acme-eu", data=b'{"id": 1}', headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401
    assert stack.client.post("/webhooks/woocommerce/nobody", data=b"webhook_id=17").status_code == 404
    assert stack.events() == []


def test_a_malformed_payload_with_a_valid_signature_is_parked_with_a_reason(stack):
    order = load_fixture("woocommerce", "order_processing_coupon.json")
    order["line_items"][0]["subtotal"] = "twelve"
    response = stack.post_woocommerce(order)
    assert response.status_code == 200
    stack.run_jobs(include_delayed=True)
    (event,) = stack.events()
    assert event.status == "failed" and event.attempts == 1
    assert "line_items[0].subtotal" in event.last_error
    assert stack.erp_orders() == []


# ---- customers -------------------------------------------------------------------------------------


def test_a_repeat_guest_with_other_casing_and_spaced_phone_is_one_customer(stack):
    first = load_fixture("woocommerce", "order_cod_guest.json")
    second = woo_version(first, "2026-11-26T08:00:00", id=first["id"] + 1, number=str(first["id"] + 1))
    second["billing"] = {
        **first["billing"],
        "email": first["billing"]["email"].upper(),
        "phone": first["billing"]["phone"].replace(" ", ""),
    }
    third = copy.deepcopy(second)
    third.update(id=first["id"] + 2, number=str(first["id"] + 2))
    third["billing"] = {**second["billing"], "email": "", "phone": " 06 1234 5678 "}
    for payload in (first, second, third):
        stack.post_woocommerce(payload, topic="order.created")
    stack.run_jobs()
    assert len(stack.erp_orders()) == 3
    (customer,) = stack.erp_customers()
    assert customer.email == first["billing"]["email"].lower()
    assert {o.customer_id for o in stack.erp_orders()} == {customer.id}


def test_the_same_person_on_shopify_and_woocommerce_is_one_customer(stack):
    woo = load_fixture("woocommerce", "order_cod_guest.json")
    shop = load_fixture("shopify", "order_guest.json")
    shop["email"] = shop["contact_email"] = f"  {woo['billing']['email'].swapcase()} "
    stack.post_woocommerce(woo, topic="order.created")
    stack.post_shopify(shop)
    stack.run_jobs()
    assert len(stack.erp_orders()) == 2
    assert len(stack.erp_customers()) == 1


def test_the_same_person_ordering_in_two_stores_at_once_is_one_customer(stack, monkeypatch):
    """Two workers, one buyer's first orders from two stores: each order's account key is its store's own, the
    email is the same. While the Shopify order's worker looks the buyer up in the ERP, the WooCommerce one runs:
    it must wait for the first (a retry), not create a second customer."""
    from sqlalchemy import update

    from connector.base.models import InboxEvent
    from connector.orders.pipeline import process_event

    woo = load_fixture("woocommerce", "order_cod_guest.json")
    woo["customer_id"] = 5077  # an account holder in both stores
    shop = load_fixture("shopify", "order_guest.json")
    shop["email"] = shop["contact_email"] = woo["billing"]["email"]
    shop["customer"] = {"id": 9077, "email": woo["billing"]["email"], "first_name": "A", "last_name": "B"}
    stack.post_shopify(shop)
    stack.post_woocommerce(woo, topic="order.created")
    shop_event, woo_event = stack.events()
    erp = type(stack.rt.erp())
    find = erp.find_customer
    meanwhile: list[str] = []

    def find_while_the_other_worker_runs(self, email, phone):  # type: ignore[no-untyped-def]
        if not meanwhile:
            meanwhile.append(process_event(stack.rt, woo_event.id).status)
        return find(self, email, phone)

    monkeypatch.setattr(erp, "find_customer", find_while_the_other_worker_runs)
    assert process_event(stack.rt, shop_event.id).status == "succeeded"
    assert meanwhile == ["retry"]  # the other worker waited for this one's customer
    monkeypatch.setattr(erp, "find_customer", find)
    with stack.rt.sessions.begin() as session:  # its retry's moment has come
        session.execute(update(InboxEvent).where(InboxEvent.id == woo_event.id).values(next_attempt_at=None))
    assert process_event(stack.rt, woo_event.id).status == "succeeded"
    assert len(stack.erp_orders()) == 2
    (customer,) = stack.erp_customers()
    assert {o.customer_id for o in stack.erp_orders()} == {customer.id}


def test_two_orders_of_one_buyer_taken_at_once_wait_for_one_customer_without_a_retry(stack, monkeypatch):
    """Two workers take a repeat buyer's first two orders at the same moment: the second waits the few
    milliseconds the first takes to create the customer, then books its order on it (no retry seconds later)."""
    import threading
    import time

    from connector.orders.pipeline import process_event

    first = load_fixture("shopify", "order_guest.json")
    second = {**first, "id": first["id"] + 1, "name": "#1002"}
    stack.post_shopify(first)
    stack.post_shopify(second)
    one, two = stack.events()
    erp = type(stack.rt.erp())
    find = erp.find_customer
    looked = threading.Event()

    def slow_find(self, email, phone):  # type: ignore[no-untyped-def]
        looked.set()
        time.sleep(0.3)  # the first worker is still asking the ERP when the second arrives
        return find(self, email, phone)

    monkeypatch.setattr(erp, "find_customer", slow_find)
    outcomes: dict[int, str] = {}
    worker = threading.Thread(target=lambda: outcomes.setdefault(one.id, process_event(stack.rt, one.id).status))
    worker.start()
    assert looked.wait(5)
    outcomes[two.id] = process_event(stack.rt, two.id).status
    worker.join(10)
    assert outcomes == {one.id: "succeeded", two.id: "succeeded"}
    assert [e.attempts for e in stack.events()] == [1, 1]
    (customer,) = stack.erp_customers()
    assert {o.customer_id for o in stack.erp_orders()} == {customer.id}


def test_a_buyer_is_claimed_whole_or_not_at_all(stack):
    """A worker claims every key of a buyer in one go: when another worker holds one of them, it holds none
    (a claim of some keys would let a third worker create the buyer again under the others)."""
    from datetime import timedelta

    from sqlalchemy import update

    from adapters.clock import utcnow
    from connector.base.models import CustomerLink, InboxEvent
    from connector.orders.customers import _claim

    stack.post_shopify(load_fixture("shopify", "order_guest.json"))
    stack.post_shopify({**load_fixture("shopify", "order_guest.json"), "id": 4242})
    holder, mine = stack.events()
    with stack.rt.sessions.begin() as session:  # the holder's worker is alive: its event holds a lease
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == holder.id)
            .values(status="processing", locked_until=utcnow() + timedelta(seconds=30))
        )
        session.add(CustomerLink(key="email:held@example.com", erp_customer_id=None, claimed_by=holder.id))
    keys = ["account:shopify:acme-us:1", "email:held@example.com", "phone:+16175550100"]
    assert _claim(stack.rt, keys, mine.id) is False
    with stack.rt.sessions() as session:
        rows = {link.key: link.claimed_by for link in session.scalars(select(CustomerLink))}
    assert rows == {"email:held@example.com": holder.id}
    assert _claim(stack.rt, [keys[0], keys[2]], mine.id) is True  # keys nobody holds: taken together


def test_a_claim_on_a_buyer_lasts_while_its_workers_lease_does(stack):
    """A worker killed while creating a buyer's customer leaves its claim behind: the buyer's next order waits
    while the dead worker's event still holds its lease, and goes ahead as soon as the lease has run out
    (not a fixed minute later)."""
    from datetime import timedelta

    from sqlalchemy import update

    from adapters.clock import utcnow
    from connector.base.models import CustomerLink, InboxEvent
    from connector.orders.pipeline import process_event
    from mappings.customers import normalise_email

    woo = load_fixture("woocommerce", "order_cod_guest.json")
    stack.post_woocommerce(woo, topic="order.created")
    other = woo_version(woo, "2026-11-26T08:00:00", id=woo["id"] + 1, number=str(woo["id"] + 1))
    stack.post_woocommerce(other, topic="order.created")
    dead, waiting = stack.events()
    with stack.rt.sessions.begin() as session:  # the dead worker's attempt: its event, its claim on the email
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == dead.id)
            .values(status="processing", locked_until=utcnow() + timedelta(seconds=30))
        )
        email = normalise_email(woo["billing"]["email"])
        session.add(CustomerLink(key=f"email:{email}", erp_customer_id=None, claimed_by=dead.id))
    assert process_event(stack.rt, waiting.id).status == "retry"
    with stack.rt.sessions.begin() as session:  # its lease runs out; the next order need not wait for the sweep
        session.execute(update(InboxEvent).where(InboxEvent.id.in_([dead.id, waiting.id])).values(next_attempt_at=None))
        session.execute(
            update(InboxEvent).where(InboxEvent.id == dead.id).values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert process_event(stack.rt, waiting.id).status == "succeeded"
    assert process_event(stack.rt, dead.id).status == "succeeded"  # reclaimed: the same customer, no second one
    assert len(stack.erp_orders()) == 2 and len(stack.erp_customers()) == 1


@pytest.mark.parametrize("policy, expected", [("always_new", 2), ("guest_account", 1)])
def test_customer_policy_is_the_merchants_choice(stack, policy, expected):
    import yaml

    from connector.setup.config_io import dump_config, load_config

    doc = yaml.safe_load(dump_config(stack.rt))
    for store in doc["stores"]:
        store["customer_policy"] = policy
    load_config(stack.rt, json.dumps({"stores": doc["stores"]}))
    stack.app.extensions["connector.stores"]._cache.clear()
    first = load_fixture("woocommerce", "order_cod_guest.json")
    other = woo_version(first, "2026-11-26T08:00:00", id=first["id"] + 1)
    other["billing"] = {**first["billing"], "email": "someone.else@example.org", "phone": "+33 7 00 00 00 01"}
    for payload in (first, other):
        stack.post_woocommerce(payload, topic="order.created")
    stack.run_jobs()
    assert len(stack.erp_orders()) == 2
    assert len(stack.erp_customers()) == expected
