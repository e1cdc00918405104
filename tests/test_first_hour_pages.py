"""The pages as a merchant and support staff first meet them: an error on the field that is wrong, said
their way; sign-ins audited, failed ones too; an audit log a person can read; counts in good English."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from connector.base.models import AuditEntry
from connector.orders.operations import skip_event
from tests.conftest import load_fixture
from tests.stack import STORE, WOO_STORE
from tests.test_api import ADMIN, csrf_of, sign_in
from tests.test_pages import field_error, form_post, html


def _audit(stack, action: str) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with stack.rt.sessions() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_an_over_long_guest_id_is_the_only_field_in_error_and_said_plainly(sqlite_stack):
    admin = sign_in(sqlite_stack)
    refused = form_post(
        admin,
        "/config/stores/new",
        {
            "slug": "shop-guest",
            "platform": "shopify",
            "shop_domain": "shop-guest.myshopify.com",
            "shopify-webhook_secret": "whsec_0123456789abcdef",
            "customer_policy": "guest_account",
            "guest_customer_id": "G" * 80,
        },
    )
    page = html(refused)
    assert refused.status_code == 400
    assert field_error(page, "guest_customer_id") == "at most 64 characters"
    assert field_error(page, "shop_domain") is None, "the filled, valid shop domain is not in error"
    assert "Longer than maximum length" not in page


def test_saving_a_store_unchanged_audits_no_change(sqlite_stack):
    admin = sign_in(sqlite_stack)
    page = html(admin.get(f"/config/stores/{STORE}"))
    assert "shop_domain" in page
    saved = form_post(
        admin,
        f"/config/stores/{STORE}",
        {"active": "on", "shop_domain": f"{STORE}.myshopify.com", "customer_policy": "match"},
    )
    assert saved.status_code == 302, html(saved)
    (entry,) = _audit(sqlite_stack, "store.update")
    assert "customer_policy" not in entry.detail["changed"]


def test_sign_ins_are_audited_and_a_wrong_password_keeps_the_email(sqlite_stack):
    sign_in(sqlite_stack)  # adds the admin and signs in once
    client = sqlite_stack.app.test_client()
    token = csrf_of(client)
    wrong = client.post("/login", data={"email": ADMIN[0], "password": "not it", "csrf_token": token})
    page = html(wrong)
    assert wrong.status_code == 401 and "Wrong email or password" in page
    assert f'value="{ADMIN[0]}"' in page  # typed once is enough
    client.post("/login", data={"email": "Nobody@Example.com ", "password": "guess", "csrf_token": token})
    failed = _audit(sqlite_stack, "login.failed")
    assert [(e.actor, e.detail["why"]) for e in failed] == [
        (ADMIN[0], "wrong password"),
        ("nobody@example.com", "no such user"),
    ]
    assert all("not it" not in str(e.detail) and "guess" not in str(e.detail) for e in failed)
    assert len(_audit(sqlite_stack, "login")) == 1


def test_the_audit_log_reads_as_text_and_counts_in_good_english(sqlite_stack):
    admin = sign_in(sqlite_stack)
    sqlite_stack.post_shopify({"id": 1, "line_items": [], "currency": "USD"})
    (event,) = sqlite_stack.events()
    assert skip_event(sqlite_stack.rt, event.id, "a <test> order & nothing more", ADMIN[0])
    page = html(admin.get("/console/audit"))
    assert "\\u003c" not in page and "&#34;" not in page  # no JSON escapes, no quoted JSON
    assert "<dt>reason</dt><dd>a &lt;test&gt; order &amp; nothing more</dd>" in page
    assert "2 entries · page" in page  # the sign-in and the skip
    listed = html(admin.get("/console/events"))
    assert "1 event · page" in listed and "1 events" not in listed


def test_the_favicon_is_served(sqlite_stack):
    client = sqlite_stack.app.test_client()
    moved = client.get("/favicon.ico")
    assert moved.status_code == 301
    icon = client.get(moved.headers["Location"])
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert 'rel="icon"' in html(client.get("/login"))


def test_merchant_pages_speak_the_merchants_words(sqlite_stack):
    admin = sign_in(sqlite_stack)
    new_store = html(admin.get("/config/stores/new"))
    assert "Short name" in new_store and ">Slug<" not in new_store
    assert "`slug` in a YAML config" in new_store  # the technical name, as a hint
    overview = html(admin.get("/config"))
    assert ">webhook_secret<" not in overview and "webhook secret" in overview
    sqlite_stack.post_shopify(load_fixture("shopify", "order_discount_multiline.json"))
    (event,) = sqlite_stack.events()
    preview = html(admin.get(f"/config/preview?event={event.id}"))
    assert "The order as the connector reads it" in preview and ">Canonical order<" not in preview
    assert "The order <code>erp_orders</code>" in preview


class _FormFields(HTMLParser):
    """What a browser posts for the page's store form as it stands: filled inputs, checked boxes and radios,
    each select's selected option (else its first), textareas; disabled fields and buttons post nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self._select: tuple[str, list[tuple[str, bool]]] | None = None
        self._textarea: str | None = None
        self._form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = a.get("method", "").lower() == "post" and "/test" not in a.get("action", "")
        if tag == "option" and self._select is not None:
            self._select[1].append((a.get("value", ""), "selected" in a))
        if not self._form or "name" not in a or "disabled" in a:
            return
        if tag == "input" and a.get("type", "text") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.pairs.append((a["name"], a.get("value", "on" if a.get("type") == "checkbox" else "")))
        elif tag == "select":
            self._select = (a["name"], [])
        elif tag == "textarea":
            self._textarea = a["name"]
            self.pairs.append((a["name"], ""))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            name, text = self.pairs[-1]
            self.pairs[-1] = (name, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = False
        elif tag == "select" and self._select is not None:
            name, options = self._select
            chosen = [value for value, selected in options if selected] or [value for value, _ in options[:1]]
            self.pairs.extend((name, value) for value in chosen)
            self._select = None
        elif tag == "textarea":
            self._textarea = None


@pytest.mark.parametrize("slug", [STORE, WOO_STORE])
def test_a_store_form_posted_as_shown_audits_no_change(sqlite_stack, slug):
    admin = sign_in(sqlite_stack)
    fields = _FormFields()
    fields.feed(html(admin.get(f"/config/stores/{slug}")))
    posted = [(name, value) for name, value in fields.pairs if name != "csrf_token"]
    assert any(name.endswith("shop_domain") or name.endswith("url") for name, _ in posted), posted
    saved = form_post(admin, f"/config/stores/{slug}", posted)
    assert saved.status_code == 302, html(saved)
    (entry,) = _audit(sqlite_stack, "store.update")
    assert entry.detail["changed"] == [], f"{entry.detail} {posted}"


def test_what_a_store_save_changed_is_told_apart_from_what_the_form_showed():
    from connector.base.runtime import StoreInfo
    from connector.web.views.forms import changed_settings

    woo = StoreInfo(id=1, slug="w", platform="woocommerce", active=True, settings={"url": "https://w.test"}, secrets={})
    shown = {"slug": "w", "platform": "woocommerce", "active": True, "url": "https://w.test"}
    assert changed_settings(woo, shown | {"attribution": "web", "restock_refunds": "never"}) == []
    # unticking every status is the platform's own set: the same as never having chosen
    assert changed_settings(woo, shown | {"import_statuses": ["completed", "processing", "on-hold"]}) == []
    assert changed_settings(woo, shown | {"import_statuses": ["completed"]}) == ["import_statuses"]
    assert changed_settings(woo, shown | {"attribution": "owner", "restock_refunds": "always"}) == [
        "attribution",
        "restock_refunds",
    ]
    chosen = dataclasses.replace(woo, settings=woo.settings | {"import_statuses": ["processing", "completed"]})
    assert changed_settings(chosen, shown | {"import_statuses": ["completed", "processing"]}) == []
    assert changed_settings(chosen, shown) == ["import_statuses"]
    assert changed_settings(woo, shown | {"active": False}) == ["active"]
