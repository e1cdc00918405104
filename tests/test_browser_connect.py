"""Connecting stores the way a merchant does it in 2026, in headless Chromium: the admin clicks connect on
/config, approves on the (fake) store's own page, lands back on /config with the store connected and its
webhooks registered, and a signed order from the store is processed into the ERP.

Both stores are fakes on real ports (tests/fakes); the connector runs on a real port with its queue
thread (tests/browser/helpers.live_app). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from connector.setup.shopify_connect import ALL_SCOPES
from connector.web.auth import add_user
from tests.browser.helpers import chromium_page, deliver_shopify_order, live_app, screenshot
from tests.conftest import load_fixture
from tests.test_api import ADMIN
from tests.test_browser import chromium, sign_in  # noqa: F401  (chromium: the module fixture)

pytestmark = pytest.mark.browser


def _wait_for_erp_orders(stack, count: int, timeout: float = 20) -> list:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while len(orders := stack.erp_orders()) < count:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the ERP has {len(orders)} order(s), not {count}: "
                f"{[(e.topic, e.status, e.last_error) for e in stack.events()]}"
            )
        time.sleep(0.2)
    return orders


def test_admin_connects_a_shopify_store_from_its_install_link(sqlite_stack, shop, chromium, tmp_path):  # noqa: F811
    stack = sqlite_stack
    add_user(stack.rt, *ADMIN, "admin")
    shop.loopback_http = True
    shop.oauth.scope = ",".join(ALL_SCOPES)  # the app was given every scope the connector asks for
    with live_app(stack) as base, chromium_page(tmp_path / "profile", chromium) as page:
        stack.rt.settings = stack.rt.settings.with_(public_base_url=base)
        sign_in(page, base, ADMIN)
        page.get_by_role("link", name="Connect a Shopify store").click()
        page.get_by_label("Short name").fill("browser-shopify")
        page.get_by_label("Shop address").fill(shop.shop_domain)
        page.get_by_label("Client ID").fill(shop.oauth.client_id)
        page.get_by_label("Client secret").fill(shop.oauth.client_secret)
        # The fake shop is not at its myshopify.com host: where its install page really is.
        page.locator("input[name=api_base_url]").evaluate("(el, url) => { el.value = url }", shop.url)
        screenshot(page, "connect-shopify-form")
        page.get_by_role("button", name="Continue to Shopify").click()

        assert page.url.startswith(f"{shop.url}/admin/oauth/authorize?")
        assert "read_orders" in page.locator("#scopes").inner_text()
        screenshot(page, "connect-shopify-approval")
        page.get_by_role("button", name="Install").click()

        page.wait_for_url(f"{base}/config/connect/shopify/callback?**")
        assert page.get_by_role("heading", level=1).inner_text() == "Store browser-shopify connected"
        facts = page.locator("dl.facts").inner_text()
        assert "registered" in facts and "none" in facts, facts  # webhooks registered, no scope missing
        screenshot(page, "connect-shopify-connected")
        assert {h["topic"] for h in shop.webhooks.values()} >= {"orders/create", "app/uninstalled"}
        assert all(h["address"] == f"{base}/webhooks/shopify/browser-shopify" for h in shop.webhooks.values())
        assert shop.oauth.client_secret not in page.content()

        body = json.dumps(load_fixture("shopify", "order_discount_multiline.json")).encode()
        deliver_shopify_order(base, "browser-shopify", shop.oauth.client_secret, body, "b-1", shop.shop_domain)
        (order,) = _wait_for_erp_orders(stack, 1)
        assert order.external_ref.startswith("shopify:browser-shopify:")

        page.goto(f"{base}/config")
        screenshot(page, "connect-shopify-config")
        assert "browser-shopify" in page.content()


def test_admin_connects_a_woocommerce_store_through_its_key_approval(sqlite_stack, woo, chromium, tmp_path):  # noqa: F811
    stack = sqlite_stack
    add_user(stack.rt, *ADMIN, "admin")
    with live_app(stack) as base, chromium_page(tmp_path / "profile", chromium) as page:
        stack.rt.settings = stack.rt.settings.with_(public_base_url=base)
        sign_in(page, base, ADMIN)
        page.get_by_role("link", name="Connect a WooCommerce store").click()
        page.get_by_label("Short name").fill("browser-woo")
        page.get_by_label("Store address").fill(woo.url)
        screenshot(page, "connect-woo-form")
        page.get_by_role("button", name="Connect a WooCommerce store").click()

        assert page.url.startswith(f"{woo.url}/wc-auth/v1/authorize?")
        screenshot(page, "connect-woo-approval")
        page.get_by_role("button", name="Approve").click()

        page.wait_for_url(f"{base}/config/connect/woocommerce/return?**")
        assert page.locator("#result-h").inner_text().startswith("Connected")
        screenshot(page, "connect-woo-connected")
        hooks = list(woo.webhooks.values())
        assert hooks and {h["delivery_url"] for h in hooks} == {f"{base}/webhooks/woocommerce/browser-woo"}

        (issued,) = [k for k in woo.keys if k != woo.consumer_key]
        assert issued not in page.content() and woo.keys[issued] not in page.content()
        oid = woo.add_order(doc=load_fixture("woocommerce", "order_processing_coupon.json"))
        changed = requests.put(
            f"{woo.url}/wp-json/wc/v3/orders/{oid}",
            json={"customer_note": "gift wrap"},
            auth=(issued, woo.keys[issued]),
            timeout=5,
        )
        assert changed.status_code == 200
        woo.wait_for_deliveries()
        assert [d["status"] for d in woo.deliveries] == [200]  # signed with the secret the connector set
        (order,) = _wait_for_erp_orders(stack, 1)
        assert order.external_ref.startswith("woocommerce:browser-woo:")
