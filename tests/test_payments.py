"""Payments: one ERP payment per transaction that brought money in, so finance can match the processor.

Shopify's order webhook carries no transactions: the connector reads GET orders/{id}/transactions.json
(in shop currency) from the store's fake when the order becomes paid. Figures are worked by hand."""

from __future__ import annotations

import copy
from decimal import Decimal

from adapters.erp.sql_contract import erp_payments
from tests.conftest import load_fixture
from tests.fakes.shopify import FakeShopify
from tests.stack import Stack
from tests.storefronts import configure

CENT = Decimal("0.01")


def split_order(shop: FakeShopify) -> dict:
    """Order #1001 (total 205.65 USD) paid with a 50.00 gift card and 155.65 by card, known to the fake shop."""
    order = load_fixture("shopify", "order_discount_multiline.json")
    order["payment_gateway_names"] = ["gift_card", "shopify_payments"]
    shop.orders[order["id"]] = order
    shop.add_transaction(order["id"], "sale", "gift_card", "50.00")
    shop.add_transaction(order["id"], "sale", "shopify_payments", "155.65", status="failure")  # declined first
    auth = shop.add_transaction(
        order["id"], "authorization", "shopify_payments", "155.65", authorization="ch_3QhZk2LTUR9LBPfg"
    )
    shop.add_transaction(
        order["id"], "capture", "shopify_payments", "155.65", authorization="ch_3QhZk2LTUR9LBPfg", parent_id=auth["id"]
    )
    return order


def payments(stack: Stack) -> list[tuple[str, str, Decimal, str | None]]:
    return sorted(
        (p.gateway, p.method, Decimal(p.amount).quantize(CENT), p.transaction_ref) for p in stack.erp_rows(erp_payments)
    )


def test_a_gift_card_and_a_card_are_two_erp_payments_adding_up_to_the_total(stack: Stack, shop: FakeShopify) -> None:
    configure(stack, shop=shop)
    order = split_order(shop)
    stack.post_shopify(order, topic="orders/paid")
    stack.run_jobs()
    assert [e.status for e in stack.events()] == ["succeeded"]
    assert payments(stack) == [
        ("gift_card", "gift_card", Decimal("50.00"), None),
        ("shopify_payments", "card", Decimal("155.65"), "ch_3QhZk2LTUR9LBPfg"),
    ]
    assert sum(p[2] for p in payments(stack)) == Decimal("205.65") == Decimal(order["total_price"])
    (row,) = stack.erp_orders()
    assert row.payment_status == "paid"
    keys = sorted(p.payment_ref for p in stack.erp_rows(erp_payments))
    tx_ids = [
        t["id"] for t in shop.transactions[order["id"]] if t["kind"] in ("sale", "capture") and t["status"] == "success"
    ]
    assert keys == sorted(f"shopify:acme-us:{order['id']}:payment:{t}" for t in tx_ids)
    assert shop.calls["GET transactions"] == 1

    # The same version again, then newer ones: nothing more is booked, and Shopify is not asked again.
    stack.post_shopify(order, topic="orders/updated")
    for n, topic in enumerate(("orders/updated", "orders/fulfilled"), start=1):
        stack.post_shopify({**copy.deepcopy(order), "updated_at": f"2026-11-2{n}T09:00:00-05:00"}, topic=topic)
    stack.run_jobs()
    assert {e.status for e in stack.events()} == {"succeeded"} and len(stack.events()) == 4
    assert len(stack.erp_rows(erp_payments)) == 2
    assert shop.calls["GET transactions"] == 1


def test_a_payment_that_failed_midway_books_only_the_missing_one_on_the_retry(stack: Stack, shop: FakeShopify) -> None:  # type: ignore[no-untyped-def]
    from adapters.erp import RetryableErpError

    calls = []

    def second_payment_fails_once(erp):  # type: ignore[no-untyped-def]
        real = erp.record_payment

        def record_payment(payment):  # type: ignore[no-untyped-def]
            calls.append(payment.key)
            if len(calls) == 2:
                raise RetryableErpError("the ERP's payment service is down")
            return real(payment)

        erp.record_payment = record_payment
        return erp

    stack.wrap_erp(second_payment_fails_once)
    configure(stack, shop=shop)
    order = split_order(shop)
    stack.post_shopify(order, topic="orders/paid")
    stack.run_jobs()
    (event,) = stack.events()
    assert event.status == "pending" and "payment service is down" in event.last_error
    assert len(stack.erp_rows(erp_payments)) == 1 and stack.erp_orders()[0].payment_status == "partially_paid"
    stack.run_jobs(include_delayed=True)
    assert stack.events()[0].status == "succeeded"
    assert sum(p[2] for p in payments(stack)) == Decimal("205.65")
    assert len(calls) == 3 and calls[1] == calls[2]  # the gift card once, the card twice (the failed try)
    assert stack.erp_orders()[0].payment_status == "paid"


def test_an_order_with_the_old_single_payment_gets_no_second_booking(stack: Stack, shop: FakeShopify) -> None:
    # Before the upgrade: the store had no transactions to read, the order got one payment of its total.
    order = load_fixture("shopify", "order_discount_multiline.json")
    stack.post_shopify(order, topic="orders/paid")
    stack.run_jobs()
    (lump,) = stack.erp_rows(erp_payments)
    assert lump.payment_ref == f"shopify:acme-us:{order['id']}:payment" and lump.transaction_ref is None

    # After it: Shopify answers with the order's transactions, and a newer version of the order arrives.
    configure(stack, shop=shop)
    split_order(shop)
    stack.post_shopify({**order, "updated_at": "2026-11-22T09:00:00-05:00"}, topic="orders/updated")
    stack.run_jobs()
    assert stack.events()[-1].status == "succeeded"
    assert [p.payment_ref for p in stack.erp_rows(erp_payments)] == [lump.payment_ref]
    assert shop.calls["GET transactions"] == 0


def test_a_multi_currency_order_is_booked_in_shop_money(stack: Stack, shop: FakeShopify) -> None:
    order = load_fixture("shopify", "order_presentment_currency.json")  # 85.95 USD, shown to the buyer as 78.79 EUR
    order["financial_status"] = "paid"
    configure(stack, shop=shop)
    shop.orders[order["id"]] = order
    shop.add_transaction(
        order["id"], "sale", "shopify_payments", "85.95", authorization="ch_eur_1", presentment=("78.79", "EUR")
    )
    stack.post_shopify(order, topic="orders/paid")
    stack.run_jobs()
    (payment,) = stack.erp_rows(erp_payments)
    assert (Decimal(payment.amount).quantize(CENT), payment.currency) == (Decimal("85.95"), "USD")


def test_shopify_not_answering_is_retried_with_a_reason_then_books(stack: Stack, shop: FakeShopify) -> None:
    configure(stack, shop=shop)
    order = split_order(shop)
    shop.fail_next(4)  # the client's own tries (1 + 3 retries) all meet a 503
    stack.post_shopify(order, topic="orders/paid")
    stack.run_jobs()
    (event,) = stack.events()
    assert event.status == "pending"
    assert "could not read the transactions of order #1001 from Shopify" in event.last_error
    assert len(stack.erp_orders()) == 1 and stack.erp_rows(erp_payments) == []
    stack.run_jobs(include_delayed=True)
    assert stack.events()[0].status == "succeeded" and len(stack.erp_rows(erp_payments)) == 2


def test_a_woocommerce_transaction_id_is_the_erp_payments_reference(stack: Stack) -> None:
    order = load_fixture("woocommerce", "order_processing_coupon.json")  # Stripe, paid, total 127.27 USD
    stack.post_woocommerce(order, topic="order.created")
    stack.run_jobs()
    (payment,) = stack.erp_rows(erp_payments)
    assert (payment.transaction_ref, payment.method, payment.gateway) == (
        "ch_3QhZk2LTUR9LBPfg0a7Yx1Cd",
        "card",
        "Credit Card (Stripe)",
    )
    assert Decimal(payment.amount).quantize(CENT) == Decimal("127.27")
    assert payment.payment_ref == f"woocommerce:acme-eu:{order['id']}:payment"
