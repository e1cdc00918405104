"""A person in a real browser: an admin adds a store, an order fails on an unknown SKU, the admin maps the
SKU on /config, retries from /console and sees it succeed and audited; a support user cannot open /config.

Debian's Chromium under Playwright, the real app on a real port with the embedded queue thread running,
over SQLite with a SQL staging ERP whose item master (erp_products) refuses unknown SKUs.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert

from adapters.erp.sql_contract import erp_customers, erp_products
from connector.web.auth import add_user
from tests.browser.helpers import chromium_page, deliver_shopify_order, ensure_chromium, live_app, screenshot
from tests.conftest import FIXTURES
from tests.stack import SECRET, STORE
from tests.test_api import ADMIN, SUPPORT

pytestmark = pytest.mark.browser

SLUG = "browser-shop"
WEBHOOK_SECRET = "whsec_browser_test_5e6f7a8b9c"
ACCESS_TOKEN = "shpat_browser_test_0a1b2c3d4e"
UNKNOWN_SKU = "SOCK-MER-M-CHA"  # the fixture's first line
ERP_SKU = "ERP-SOCK-MERINO-M"


@pytest.fixture(scope="module")
def chromium() -> str:
    path, why = ensure_chromium()
    if path is None:
        pytest.skip(why)
    return path


def sign_in(page, base: str, who: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def nav(page, name: str):  # type: ignore[no-untyped-def]
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def wait_for_status(page, url: str, status: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    """Reload the event page until its heading shows `status` (the queue thread works in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if page.locator("h1 .status").inner_text().strip() == status:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} still {page.locator('h1 .status').inner_text()!r}, not {status!r}")
        time.sleep(0.2)


def test_admin_fixes_a_failed_order_from_the_browser(sqlite_stack, chromium, tmp_path, shop):
    stack = sqlite_stack
    add_user(stack.rt, *ADMIN, "admin")
    add_user(stack.rt, *SUPPORT, "support")
    with stack.erp_engine.begin() as conn:  # the ERP's item master: the fixture's first SKU is not in it
        conn.execute(
            insert(erp_products),
            [
                {"sku": "SHOE-TR2-42-SLT", "description": "Trail Runner 2"},
                {"sku": ERP_SKU, "description": "Merino crew sock M charcoal"},
            ],
        )
    body = (FIXTURES / "shopify" / "order_discount_multiline.json").read_bytes()
    shop.orders[json.loads(body)["id"]] = json.loads(body)  # its Admin API tells the paid order's transactions
    shop.token = ACCESS_TOKEN

    with live_app(stack) as base, chromium_page(tmp_path / "chromium-profile", chromium) as page:
        # The admin signs in and lands on /config, then adds a Shopify store.
        sign_in(page, base, ADMIN)
        assert page.url == f"{base}/config"
        assert page.title() == "Configuration · Storefront connector"
        page.get_by_role("link", name="Add a store").click()
        page.get_by_label("Short name").fill(SLUG)
        page.get_by_label("Platform").select_option("shopify")
        page.get_by_label("Shop domain").fill(f"{SLUG}.myshopify.com")
        page.get_by_label("Admin API address (optional)").fill(shop.url)
        page.get_by_label("Admin API access token").fill(ACCESS_TOKEN)
        page.get_by_label("Webhook signing secret").fill(WEBHOOK_SECRET)
        page.get_by_label("Safety stock (units)").fill("3")
        page.get_by_role("button", name="Add store").click()
        assert f"Store {SLUG} added" in page.locator(".flash.success").inner_text()
        assert ACCESS_TOKEN not in page.content() and WEBHOOK_SECRET not in page.content()
        assert "••••" + WEBHOOK_SECRET[-4:] in page.content()

        # Shopify delivers a signed orders/create for that store.
        deliver_shopify_order(base, SLUG, WEBHOOK_SECRET, body, "browser-ev-1")

        # The console shows it failed, naming the SKU.
        nav(page, "Events").click()
        page.get_by_label("Store").select_option(SLUG)
        page.get_by_role("button", name="Filter").click()
        link = page.get_by_role("link", name=re.compile(r"^#\d+$")).first
        event_url = base + link.get_attribute("href")
        wait_for_status(page, event_url, "failed")
        problem = page.locator(".card.problem").inner_text()
        assert f"unknown SKU {UNKNOWN_SKU}" in problem
        assert page.title().startswith("Event #")
        screenshot(page, "console-event-failed")

        # The admin maps the store SKU to the ERP's item on /config.
        nav(page, "Config").click()
        skus = page.locator("#skus")
        skus.get_by_label("Store SKU, row 1").fill(UNKNOWN_SKU)
        skus.get_by_label("ERP SKU (item code), row 1").fill(ERP_SKU)
        skus.get_by_role("button", name="Save SKU overrides").click()
        assert "SKU overrides saved (1 row)" in page.locator(".flash.success").inner_text()
        assert page.locator("#skus").get_by_label("ERP SKU (item code), row 1").input_value() == ERP_SKU
        screenshot(page, "config")

        # It retries from the console and sees the order reach the ERP.
        page.goto(event_url)
        page.get_by_role("button", name="Retry now").click()
        assert "back in the queue" in page.locator(".flash.success").inner_text()
        wait_for_status(page, event_url, "succeeded")
        erp_side = page.locator("section", has=page.get_by_role("heading", name="ERP side")).inner_text()
        assert "created" in erp_side
        assert ERP_SKU in page.locator("table.lines").inner_text()  # the canonical order carries the mapped SKU
        screenshot(page, "console-event-succeeded")
        orders = stack.erp_orders()
        assert [o.number for o in orders] == ["#1001"]
        assert {line.sku for line in stack.erp_lines(orders[0].external_ref)} >= {ERP_SKU, "SHOE-TR2-42-SLT"}

        # The retry is in the audit log, with who did it.
        nav(page, "Audit log").click()
        entries = page.locator("table.audit tbody tr")
        retry = entries.filter(has_text="event.retry").first.inner_text()
        assert ADMIN[0] in retry
        assert entries.filter(has_text="mapping.replace").count() == 1
        assert entries.filter(has_text="store.create").count() == 1
        screenshot(page, "console-audit")
        nav(page, "Dashboard").click()
        assert page.locator("svg.chart").count() == 1
        screenshot(page, "console")

        # A support user cannot open /config.
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, base, SUPPORT)
        assert page.url == f"{base}/console"
        assert nav(page, "Config").count() == 0
        refused = page.goto(f"{base}/config")
        assert refused is not None and refused.status == 403
        assert "admin role" in page.locator("main").inner_text()
        screenshot(page, "config-support-403")


def test_an_approver_approves_a_held_order_from_the_browser(sqlite_stack, chromium, tmp_path):
    """The admin sets a rule on /config; an order it catches waits; an approver approves it on the console."""
    stack = sqlite_stack
    approver = ("approver@example.com", "horse staple correct battery")
    add_user(stack.rt, *ADMIN, "admin")
    add_user(stack.rt, *approver, "approver")
    body = (FIXTURES / "shopify" / "order_discount_multiline.json").read_bytes()  # tagged wholesale

    with live_app(stack) as base, chromium_page(tmp_path / "chromium-profile", chromium) as page:
        sign_in(page, base, ADMIN)
        page.goto(f"{base}/config/stores/{STORE}")
        page.get_by_label("Order tags").fill("wholesale")
        page.get_by_label("Cash on delivery above").fill("not money")
        page.get_by_role("button", name="Save store").click()
        assert "amount such as 500" in page.locator("#approval .field-error").inner_text()  # refused, said where
        page.get_by_label("Cash on delivery above").fill("")
        page.get_by_role("button", name="Save store").click()
        saved(page)
        page.get_by_role("button", name="Sign out").click()

        deliver_shopify_order(base, STORE, SECRET, body, "browser-ev-2")

        sign_in(page, base, approver)
        assert nav(page, "Config").count() == 0
        deadline = time.monotonic() + 20
        while True:  # the queue thread holds it in the background
            page.goto(f"{base}/console/approvals")
            if page.locator("table.approvals tbody tr").count() == 1:
                break
            assert time.monotonic() < deadline, [(e.status, e.last_error, e.result) for e in stack.events()]
            time.sleep(0.2)
        row = page.locator("table.approvals tbody tr").first
        assert "#1001" in row.inner_text() and "tagged wholesale" in row.inner_text()
        screenshot(page, "console-approvals")
        row.get_by_role("button", name="Approve").click()
        assert "Approved" in page.locator(".flash.success").inner_text()
        deadline = time.monotonic() + 20
        while not stack.erp_orders() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [o.number for o in stack.erp_orders()] == ["#1001"]
        nav(page, "Audit log").click()
        entries = page.locator("table.audit tbody tr")
        assert approver[0] in entries.filter(has_text="order.approve").first.inner_text()
        assert entries.filter(has_text="order.held").count() == 1


def test_web_orders_are_credited_to_the_accounts_owner_and_summed_on_the_console(sqlite_stack, chromium, tmp_path):
    """The admin sets a split rule on /config; an order of an ERP account owned by REP-ANNA reaches the ERP
    with that owner and half the credit; support reads the totals by owner on the console's attribution page."""
    stack = sqlite_stack
    add_user(stack.rt, *ADMIN, "admin")
    add_user(stack.rt, *SUPPORT, "support")
    now = datetime.now(UTC)
    with stack.erp_engine.begin() as conn:  # the ERP's own account, owned by a sales rep
        conn.execute(
            insert(erp_customers).values(
                email="dana.whitfield@example.com", name="Dana Whitfield", external_ids="", owner="REP-ANNA",
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    body = (FIXTURES / "shopify" / "order_discount_multiline.json").read_bytes()  # 205.65 USD, placed 2026-11-20

    with live_app(stack) as base, chromium_page(tmp_path / "chromium-profile", chromium) as page:
        sign_in(page, base, ADMIN)
        page.goto(f"{base}/config/stores/{STORE}")
        page.get_by_label("Credit goes to").select_option("split")
        page.get_by_label("Owner's share of a split").fill("2")
        page.get_by_role("button", name="Save store").click()
        assert "less than 1" in page.locator("#attribution-rule .field-error").inner_text()  # refused, said where
        page.get_by_label("Owner's share of a split").fill("0.5")
        page.get_by_role("button", name="Save store").click()
        saved(page)
        page.get_by_role("button", name="Sign out").click()

        deliver_shopify_order(base, STORE, SECRET, body, "browser-ev-attr")
        deadline = time.monotonic() + 20
        while not stack.erp_orders() and time.monotonic() < deadline:  # the queue thread works in the background
            time.sleep(0.2)
        (row,) = stack.erp_orders()
        assert (row.channel, row.owner, row.owner_credit) == ("web", "REP-ANNA", Decimal("102.83"))

        sign_in(page, base, SUPPORT)
        nav(page, "Attribution").click()
        page.get_by_label("From", exact=True).fill("2026-11-01")
        page.get_by_label("To", exact=True).fill("2026-11-30")
        page.get_by_role("button", name="Show").click()
        owner = page.locator('table.attribution[data-currency="USD"] tbody tr[data-owner="REP-ANNA"]')
        assert owner.locator("td").all_inner_texts() == ["1", "205.65 USD", "102.83 USD", "102.82 USD", "split"]
        screenshot(page, "console-attribution")
        page.get_by_label("From", exact=True).fill("2026-12-01")
        page.get_by_label("To", exact=True).fill("2026-12-31")
        page.get_by_role("button", name="Show").click()
        assert "No web orders reached the ERP in this period" in page.locator("main").inner_text()

        (event,) = stack.events()
        page.goto(f"{base}/console/events/{event.id}")
        assert "attributed to owner REP-ANNA" in page.locator("main").inner_text()


def saved(page) -> None:  # type: ignore[no-untyped-def]
    """The page the save led to says it saved: waited for (a click returns before the next page has loaded)."""
    from playwright.sync_api import expect

    expect(page.locator(".flash.success")).to_have_count(1)
