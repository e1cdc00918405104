"""Support staff in a real browser: the console follows an event's status without a reload, and every
console and config page fits a phone (390 px) without sideways scrolling, long texts included.

Debian's Chromium under Playwright; the real app on a real port with the embedded queue thread running,
over SQLite with a SQL staging ERP whose item master refuses the fixture's first SKU until the test adds it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import insert

from adapters.erp.sql_contract import erp_products
from connector.orders import operations
from connector.web.auth import add_user
from tests.browser.helpers import chromium_page, deliver_shopify_order, live_app, screenshot
from tests.conftest import FIXTURES
from tests.stack import SECRET, STORE
from tests.test_api import ADMIN
from tests.test_browser import chromium, sign_in  # noqa: F401  # chromium: the module's fixture

pytestmark = pytest.mark.browser

BODY = (FIXTURES / "shopify" / "order_discount_multiline.json").read_bytes()
PHONE = {"width": 390, "height": 844}
LONG_REASON = "duplicate-of-the-test-order-placed-by-the-merchant-" * 9  # 459 characters, no space to wrap at


def _failed_event(stack, base: str) -> int:  # type: ignore[no-untyped-def]
    """An order that fails on an SKU the ERP's item master lacks (only the second line's SKU is in it)."""
    with stack.erp_engine.begin() as conn:
        conn.execute(insert(erp_products), [{"sku": "SHOE-TR2-42-SLT", "description": "Trail Runner 2"}])
    deliver_shopify_order(base, STORE, SECRET, BODY, f"live-{time.monotonic_ns()}")
    deadline = time.monotonic() + 20
    while True:
        events = stack.events()
        if events and events[-1].status == "failed":
            return events[-1].id
        assert time.monotonic() < deadline, [(e.status, e.last_error) for e in events]
        time.sleep(0.1)


def _add_missing_sku(stack) -> None:  # type: ignore[no-untyped-def]
    with stack.erp_engine.begin() as conn:
        conn.execute(insert(erp_products), [{"sku": "SOCK-MER-M-CHA", "description": "Merino crew sock M"}])


def _mark_page(page) -> None:  # type: ignore[no-untyped-def]
    """A mark that only a full reload or a navigation would remove."""
    page.evaluate("window.__stillTheSamePage = true")


def _same_page(page) -> bool:  # type: ignore[no-untyped-def]
    return page.evaluate("window.__stillTheSamePage === true")


@contextlib.contextmanager
def _admin_with_a_failed_event(stack, browser: str, tmp_path) -> Iterator[tuple[str, object, int]]:  # type: ignore[no-untyped-def]
    """The app served, an admin signed in in Chromium, and one failed order event: (base URL, page, its id)."""
    add_user(stack.rt, *ADMIN, "admin")
    with live_app(stack) as base, chromium_page(tmp_path / "profile", browser) as page:
        sign_in(page, base, ADMIN)
        yield base, page, _failed_event(stack, base)


def test_the_console_follows_a_retried_event_without_a_reload(sqlite_stack, chromium, tmp_path):  # noqa: F811
    stack = sqlite_stack
    with _admin_with_a_failed_event(stack, chromium, tmp_path) as (base, page, event_id):
        _add_missing_sku(stack)

        # The event page: Retry now, then the status turns succeeded on its own, details with it.
        page.goto(f"{base}/console/events/{event_id}")
        assert page.locator("h1 .status").inner_text() == "failed"
        page.get_by_role("button", name="Retry now").click()
        assert "back in the queue" in page.locator(".flash.success").inner_text()
        _mark_page(page)
        page.locator("h1 .status", has_text="succeeded").wait_for(timeout=15_000)
        assert _same_page(page)
        assert "created" in page.locator("section", has=page.get_by_role("heading", name="ERP side")).inner_text()
        assert "Retry now" not in page.locator("main").inner_text()

        # The list and the dashboard: a failure retried elsewhere (the API, another person) shows up.
        with stack.rt.sessions.begin() as session:  # fail it again, as a later event might
            session.get(operations.InboxEvent, event_id).status = "failed"
        page.goto(f"{base}/console/events")
        row = page.locator("table.events tbody tr", has_text=f"#{event_id}")
        assert row.locator(".status").inner_text() == "failed"
        _mark_page(page)
        assert operations.retry_events(stack.rt, [event_id]) == 1
        row.locator(".status", has_text="succeeded").wait_for(timeout=15_000)
        assert _same_page(page)

        with stack.rt.sessions.begin() as session:
            session.get(operations.InboxEvent, event_id).status = "failed"
        page.goto(f"{base}/console")
        failed = page.locator(".kpi-card", has_text="Failed").locator(".kpi")
        assert failed.inner_text() == "1"
        _mark_page(page)
        assert operations.retry_events(stack.rt, [event_id]) == 1
        page.locator(".kpi-card", has_text="Failed").locator(".kpi", has_text="0").wait_for(timeout=15_000)
        assert _same_page(page)


def _sideways(page) -> int:  # type: ignore[no-untyped-def]
    """How far the page scrolls sideways, in CSS pixels (0: it fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def test_console_and_config_fit_a_phone_and_long_texts_wrap(sqlite_stack, chromium, tmp_path):  # noqa: F811
    with _admin_with_a_failed_event(sqlite_stack, chromium, tmp_path) as (base, page, event_id):
        page.goto(f"{base}/console/events/{event_id}")
        page.get_by_label("Reason to skip").fill(LONG_REASON)
        page.get_by_role("button", name="Skip this event").click()
        assert page.locator("h1 .status").inner_text() == "skipped"
        pages = ["/console", "/console/events", f"/console/events/{event_id}", "/config", "/console/audit"]
        for path in pages:  # a desktop first: the long reason once widened it to 4,722 px
            page.goto(base + path)
            assert _sideways(page) == 0, f"{path} scrolls sideways on a desktop"
        page.set_viewport_size(PHONE)
        for path in pages:
            page.goto(base + path)
            assert _sideways(page) == 0, f"{path} scrolls {_sideways(page)} px sideways at 390 px"
            screenshot(page, "phone" + path.replace("/", "-").rstrip("-"))
        # The event list's date filters show a whole date and time, not a cut-off one.
        page.goto(f"{base}/console/events")
        for label in ("Received from (UTC)", "Received before (UTC)"):
            field = page.get_by_label(label)
            field.fill("2026-11-20T15:00")
            assert field.evaluate("e => e.getBoundingClientRect().width") >= 200, label


def test_the_erp_test_result_is_in_view_below_the_sticky_header(sqlite_stack, chromium, tmp_path):  # noqa: F811
    """Test connection lands on /config#erp: its answer is in the ERP card, on screen, heading not under the header."""
    add_user(sqlite_stack.rt, *ADMIN, "admin")
    with live_app(sqlite_stack) as base, chromium_page(tmp_path / "profile", chromium) as page:
        sign_in(page, base, ADMIN)
        for size in ({"width": 1280, "height": 900}, PHONE):
            page.set_viewport_size(size)
            page.goto(f"{base}/config")
            page.locator("#erp").get_by_role("button", name="Test connection").click()
            assert page.url.endswith("/config#erp")
            result = page.locator("#erp .flash")
            assert "ERP connection works" in result.inner_text()
            header = page.locator("header.top").bounding_box()
            heading = page.locator("#erp h2").bounding_box()
            box = result.bounding_box()
            assert header and heading and box
            assert heading["y"] >= header["y"] + header["height"], (size, heading, header)
            assert header["y"] + header["height"] <= box["y"] and box["y"] + box["height"] <= size["height"], (
                size,
                box,
            )
            assert page.locator("main > .flash").count() == 0  # not at the top of the page, out of view


def test_a_form_error_shows_on_its_own_field(sqlite_stack, chromium, tmp_path):  # noqa: F811
    """An over-long guest customer ID once also marked the valid, filled shop domain as required."""
    add_user(sqlite_stack.rt, *ADMIN, "admin")
    with live_app(sqlite_stack) as base, chromium_page(tmp_path / "profile", chromium) as page:
        sign_in(page, base, ADMIN)
        page.goto(f"{base}/config/stores/new")
        page.get_by_label("Short name").fill("guest-shop")
        page.get_by_label("Platform").select_option("shopify")
        page.get_by_label("Shop domain").fill("guest-shop.myshopify.com")
        page.get_by_label("Webhook signing secret").fill("whsec_0123456789abcdef")
        page.get_by_label("Customer policy").select_option("guest_account")
        page.get_by_label("Guest customer (ERP id, optional)").fill("G" * 80)
        page.get_by_role("button", name="Add store").click()
        guest = page.get_by_label("Guest customer (ERP id, optional)")
        assert guest.get_attribute("aria-invalid") == "true"
        note = page.locator("#" + (guest.get_attribute("aria-describedby") or "missing"))
        assert note.inner_text().lower().startswith("at most 64 characters")
        assert page.get_by_label("Shop domain").get_attribute("aria-invalid") != "true"
        assert page.locator(".field-error").count() == 1
        assert page.get_by_label("Shop domain").input_value() == "guest-shop.myshopify.com"
