"""No card number or security code is ever stored, logged or reported (docs/security.md, "PCI scope").

The stores send none, but a person or a plugin can put one where free text goes: a checkout field
(Shopify `note_attributes`), a line item property, the order note, a gateway plugin's `meta_data`. Orders
carrying them go the whole way (webhook, reconciliation, a body that is no JSON, an ERP error quoting
one, a Sentry report), and then every column of every table of the connector's database and of the
ERP's, every log record at DEBUG and everything sent to Sentry is searched.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterator

import pytest
import sentry_sdk
from sqlalchemy import MetaData, create_engine

from adapters.erp import RetryableErpError
from connector.base.observability import setup_sentry
from connector.intake.inbox import CARD_DATA_HEADER
from connector.sync.reconcile import reconcile_orders
from mappings import cardnumbers
from tests.conftest import load_fixture
from tests.fakes.woocommerce import FakeWooCommerce
from tests.stack import WOO_STORE, Stack
from tests.storefronts import configure, store_id
from tests.test_observability import Capture

# Built at run time, like tests/attacks/test_leaks.py's secrets: Sentry sends source lines around each frame.
CARDS = {
    "visa": "4242 " + "4242 4242 4242",
    "mastercard": "5555" + "555555554444",
    "amex": "3782 " + "822463 10005",
    "discover": "6011-" + "1111-1111-1117",
    "visa again": "4000 0566 " + "5566 5556",
}
CVV = "73" + "19"  # one security code for all, so that a search for it means something
CVV_NEAR_A_NAME = re.compile(r"(?i)(cvv|cvc|security.?code)\W{0,20}(value\W{0,5})?" + CVV)


def shopify_order_with_card_data() -> dict:
    """A Shopify order (API 2026-01) whose checkout app wrote card details where free text goes, plus the
    masked card fields old API versions sent (kept: they are what Shopify shows anyone)."""
    order = copy.deepcopy(load_fixture("shopify", "order_guest.json"))
    order["note"] = f"Please charge my other card {CARDS['visa']}, exp 12/28, CVV {CVV}"
    order["note_attributes"] = [
        {"name": "Card number", "value": CARDS["mastercard"]},
        {"name": "CVV", "value": CVV},
        {"name": "Gift wrap", "value": "yes"},
    ]
    order["line_items"][0]["properties"] = [{"name": "Engraving", "value": f"card {CARDS['amex']}"}]
    order["payment_details"] = {
        "credit_card_bin": "424242",
        "avs_result_code": "Y",
        "cvv_result_code": "M",
        "credit_card_number": "•••• •••• •••• 4242",
        "credit_card_company": "Visa",
    }
    return order


def woo_order_with_card_data() -> dict:
    """A WooCommerce order whose careless gateway plugin keeps the card in the order's meta data."""
    order = copy.deepcopy(load_fixture("woocommerce", "order_processing_coupon.json"))
    order["customer_note"] = f"card {CARDS['discover']} please"
    order["meta_data"] += [
        {"id": 90401, "key": "_cc_number", "value": CARDS["visa again"].replace(" ", "")},
        {"id": 90402, "key": "_cc_cvc", "value": CVV, "display_key": "CVC", "display_value": CVV},
    ]
    return order


def leaks(text: str) -> list[str]:
    """What of the card data is in `text`: a number as written or as bare digits, a card-shaped number of
    any kind, the security code next to its name, or as a whole JSON value."""
    found = [name for name, card in CARDS.items() if card in text or re.sub(r"[ -]", "", card) in text]
    found += cardnumbers.find(text)
    if CVV_NEAR_A_NAME.search(text) or f'"{CVV}"' in text:
        found.append("security code")
    return found


def every_value(url: str) -> list[tuple[str, str]]:
    """(table.column, text) for every value of every table of a database: text, JSON and bytes alike."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    meta = MetaData()
    meta.reflect(engine)
    out = []
    try:
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(table.select()):
                    for column, value in row._mapping.items():
                        if isinstance(value, bytes | memoryview):
                            value = bytes(value).decode("utf-8", "replace")
                        elif isinstance(value, dict | list):
                            value = json.dumps(value, ensure_ascii=False)
                        if value is not None:
                            out.append((f"{table.name}.{column}", str(value)))
    finally:
        engine.dispose()
    return out


def erp_quoting_the_note_once(erp):  # type: ignore[no-untyped-def]
    """An ERP whose first refusal quotes a card number it holds itself (some echo whole records)."""
    real, calls = erp.push_order, []

    def push_order(order, *args):  # type: ignore[no-untyped-def]
        calls.append(order.external_ref)
        if len(calls) == 1:
            raise RetryableErpError(f"customer record locked (card on file {CARDS['visa again']}, CVC {CVV})")
        return real(order, *args)

    erp.push_order = push_order
    return erp


@pytest.fixture
def sentry() -> Iterator[Capture]:
    transport = Capture()
    yield transport
    sentry_sdk.init(dsn=None)


def test_card_data_is_never_stored_logged_or_reported(
    stack: Stack, woo: FakeWooCommerce, sentry: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert setup_sentry("https://public@127.0.0.1/1", stack.rt.known_secrets, transport=sentry)
    configure(stack, woo=woo)
    stack.wrap_erp(erp_quoting_the_note_once)

    # By webhook, from both platforms; the first ERP call fails, quoting a card, and is retried.
    shopify = shopify_order_with_card_data()
    assert stack.post_shopify(shopify).status_code == 200
    woo_order = woo_order_with_card_data()
    assert stack.post_woocommerce(woo_order, topic="order.created").status_code == 200
    # A signed body that is no JSON: refused with 400, kept for the console.
    assert stack.post_woocommerce(f"card={CARDS['mastercard']}&cvc={CVV}".encode()).status_code == 400
    # By reconciliation: an order no webhook brought.
    missed = woo.add_order(doc={**woo_order_with_card_data(), "id": 7702, "number": "7702"})
    assert reconcile_orders(stack.rt, store_id(stack, WOO_STORE))["new"] == 1
    stack.run_jobs(include_delayed=True)
    # What Sentry gets when a job fails (RQ's integration) and when an error is logged.
    try:
        raise RetryableErpError(f"ERP timeout saving note 'card {CARDS['amex']}'")
    except RetryableErpError:
        sentry_sdk.capture_exception()
    logging.getLogger("connector.orders.pipeline").error("the ERP said: card %s, CVV %s", CARDS["visa"], CVV)
    sentry_sdk.flush()

    # The orders went the whole way, with what they were sold as.
    refs = sorted(row.external_ref for row in stack.erp_orders())
    assert refs == sorted(
        [
            f"shopify:acme-us:{shopify['id']}",
            f"woocommerce:{WOO_STORE}:{woo_order['id']}",
            f"woocommerce:{WOO_STORE}:{missed}",
        ]
    )
    events = stack.events()
    assert [e.status for e in events] == ["succeeded", "succeeded", "failed", "succeeded"]
    assert any("card on file" in (a.error or "") for e in events for a in e.attempt_rows)  # the error is kept…
    # …and support can see where card data was masked, and why.
    marked = [e.headers.get(CARD_DATA_HEADER, "") for e in events]
    assert "note_attributes[0].value" in marked[0] and "note_attributes[1].value" in marked[0]
    assert "meta_data[6].value" in marked[1] and "meta_data[7].display_value" in marked[1]
    assert marked[2] == "masked before storing: body" and marked[3]
    stored = json.loads(events[0].body)
    assert stored["note"] == f"Please charge my other card •••• •••• •••• 4242, exp 12/28, CVV {'•' * 4}"
    assert stored["payment_details"] == shopify["payment_details"]  # Shopify's own masked number stays
    assert any("sent card data in note, note_attributes[0].value" in r.getMessage() for r in caplog.records)

    # Nowhere: the connector's database, the ERP's, the logs, Sentry.
    places = [
        *every_value(stack.rt.settings.database_url),
        *(("erp:" + where, text) for where, text in every_value(stack.erp_url)),
        *(("log", r.getMessage() + (r.exc_text or "")) for r in caplog.records),
        ("log text", caplog.text),
        *(("sentry", sent) for sent in sentry.sent),
    ]
    assert any(where == "inbox_events.body" for where, _ in places) and sentry.sent
    found = {where: leaks(text) for where, text in places if leaks(text)}
    assert found == {}
    report = "".join(sentry.sent)  # JSON: the mask's bullets are \u2022 there
    assert "ERP timeout saving note" in report and "the ERP said" in report and "\\u2022 4242, CVV" in report
