"""End to end into a real Tryton: signed webhooks in, confirmed Tryton sales out, through the whole connector.

The connector is the one the other integration tests use (tests/stack.py: the Flask app, the inbox,
the queue, the pipeline), configured with `erp: kind: tryton` pointing at the harness's trytond
(tests/erp_backends/tryton.py: reset to the setup snapshot for every test). Every test runs on
SQLite + the embedded queue and on PostgreSQL + Redis + RQ workers. Nothing of Tryton is mocked: what
is checked is read back from Tryton over JSON-RPC (the harness's own client) and through the
adapter's get_order.

Expected figures come from the store payloads themselves (shop money, discounts, shipping, tax),
not from the connector's mapping, so a mapping mistake shows here too.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from redis import Redis
from sqlalchemy import select

from connector.base.models import OfflineRefund, ReceiptDelivery
from connector.jobs import sync_receipts_job, sync_refunds_job
from connector.orders.drains import drain
from connector.orders.operations import retry_events
from connector.sync.erp_refunds import sync_refunds
from connector.sync.receipts import sync_receipts
from mappings.canonical import ErpRefund, ErpRefundLine, Money, Receipt
from tests.conftest import PG_ADMIN_URL, REDIS_URL, load_fixture
from tests.erp_backends.tryton import TrytonHarness
from tests.fakes.shopify import FakeShopify
from tests.stack import STORE, WOO_STORE, Stack, build_stack
from tests.storefronts import configure, map_locations
from tests.test_routing import set_rules, stock

pytestmark = pytest.mark.tryton
CENT = Decimal("0.01")
PRICE = Decimal("0.0001")  # Tryton's sale.line unit_price digits


@pytest.fixture
def tryton(tmp_path) -> Iterator[TrytonHarness]:  # type: ignore[no-untyped-def]
    h = TrytonHarness(tmp_path)
    yield h
    h.close()


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request, tmp_path, tryton) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    """The connector on both stacks, its ERP the harness's Tryton."""
    erp = tryton.config()
    if request.param == "postgres":
        db_url, erp_url = request.getfixturevalue("pg_databases")
        Redis.from_url(REDIS_URL).flushdb()
        s = build_stack(
            "postgres", tmp_path, db_url, erp_url, redis_url=REDIS_URL, pg_admin_url=PG_ADMIN_URL, erp_config=erp
        )
    else:
        s = build_stack(
            "sqlite",
            tmp_path,
            f"sqlite:///{tmp_path / 'connector.db'}",
            f"sqlite:///{tmp_path / 'erp.db'}",
            erp_config=erp,
        )
    try:
        yield s
    finally:
        s.close()


# ---- what the store says --------------------------------------------------------------------------


def _money(value) -> Decimal:  # type: ignore[no-untyped-def]
    return Decimal(str(value))


def shopify_expected(payload: dict) -> dict:
    """The Tryton sale a Shopify order must become: net unit prices (discounts inside), then one
    SHIPPING line per shipping line (net of its discounts), each with the Tryton tax named as the store's
    tax title; Tryton's tax is the store's total tax."""
    lines = []
    for item in payload["line_items"]:
        qty = int(item["quantity"])
        gross = _money(item["price_set"]["shop_money"]["amount"]) * qty
        discount = sum(
            (_money(a["amount_set"]["shop_money"]["amount"]) for a in item["discount_allocations"]), Decimal(0)
        )
        lines.append(
            (
                item["sku"] or None,
                Decimal(qty),
                ((gross - discount) / qty).quantize(PRICE),
                gross - discount,
                _titles(item["tax_lines"]),
            )
        )
    for ship in payload["shipping_lines"]:
        net = _money(ship["price_set"]["shop_money"]["amount"]) - sum(
            (_money(a["amount_set"]["shop_money"]["amount"]) for a in ship["discount_allocations"]), Decimal(0)
        )
        lines.append(("SHIPPING", Decimal(1), net, net, _titles(ship["tax_lines"])))
    assert not payload["taxes_included"]
    return {
        "ref": f"shopify:{STORE}:{payload['id']}",
        "email": payload["email"].strip().lower(),
        "currency": payload["currency"],
        "total": _money(payload["total_price_set"]["shop_money"]["amount"]),
        "tax": _money(payload["total_tax_set"]["shop_money"]["amount"]),
        "lines": lines,
    }


def _titles(tax_lines: list[dict]) -> list[str]:
    """A Shopify line's charged tax titles (= the Tryton taxes' names)."""
    return sorted(t["title"] for t in tax_lines if _money(t["price"]))


def _woo_titles(taxes: list[dict], labels: dict[int, str]) -> list[str]:
    """A WooCommerce line's charged taxes, by their rate's label (= the Tryton taxes' names)."""
    return sorted(labels[t["id"]] for t in taxes if _money(t["total"] or 0))


def woocommerce_expected(payload: dict) -> dict:
    """The same for WooCommerce: line totals are after coupons and before tax; plain fees are lines without
    product; cart, shipping and fee tax are Tryton taxes on those lines."""
    assert not payload["prices_include_tax"]
    labels = {t["rate_id"]: t["label"] for t in payload["tax_lines"]}
    lines = []
    for item in payload["line_items"]:
        qty, total = int(item["quantity"]), _money(item["total"])
        lines.append(
            (
                item["sku"] or None,
                Decimal(qty),
                (total / qty).quantize(PRICE),
                total,
                _woo_titles(item["taxes"], labels),
            )
        )
    for ship in payload["shipping_lines"]:
        lines.append(
            ("SHIPPING", Decimal(1), _money(ship["total"]), _money(ship["total"]), _woo_titles(ship["taxes"], labels))
        )
    for fee in payload["fee_lines"]:
        lines.append((None, Decimal(1), _money(fee["total"]), _money(fee["total"]), _woo_titles(fee["taxes"], labels)))
    return {
        "ref": f"woocommerce:{WOO_STORE}:{payload['id']}",
        "email": payload["billing"]["email"].strip().lower(),
        "currency": payload["currency"],
        "total": _money(payload["total"]),
        "tax": _money(payload["total_tax"]),
        "lines": lines,
    }


def skus(payload: dict) -> list[str]:
    return [item["sku"] for item in payload["line_items"] if item["sku"]]


# ---- what Tryton has --------------------------------------------------------------------------------


def sales_with_reference(tryton: TrytonHarness, ref: str) -> int:
    return tryton.rpc.call("sale.sale", "search_count", [("reference", "=", ref)])


def assert_confirmed_sale(tryton: TrytonHarness, expected: dict) -> dict:
    """Exactly one sale with the order's reference, confirmed and processed, for the party with the
    store's email, with the store's lines and total to the cent."""
    rows = tryton.rpc.call(
        "sale.sale",
        "search_read",
        [("reference", "=", expected["ref"])],
        0,
        None,
        None,
        ["id", "state", "party", "currency.code", "total_amount", "tax_amount", "shipments", "invoices"],
    )
    assert len(rows) == 1, f"{len(rows)} Tryton sales with reference {expected['ref']}"
    (sale,) = rows
    # confirmed, and processed by Tryton: its customer shipment and invoice exist
    assert sale["state"] == "processing", sale
    assert sale["shipments"] and sale["invoices"]
    assert sale["currency."]["code"] == expected["currency"]
    assert (sale["total_amount"], sale["tax_amount"]) == (expected["total"], expected["tax"])
    assert sale["total_amount"].quantize(CENT) == sale["total_amount"]  # to the cent, no stray fractions

    emails = tryton.rpc.call(
        "party.contact_mechanism",
        "search_read",
        [("party", "=", sale["party"]), ("type", "=", "email")],
        0,
        None,
        None,
        ["value"],
    )
    assert [e["value"] for e in emails] == [expected["email"]]
    parties = tryton.rpc.call(
        "party.contact_mechanism", "search_count", [("type", "=", "email"), ("value", "=", expected["email"])]
    )
    assert parties == 1  # one party for the person

    lines = tryton.rpc.call(
        "sale.line",
        "search_read",
        [("sale", "=", sale["id"]), ("type", "=", "line")],
        0,
        None,
        [("sequence", "ASC"), ("id", "ASC")],
        ["product.code", "quantity", "unit_price", "amount", "taxes.name"],
    )
    got = [
        (
            (line.get("product.") or {}).get("code"),
            Decimal(str(line["quantity"])),
            line["unit_price"],
            line["amount"],
            sorted(t["name"] for t in line["taxes."]),
        )
        for line in lines
    ]
    want = [(sku, qty, unit, amount.quantize(CENT), taxes) for sku, qty, unit, amount, taxes in expected["lines"]]
    assert got == want
    assert sum((line[3] for line in got), Decimal(0)) == expected["total"] - expected["tax"]
    return sale


def assert_adapter_view(tryton: TrytonHarness, expected: dict, sale: dict) -> None:
    view = tryton.adapter().get_order(expected["ref"])
    assert view is not None
    assert (view.erp_ref, view.status, view.currency, view.total) == (
        str(sale["id"]),
        "confirmed",
        expected["currency"],
        expected["total"],
    )
    assert view.customer_id == str(sale["party"])
    assert [(ln.sku, ln.quantity, ln.unit_price) for ln in view.lines] == [
        (sku, qty, unit) for sku, qty, unit, *_ in expected["lines"]
    ]
    # both orders were paid in the store: the connector recorded one payment of the whole total
    assert (view.payment_status, view.paid_total) == ("paid", expected["total"])


# ---- the tests ----------------------------------------------------------------------------------------


def test_a_shopify_and_a_woocommerce_order_become_confirmed_tryton_sales(stack, tryton):
    shopify = load_fixture("shopify", "order_discount_multiline.json")
    woo = load_fixture("woocommerce", "order_processing_coupon.json")
    tryton.add_products(skus(shopify) + skus(woo))

    assert stack.post_shopify(shopify).status_code == 200
    assert stack.post_woocommerce(woo, topic="order.created").status_code == 200
    stack.run_jobs()

    events = stack.events()
    assert [(e.platform, e.status) for e in events] == [("shopify", "succeeded"), ("woocommerce", "succeeded")]
    for event, expected in zip(events, (shopify_expected(shopify), woocommerce_expected(woo)), strict=False):
        sale = assert_confirmed_sale(tryton, expected)
        assert event.result["erp_ref"] == str(sale["id"])
        assert [a.outcome for a in event.attempt_rows] == ["succeeded"]
        assert_adapter_view(tryton, expected, sale)

    # a repeated delivery of the same Shopify event, and the same WooCommerce state again: nothing new
    assert stack.post_shopify(shopify, event_id=events[0].headers["X-Shopify-Event-Id"]).status_code == 200
    assert stack.post_woocommerce(woo, topic="order.updated").status_code == 200
    stack.run_jobs(include_delayed=True)
    assert len(stack.events()) == 2
    assert sales_with_reference(tryton, shopify_expected(shopify)["ref"]) == 1
    assert sales_with_reference(tryton, woocommerce_expected(woo)["ref"]) == 1


def test_tryton_down_the_event_is_retried_and_lands_once_it_is_back(stack, tryton):
    payload = load_fixture("shopify", "order_discount_multiline.json")
    expected = shopify_expected(payload)
    tryton.add_products(skus(payload))

    with tryton.down():
        assert stack.post_shopify(payload).status_code == 200  # the store is answered while the ERP is away
        stack.run_jobs()
        (event,) = stack.events()
        assert (event.status, event.attempts) == ("pending", 1)
        assert event.next_attempt_at is not None
        assert "Tryton" in event.last_error and "unreachable" in event.last_error, event.last_error
        (attempt,) = event.attempt_rows
        assert attempt.outcome == "retry" and attempt.error == event.last_error

    stack.run_jobs(include_delayed=True)
    (event,) = stack.events()
    assert event.status == "succeeded" and event.last_error is None
    assert [a.outcome for a in event.attempt_rows] == ["retry", "succeeded"]
    sale = assert_confirmed_sale(tryton, expected)
    assert_adapter_view(tryton, expected, sale)

    stack.run_jobs(include_delayed=True)  # nothing left to run: still one sale
    assert sales_with_reference(tryton, expected["ref"]) == 1


def test_an_unknown_sku_is_parked_after_one_attempt_naming_it_then_lands_once_after_a_retry(stack, tryton):
    payload = load_fixture("shopify", "order_discount_multiline.json")
    expected = shopify_expected(payload)
    missing = "SOCK-MER-M-CHA"
    tryton.add_products([sku for sku in skus(payload) if sku != missing])

    assert stack.post_shopify(payload).status_code == 200
    stack.run_jobs(include_delayed=True)  # even with every delayed job run: no retry of a permanent error
    (event,) = stack.events()
    assert (event.status, event.attempts) == ("failed", 1)
    assert missing in event.last_error and "Tryton has no product" in event.last_error, event.last_error
    assert [a.outcome for a in event.attempt_rows] == ["failed"]
    assert sales_with_reference(tryton, expected["ref"]) == 0

    tryton.add_products([missing])  # someone creates the product in Tryton, then retries the event
    assert retry_events(stack.rt, [event.id]) == 1
    stack.run_jobs(include_delayed=True)
    (event,) = stack.events()
    assert event.status == "succeeded" and event.last_error is None
    assert [a.outcome for a in event.attempt_rows] == ["failed", "succeeded"]
    sale = assert_confirmed_sale(tryton, expected)
    assert_adapter_view(tryton, expected, sale)

    assert retry_events(stack.rt, [event.id]) == 0  # a succeeded event is not retried again
    stack.run_jobs(include_delayed=True)
    assert sales_with_reference(tryton, expected["ref"]) == 1


def test_first_orders_of_new_customers_drained_by_several_workers_at_once_all_land(stack, tryton):
    """Three workers each creating a new Tryton party at the same moment: Tryton on SQLite draws party codes
    outside its write lock, so some of those creates are refused as duplicate codes; none may park an
    order (the adapter redoes the create, the connector retries what is left)."""
    base = load_fixture("shopify", "order_discount_multiline.json")
    tryton.add_products(skus(base))
    payloads = []
    for n in range(6):
        payload = copy.deepcopy(base)
        email = f"buyer{n}@example.com"
        payload.update(id=base["id"] + n, name=f"#{2001 + n}", email=email, contact_email=email)
        # Six different people: another name each, or the same name at the same postcode would be asked about
        payload["customer"].update(
            id=base["customer"]["id"] + n, email=email, phone=f"+1617555{n:04d}", last_name=f"Whitfield-{n}"
        )
        payloads.append(payload)
        assert stack.post_shopify(payload).status_code == 200
    store_id = stack.events()[0].store_id

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            drain(store_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    stack.run_jobs(include_delayed=True)  # whatever was left to retry

    events = stack.events()
    assert [e.status for e in events] == ["succeeded"] * len(payloads), [e.last_error for e in events]
    assert all(a.outcome != "failed" for e in events for a in e.attempt_rows)
    for payload in payloads:
        assert_confirmed_sale(tryton, shopify_expected(payload))


def test_a_routed_order_becomes_a_sale_of_the_routed_warehouse_and_a_split_is_told_in_its_comment(stack, tryton):
    payload = load_fixture("shopify", "order_discount_multiline.json")  # ships to Boston, US-MA
    tryton.add_products(skus(payload))
    for code in ("BOS", "MAIN"):
        tryton.add_warehouse(code)
    set_rules(stack, {"by_destination": {"US": "BOS"}, "warehouses": ["MAIN"], "stock_check": True, "split": True})
    stock(stack, BOS={"SOCK-MER-M-CHA": 3}, MAIN={"SHOE-TR2-42-SLT": 1})

    assert stack.post_shopify(payload).status_code == 200
    stack.run_jobs()

    (event,) = stack.events()
    assert event.status == "succeeded", event.last_error
    ref = shopify_expected(payload)["ref"]
    (sale,) = tryton.rpc.call(
        "sale.sale", "search_read", [("reference", "=", ref)], 0, 1, None, ["warehouse.code", "comment"]
    )
    assert sale["warehouse."]["code"] == "BOS"  # a Tryton sale has one warehouse: the first line's
    assert "SHOE-TR2-42-SLT from MAIN" in sale["comment"]
    assert tryton.adapter().get_order(ref).warehouse == "BOS"


# ---- the ERP's own side: finance's receipts, the returns desk's returns ------------------------------------

# Only the real pipeline for these (Tryton's steps are slow, and SQLite runs the same code): PostgreSQL, Redis, RQ.
postgres_only = pytest.mark.parametrize("stack", ["postgres"], indirect=True)
INDIAN_SKUS = ["KRT-COT-L-IND", "DUP-BLK-01"]


def indian_order(stack: Stack, tryton: TrytonHarness, shop: FakeShopify, financial_status: str) -> tuple[int, str]:
    """order_guest.json (2 x KRT-COT-L-IND, 1 x DUP-BLK-01, shipping, 18% IGST inside the prices: 3146.00 INR)
    in the fake shop and through the pipeline into a processing Tryton sale; the shop's location Main sells from
    Tryton's warehouse WH."""
    tryton.add_products(INDIAN_SKUS)
    main = shop.add_location("Main")
    shop.add_variants(INDIAN_SKUS)
    configure(stack, shop=shop)
    map_locations(stack, [(STORE, str(main), "WH")])
    order_id = shop.add_order([("KRT-COT-L-IND", 2), ("DUP-BLK-01", 1)], financial_status=financial_status)
    payload = load_fixture("shopify", "order_guest.json")
    payload.update(id=order_id, financial_status=financial_status)
    shop.orders[order_id].update(currency="INR", total_price=payload["total_price"])
    assert stack.post_shopify(payload).status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()] == ["succeeded"], stack.events()[-1].last_error
    ref = f"shopify:{STORE}:{order_id}"
    (sale,) = tryton.rpc.call("sale.sale", "search_read", [("reference", "=", ref)], 0, 1, None, ["state"])
    assert sale["state"] == "processing"
    return order_id, ref


@postgres_only
def test_a_cod_order_whose_invoice_finance_pays_in_tryton_is_marked_paid_in_shopify_once(stack, tryton, shop):
    order_id, ref = indian_order(stack, tryton, shop, "pending")
    assert tryton.adapter().get_order(ref).paid_total == 0  # the store took no money: the connector booked none
    # Finance posts the sale's invoice and pays it in full (the Pay wizard), as the courier's cash came in.
    paid = tryton.seed_receipt(
        Receipt("COD", ref, Money(Decimal("3146.00"), "INR"), datetime.now(UTC), "cod", "COURIER-77")
    )

    stack.rt.queue.enqueue(sync_receipts_job)  # the scheduled job, through RQ
    stack.run_jobs()
    assert shop.marked_paid == [order_id] and shop.orders[order_id]["financial_status"] == "paid"
    with stack.rt.sessions() as session:
        (row,) = session.scalars(select(ReceiptDelivery)).all()
        assert (row.receipt_ref, row.status, row.amount) == (paid, "done", Decimal("3146.00"))

    # Shopify says the order is paid now: Tryton, whose invoice is paid already, gets no payment note.
    payload = load_fixture("shopify", "order_guest.json")
    payload.update(id=order_id, financial_status="paid", updated_at="2026-11-25T11:00:00+00:00")
    assert stack.post_shopify(payload, topic="orders/paid").status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()] == ["succeeded", "succeeded"]
    assert tryton.adapter().get_order(ref).paid_total == 0

    again = sync_receipts(stack.rt)  # the next run: nothing new, nothing told twice
    assert (again.read, again.recorded, sum(again.outcomes.values())) == (0, 0, 0)
    assert shop.calls["graphql:orderMarkAsPaid"] == 1


@postgres_only
def test_a_return_the_desk_makes_in_tryton_is_refunded_in_shopify_once_and_credits_tryton_no_second_time(
    stack, tryton, shop
):
    order_id, ref = indian_order(stack, tryton, shop, "paid")
    main = next(iter(shop.locations))
    item = shop.variant_by_sku("KRT-COT-L-IND").inventory_item_id
    before = shop.level(item, main) or 0
    # The returns desk: the sale's Return wizard, trimmed to one kurta and the shipping, quoted and confirmed.
    back = tryton.seed_offline_refund(
        ErpRefund(
            ref="",
            order_ref=ref,
            lines=(ErpRefundLine("KRT-COT-L-IND", 1, Money(Decimal("1199.00"), "INR"), True, "WH"),),
            shipping=Money(Decimal("99.00"), "INR"),
            total=Money(Decimal("1298.00"), "INR"),
            created_at=datetime.now(UTC),
            reason="Wrong size, returned at the shop",
        )
    )

    stack.rt.queue.enqueue(sync_refunds_job)  # the scheduled job, through RQ
    stack.run_jobs()
    (refund,) = shop.orders[order_id]["refunds"]
    (line,) = refund["refund_line_items"]
    assert (line["line_item"]["sku"], line["quantity"], line["restock_type"], line["location_id"]) == (
        "KRT-COT-L-IND",
        1,
        "return",
        main,
    )
    assert shop.level(item, main) == before + 1
    (tx,) = refund["transactions"]
    assert (tx["kind"], tx["amount"], tx["currency"]) == ("refund", "1298.00", "INR")
    assert [(a["kind"], a["amount"]) for a in refund["order_adjustments"]][:1] == [("shipping_refund", "-99.00")]
    assert refund["note"] == f"ERP credit note {back.ref} - Wrong size, returned at the shop"
    with stack.rt.sessions() as session:
        (row,) = session.scalars(select(OfflineRefund)).all()
        assert (row.refund_ref, row.status, row.amount) == (back.ref, "done", Decimal("1298.00"))

    # Shopify's refunds/create webhook for it: Tryton has the return already and gets no second one.
    assert stack.post_shopify(shop.refund_payload(refund["id"]), topic="refunds/create").status_code == 200
    stack.run_jobs()
    assert stack.events()[-1].status == "succeeded" and "not credited again" in str(stack.events()[-1].result)
    (sale,) = tryton.rpc.call("sale.sale", "search", [("reference", "=", ref)], 0, 1, None)
    returns = tryton.rpc.call(
        "sale.sale", "search_read", [("origin", "=", f"sale.sale,{sale}")], 0, None, None, ["reference"]
    )
    assert [r["reference"] for r in returns] == [None]  # the desk's own, none written by the connector
    view = tryton.adapter().get_order(ref)
    assert (view.payment_status, view.credited_total) == ("partially_refunded", Decimal("1298.00"))

    again = sync_refunds(stack.rt)  # the next run: nothing new, nothing refunded twice
    assert (again.read, again.recorded, sum(again.outcomes.values())) == (0, 0, 0)
    assert shop.calls["graphql:refundCreate"] == 1


# ---- the other storefront platforms ---------------------------------------------------------------------


def test_a_bigcommerce_order_becomes_one_confirmed_tryton_sale_to_the_cent(stack, tryton):
    import json

    from connector.base.clients import forget
    from connector.setup.config_io import load_config
    from platforms.bigcommerce.receiver import SECRET_HEADER
    from tests.fakes.bigcommerce import FakeBigCommerce, Line

    bc = FakeBigCommerce()
    try:
        store = {"slug": "bc-store", "platform": "bigcommerce", "store_hash": bc.store_hash, "api_url": bc.url}
        load_config(stack.rt, json.dumps({"stores": [{**store, "access_token": bc.token, "webhook_secret": "s3cret"}]}))
        forget()
        tee = Line("BC-TEE-M", 2, Decimal("20.00"), discount=Decimal("4.00"), tax_rate=Decimal("10"))
        mug = Line("BC-MUG", 1, Decimal("12.50"), tax_rate=Decimal("10"))
        oid = bc.add_order(
            [tee, mug],
            shipping=Decimal("8.00"),
            shipping_tax_rate=Decimal("10"),
            customer_id=42,
            coupon="SAVE4",
            tax_name="Sales tax",
        )
        tryton.add_products(["BC-TEE-M", "BC-MUG"])
        body = json.dumps(bc.thin("store/order/created", oid)).encode()
        for _ in range(2):  # BigCommerce retries the same payload
            answer = stack.webhooks.post(
                "/webhooks/bigcommerce/bc-store",
                data=body,
                headers={"Content-Type": "application/json", SECRET_HEADER: "s3cret"},
            )
            assert answer.status_code == 200
        stack._sent(answer)
        stack.run_jobs()
        order = bc.orders[oid]
        expected = {
            "ref": f"bigcommerce:bc-store:{oid}",
            "email": "buyer@example.com",
            "currency": "USD",
            "total": Decimal(order["total_inc_tax"]).quantize(CENT),
            "tax": Decimal(order["total_tax"]).quantize(CENT),
            "lines": [
                ("BC-TEE-M", Decimal(2), Decimal("18.0000"), Decimal("36.00"), ["Sales tax"]),
                ("BC-MUG", Decimal(1), Decimal("12.5000"), Decimal("12.50"), ["Sales tax"]),
                ("SHIPPING", Decimal(1), Decimal("8.00"), Decimal("8.00"), ["Sales tax"]),
            ],
        }
        assert expected["total"] == Decimal("62.15")  # 56.50 net + 5.65 tax
        assert_confirmed_sale(tryton, expected)
        assert sales_with_reference(tryton, expected["ref"]) == 1
    finally:
        bc.stop()


def test_a_polled_magento_order_becomes_one_confirmed_tryton_sale_to_the_cent(stack, tryton):
    import json
    from datetime import UTC, datetime

    from connector.base.clients import forget
    from connector.setup.config_io import load_config
    from connector.sync.reconcile import reconcile_orders
    from tests.fakes.magento import FakeMagento
    from tests.fakes.magento_orders import Line as MageLine
    from tests.storefronts import store_id

    mage = FakeMagento(start=datetime.now(UTC))
    try:
        store = {"slug": "mage-store", "platform": "magento", "base_url": mage.url, "access_token": mage.token}
        load_config(stack.rt, json.dumps({"stores": [store]}))
        forget()
        order = mage.add_order(
            [
                MageLine("MG-TEE", "20.00", qty=2, tax_rate="20", discount_percent="10"),
                MageLine("MG-MUG", "12.50", tax_rate="20"),
            ],
            shipping="5.00",
            shipping_tax_rate="20",
            coupon="SAVE10",
            email="Anna@Example.com",
            tax_title="FR TVA",
        )
        tryton.add_products(["MG-TEE", "MG-MUG"])
        for _ in range(2):  # polled twice: one event, one sale
            reconcile_orders(stack.rt, store_id(stack, "mage-store"))
            stack.run_jobs()
        expected = {
            "ref": f"magento:mage-store:{order['entity_id']}",
            "email": "anna@example.com",
            "currency": "EUR",
            "total": Decimal(str(order["base_grand_total"])),
            "tax": Decimal(str(order["base_tax_amount"])),
            "lines": [
                ("MG-TEE", Decimal(2), Decimal("18.0000"), Decimal("36.00"), ["FR TVA"]),
                ("MG-MUG", Decimal(1), Decimal("12.5000"), Decimal("12.50"), ["FR TVA"]),
                ("SHIPPING", Decimal(1), Decimal("5.00"), Decimal("5.00"), ["FR TVA"]),
            ],
        }
        assert expected["total"] == Decimal("64.20")  # 53.50 net + 10.70 VAT
        assert_confirmed_sale(tryton, expected)
        assert sales_with_reference(tryton, expected["ref"]) == 1
    finally:
        mage.stop()


def test_bigcommerce_and_magento_guests_with_prices_entered_with_tax_a_credit_memo_and_a_cancellation(stack, tryton):
    """Taxes included, guests, a refund and a cancellation, from both platforms that are not webhooks-and-
    signatures: Tryton holds each store's figures to the cent."""
    import json
    from datetime import UTC, datetime

    from connector.base.clients import forget
    from connector.setup.config_io import load_config
    from connector.sync.reconcile import reconcile_orders
    from platforms.bigcommerce.receiver import SECRET_HEADER
    from tests.fakes.bigcommerce import FakeBigCommerce
    from tests.fakes.bigcommerce import Line as BcLine
    from tests.fakes.magento import FakeMagento
    from tests.fakes.magento_orders import Line as MageLine
    from tests.storefronts import store_id

    bc, mage = FakeBigCommerce(), FakeMagento(start=datetime.now(UTC))
    try:
        stores = [
            {
                "slug": "bc-store",
                "platform": "bigcommerce",
                "store_hash": bc.store_hash,
                "api_url": bc.url,
                "access_token": bc.token,
                "webhook_secret": "s3cret",
            },
            {"slug": "mage-store", "platform": "magento", "base_url": mage.url, "access_token": mage.token},
        ]
        load_config(stack.rt, json.dumps({"stores": stores}))
        forget()
        tryton.add_products(["BC-SCARF", "MG-SCARF", "MG-HAT"])

        def post_bc(scope: str, oid: int) -> None:
            answer = stack.webhooks.post(
                "/webhooks/bigcommerce/bc-store",
                data=json.dumps(bc.thin(scope, oid)).encode(),
                headers={"Content-Type": "application/json", SECRET_HEADER: "s3cret"},
            )
            assert answer.status_code == 200
            stack._sent(answer)
            stack.run_jobs()

        def poll() -> None:
            reconcile_orders(stack.rt, store_id(stack, "mage-store"))
            stack.run_jobs()

        scarf = BcLine("BC-SCARF", 3, Decimal("24.00"), tax_rate=Decimal("20"))
        bc_oid = bc.add_order(
            [scarf],
            shipping=Decimal("6.00"),
            shipping_tax_rate=Decimal("20"),
            prices_include_tax=True,
            currency="EUR",
            tax_name="FR TVA",
        )
        post_bc("store/order/created", bc_oid)
        bc_ref = f"bigcommerce:bc-store:{bc_oid}"
        assert tryton.booked(bc_ref)["total"] == Decimal("78.00")  # 72.00 + 6.00, tax inside
        assert (
            tryton.booked(bc_ref)["tax_total"]
            == Decimal(bc.orders[bc_oid]["total_tax"]).quantize(CENT)
            == Decimal("13.00")
        )
        bc.touch(bc_oid, status_id=5)
        post_bc("store/order/statusUpdated", bc_oid)
        view = tryton.adapter().get_order(bc_ref)
        assert view is not None and view.status == "cancelled"

        order = mage.add_order(
            [MageLine("MG-SCARF", "24.00", qty=2, tax_rate="20"), MageLine("MG-HAT", "18.00", tax_rate="20")],
            shipping="6.00",
            shipping_tax_rate="20",
            prices_incl_tax=True,
            guest=True,
            email="guest@example.com",
            tax_title="FR TVA",
        )
        poll()
        mage_ref = f"magento:mage-store:{order['entity_id']}"
        assert tryton.booked(mage_ref)["total"] == Decimal(str(order["base_grand_total"])) == Decimal("72.00")
        assert tryton.booked(mage_ref)["tax_total"] == Decimal(str(order["base_tax_amount"]))
        hat = next(i for i in order["items"] if i["sku"] == "MG-HAT")
        memo = mage.add_creditmemo(order["entity_id"], {hat["item_id"]: 1})
        mage.tick()
        poll()
        poll()  # polled again: credited once
        refund_ref = f"{mage_ref}:refund:{memo['entity_id']}"
        assert tryton.credited(refund_ref)["total"] == Decimal(str(memo["base_grand_total"])) == Decimal("18.00")
        assert sales_with_reference(tryton, refund_ref) == 1
    finally:
        bc.stop()
        mage.stop()
