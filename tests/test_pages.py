"""The two pages people use: /config (admins) and /console (support and admins), through Flask's test client."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, text
from werkzeug.datastructures import MultiDict

from adapters.erp.sql_contract import erp_products
from connector.base.models import AuditEntry, MappingEntry, Store
from connector.setup.config_io import load_config
from platforms.registry import platform as platform_of
from tests.conftest import load_fixture
from tests.stack import STORE, WOO_STORE, build_stack
from tests.test_api import SUPPORT, sign_in

ORDER = load_fixture("shopify", "order_discount_multiline.json")

ADMIN_PAGES = [
    "/config",
    "/config/stores/new",
    f"/config/stores/{STORE}",
    f"/config/stores/{WOO_STORE}",
    "/config/erp",
    "/config/preview",
]
CONSOLE_PAGES = [
    "/console",
    "/console/events",
    "/console/audit",
    "/console/events/retry?status=failed",
    "/console/attribution",
]


def html(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


def form_post(client, path: str, data: dict | list, **kwargs):  # type: ignore[no-untyped-def]
    """POST a form with the session's CSRF token (a list of pairs allows repeated names)."""
    form = MultiDict(data)
    form.add("csrf_token", client.csrf)
    return client.post(path, data=form, **kwargs)


def field_error(page: str, name: str) -> str | None:
    """The error shown next to the input named `name` (its aria-describedby note), if any."""
    tag = re.search(rf'<(?:input|select|textarea)[^>]*\bname="{re.escape(name)}"[^>]*>', page)
    if tag is None or 'aria-invalid="true"' not in tag.group(0):
        return None
    described = re.search(r'aria-describedby="([^"]+)"', tag.group(0))
    if described is None:
        return ""
    note = re.search(rf'id="{re.escape(described.group(1))}">([^<]*)<', page)
    return note.group(1) if note else ""


def store_count(stack) -> int:  # type: ignore[no-untyped-def]
    with stack.rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(Store))


def event_ids(stack) -> list[int]:  # type: ignore[no-untyped-def]
    return [e.id for e in stack.events()]


def audit_actions(stack) -> list[str]:  # type: ignore[no-untyped-def]
    with stack.rt.sessions() as s:
        return list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def with_item_master(stack, *skus: str) -> None:  # type: ignore[no-untyped-def]
    with stack.erp_engine.begin() as conn:
        conn.execute(insert(erp_products), [{"sku": sku, "description": sku} for sku in skus])


# ---- roles ------------------------------------------------------------------------------------


def test_each_page_renders_for_the_right_role(sqlite_stack):
    sqlite_stack.post_shopify(ORDER)
    sqlite_stack.run_jobs()
    event_id = event_ids(sqlite_stack)[0]
    admin = sign_in(sqlite_stack)
    for path in [*ADMIN_PAGES, *CONSOLE_PAGES, f"/console/events/{event_id}", f"/config/preview?event={event_id}"]:
        response = admin.get(path)
        assert response.status_code == 200, (path, html(response)[:500])
        assert "<title>" in html(response) and "Storefront connector</title>" in html(response)
    assert admin.get("/").headers["Location"].endswith("/config")

    support = sign_in(sqlite_stack, SUPPORT, "support")
    for path in [*CONSOLE_PAGES, f"/console/events/{event_id}"]:
        assert support.get(path).status_code == 200, path
    for path in ADMIN_PAGES:
        refused = support.get(path)
        assert refused.status_code == 403, path
        assert "admin role" in html(refused) and "<title>403" in html(refused)
    assert form_post(support, "/config/mappings/sku", {"source": "A", "target": "B"}).status_code == 403
    assert 'href="/config"' not in html(support.get("/console"))  # no link to a page they cannot open
    assert support.get("/").headers["Location"].endswith("/console")


def test_pages_need_signing_in(sqlite_stack):
    anonymous = sqlite_stack.app.test_client()
    for path in [*ADMIN_PAGES, *CONSOLE_PAGES]:
        response = anonymous.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_forms_without_the_csrf_token_are_refused(sqlite_stack):
    sqlite_stack.post_shopify(b"not json")
    event_id = event_ids(sqlite_stack)[0]
    admin = sign_in(sqlite_stack)
    new_store = {
        "slug": "no-token",
        "platform": "shopify",
        "shop_domain": "no-token.myshopify.com",
        "shopify-webhook_secret": "whsec_no_token_123456",
    }
    for path, data in [
        ("/config/stores/new", new_store),
        ("/config/mappings/sku", {"source": "A", "target": "B"}),
        (f"/console/events/{event_id}/retry", {}),
        (f"/console/events/{event_id}/skip", {"reason": "test"}),
        ("/console/events/retry", {"status": "failed", "expected_count": "1"}),
        ("/config/erp/test", {}),
    ]:
        for token in (None, "forged"):
            response = admin.post(path, data={**data, **({"csrf_token": token} if token else {})})
            assert response.status_code == 403, (path, token)
            assert "CSRF" in html(response)
    assert store_count(sqlite_stack) == 2
    assert sqlite_stack.events()[0].status == "failed"
    with sqlite_stack.rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(MappingEntry)) == 0


# ---- stores -----------------------------------------------------------------------------------


def test_adding_a_store_with_bad_input_shows_field_errors_and_writes_nothing(sqlite_stack):
    admin = sign_in(sqlite_stack)
    before = audit_actions(sqlite_stack)
    response = form_post(
        admin,
        "/config/stores/new",
        {
            "slug": "Bad Slug!",
            "platform": "shopify",
            "shop_domain": "https://nope",
            "api_version": "latest",
            "api_base_url": "ftp://x",
            "inventory_interval_minutes": "abc",
            "safety_stock": "-1",
            "allocation_share": "1.5",
            "customer_policy": "match",
            "shopify-access_token": "shpat_typed_but_refused_0001",
        },
    )
    page = html(response)
    assert response.status_code == 400
    for name in (
        "slug",
        "shop_domain",
        "api_version",
        "api_base_url",
        "inventory_interval_minutes",
        "safety_stock",
        "allocation_share",
    ):
        assert field_error(page, name), name
    assert "lower-case letters" in field_error(page, "slug")
    assert "more than 0 and at most 1" in field_error(page, "allocation_share")
    assert "required" in field_error(page, "shopify-webhook_secret")
    assert "shpat_typed_but_refused_0001" not in page  # a secret is never sent back, even one just typed
    assert 'value="Bad Slug!"' in page  # the rest of the form comes back as typed
    assert store_count(sqlite_stack) == 2
    assert audit_actions(sqlite_stack) == before

    woo = form_post(
        admin,
        "/config/stores/new",
        {
            "slug": "shop-eu",
            "platform": "woocommerce",
            "url": "shop.eu",
            "customer_policy": "sometimes",
            "import_statuses-woocommerce": ["processing", "shipped"],
        },
    )
    page = html(woo)
    assert woo.status_code == 400
    assert "http://" in field_error(page, "url")
    assert field_error(page, "customer_policy")
    assert "shipped" in page and "not a WooCommerce status" in page
    taken = form_post(
        admin,
        "/config/stores/new",
        {
            "slug": STORE,
            "platform": "shopify",
            "shop_domain": "x.myshopify.com",
            "shopify-webhook_secret": "whsec_0123456789abcdef",
        },
    )
    assert taken.status_code == 400 and "exists already" in field_error(html(taken), "slug")
    assert store_count(sqlite_stack) == 2


def test_a_valid_store_is_added_with_its_secrets_sealed(sqlite_stack):
    admin = sign_in(sqlite_stack)
    token, webhook_secret = "shpat_pages_token_9f8e7d6c5b4a", "whsec_pages_secret_1a2b3c4d"
    response = form_post(
        admin,
        "/config/stores/new",
        [
            ("slug", "acme-ca"),
            ("platform", "shopify"),
            ("active", "on"),
            ("shop_domain", "acme-ca.myshopify.com"),
            ("api_version", "2026-01"),
            ("shopify-access_token", token),
            ("shopify-webhook_secret", webhook_secret),
            ("inventory_interval_minutes", "15"),
            ("safety_stock", "2"),
            ("allocation_share", "0.4"),
            ("import_statuses-shopify", "paid"),
            ("import_statuses-shopify", "authorized"),
            ("customer_policy", "guest_account"),
            ("guest_customer_id", "C000042"),
        ],
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/config/stores/acme-ca")
    with sqlite_stack.rt.engine.connect() as conn:
        raw = conn.execute(text("SELECT settings, secrets FROM stores WHERE slug = 'acme-ca'")).one()
    assert token not in raw.secrets and webhook_secret not in raw.secrets and token not in str(raw.settings)
    with sqlite_stack.rt.sessions() as s:
        info = sqlite_stack.rt.store_info(s.scalars(select(Store).where(Store.slug == "acme-ca")).one())
    assert info.secrets == {"access_token": token, "webhook_secret": webhook_secret}
    assert info.settings == {
        "shop_domain": "acme-ca.myshopify.com",
        "api_version": "2026-01",
        "inventory_interval_minutes": 15,
        "safety_stock": 2,
        "allocation_share": 0.4,
        "import_statuses": ["paid", "authorized"],
        "customer_policy": "guest_account",
        "guest_customer_id": "C000042",
    }
    assert "store.create" in audit_actions(sqlite_stack)

    pages = [admin.get(p) for p in ("/config", "/config/stores/acme-ca", "/api/v1/config", "/console/audit")]
    for page in pages:
        assert token not in html(page) and webhook_secret not in html(page)
    assert "••••4a" not in html(pages[0]) and "••••5b4a" in html(pages[0])  # masked: the last four only
    assert "guest_account" in html(pages[1]) and 'value="0.4"' in html(pages[1])

    # The sealed secret is the one the receiver checks.
    sqlite_stack.post_shopify(ORDER, store="acme-ca", secret=webhook_secret)
    assert sqlite_stack.events()[-1].status == "pending"

    # Editing without typing the secrets keeps them; typing one replaces it.
    edit = form_post(
        admin,
        "/config/stores/acme-ca",
        {
            "shop_domain": "acme-ca.myshopify.com",
            "api_version": "2026-01",
            "safety_stock": "5",
            "customer_policy": "match",
            "shopify-access_token": "shpat_rotated_token_000111",
        },
    )
    assert edit.status_code == 302
    with sqlite_stack.rt.sessions() as s:
        info = sqlite_stack.rt.store_info(s.scalars(select(Store).where(Store.slug == "acme-ca")).one())
    assert info.secrets == {"access_token": "shpat_rotated_token_000111", "webhook_secret": webhook_secret}
    assert info.settings["safety_stock"] == 5 and "allocation_share" not in info.settings
    assert info.active is False  # the box was left unticked


def test_sync_rules_of_a_woocommerce_store(sqlite_stack):
    admin = sign_in(sqlite_stack)
    response = form_post(
        admin,
        f"/config/stores/{WOO_STORE}",
        [
            ("active", "on"),
            ("url", "https://shop.acme.test"),
            ("inventory_interval_minutes", "30"),
            ("allocation_share", "1"),
            ("import_statuses-woocommerce", "processing"),
            ("import_statuses-woocommerce", "completed"),
            ("customer_policy", "always_new"),
            ("woocommerce-restock_refunds", "always"),
        ],
    )
    assert response.status_code == 302
    with sqlite_stack.rt.sessions() as s:
        store = s.scalars(select(Store).where(Store.slug == WOO_STORE)).one()
        secrets = sqlite_stack.rt.box.open(store.secrets)
    assert store.settings == {
        "url": "https://shop.acme.test",
        "inventory_interval_minutes": 30,
        "allocation_share": 1.0,
        "import_statuses": ["processing", "completed"],
        "customer_policy": "always_new",
        "restock_refunds": "always",
    }
    assert set(secrets) == {"consumer_key", "consumer_secret", "webhook_secret"}  # all kept
    overview = html(admin.get("/config"))
    assert "processing, completed" in overview and "always_new" in overview and "100%" in overview
    assert "Refunds restock" in overview
    refused = form_post(
        admin,
        f"/config/stores/{WOO_STORE}",
        [("active", "on"), ("url", "https://shop.acme.test"), ("woocommerce-restock_refunds", "sometimes")],
    )
    assert refused.status_code == 400 and field_error(html(refused), "woocommerce-restock_refunds")


def test_shares_over_one_are_refused_on_the_store_form_and_stock_rules_are_audited(sqlite_stack):
    admin = sign_in(sqlite_stack)
    woo = [("active", "on"), ("url", "https://shop.acme.test"), ("allocation_share", "0.5")]
    assert form_post(admin, f"/config/stores/{WOO_STORE}", woo).status_code == 302
    shop = [
        ("active", "on"),
        ("shop_domain", "acme-us.myshopify.com"),
        ("api_version", "2026-01"),
        ("allocation_share", "0.6"),
        ("stock_priority", "1"),
    ]
    before = audit_actions(sqlite_stack)
    refused = form_post(admin, f"/config/stores/{STORE}", shop)
    assert refused.status_code == 400
    assert field_error(html(refused), "allocation_share").startswith(
        f"allocation_share of {WOO_STORE} (0.5), {STORE} (0.6) adds up to 1.1 for every warehouse"
    )
    assert audit_actions(sqlite_stack) == before
    with sqlite_stack.rt.sessions() as s:
        assert "allocation_share" not in s.scalars(select(Store.settings).where(Store.slug == STORE)).one()

    bad = form_post(admin, f"/config/stores/{STORE}", [*shop[:3], ("stock_priority", "first")])
    assert bad.status_code == 400 and field_error(html(bad), "stock_priority") == "a whole number (lower goes first)"

    saved = form_post(
        admin, f"/config/stores/{STORE}", [*shop[:3], ("allocation_share", "0.5"), ("stock_priority", "1")]
    )
    assert saved.status_code == 302
    with sqlite_stack.rt.sessions() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (entry.action, entry.actor, entry.target) == ("store.update", "admin@example.com", STORE)
    assert entry.detail["stock"] == {"allocation_share": [None, 0.5], "stock_priority": [None, 1]}
    page = html(admin.get("/config"))
    assert "Stock priority" in page and 'id="stock-priority"' in page

    # Offline's rank is the ERP's; and a per-SKU order, edited like every mapping table.
    erp = form_post(admin, "/config/erp", {"kind": "sql", "offline_stock_priority": "0"})
    assert erp.status_code == 302
    with sqlite_stack.rt.sessions() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry.action == "erp.update" and entry.detail["stock"] == {"offline_stock_priority": [None, 0]}
    assert sqlite_stack.rt.erp().test_connection()  # the stored url was kept
    wrong = form_post(admin, "/config/mappings/stock_priority", {"source": "KRT", "target": "offline, nobody"})
    assert wrong.status_code == 400 and "no store &#39;nobody&#39;" in html(wrong)
    order = form_post(admin, "/config/mappings/stock_priority", {"source": "KRT", "target": f"offline, {STORE}"})
    assert order.status_code == 302 and order.headers["Location"].endswith("#stock-priority")

    # The JSON API is refused the same: 0.5 + 0.6 once the WooCommerce store's share is raised.
    headers = {"X-CSRF-Token": admin.csrf}
    doc = (
        f"stores: [{{slug: {WOO_STORE}, platform: woocommerce, url: 'https://shop.acme.test', webhook_secret: '••••',"
        " allocation_share: 0.6}]"
    )
    refused = admin.put("/api/v1/config", json={"yaml": doc}, headers=headers)
    assert refused.status_code == 400 and "adds up to 1.1 for every warehouse" in refused.json["message"]
    answer = admin.put(
        "/api/v1/mappings/stock_priority",
        json={"rows": [{"store": STORE, "source": "KRT", "target": "offline"}]},
        headers=headers,
    )
    assert answer.status_code == 400 and "leave the store empty" in str(answer.json["errors"])


def test_the_erp_connection_is_edited_and_tested(sqlite_stack):
    admin = sign_in(sqlite_stack)
    bad = form_post(
        admin,
        "/config/erp",
        {
            "kind": "rest",
            "rest-base_url": "erp.example.com",
            "rest-auth_type": "bearer",
            "rest-timeout_seconds": "soon",
        },
    )
    page = html(bad)
    assert bad.status_code == 400
    assert "http://" in field_error(page, "rest-base_url")
    assert field_error(page, "rest-timeout_seconds") == "a number"
    assert "required for bearer" in field_error(page, "rest-token")
    assert sqlite_stack.rt.erp().kind == "sql"  # nothing written

    tested = admin.post("/config/erp/test", data={"csrf_token": admin.csrf}, follow_redirects=True)
    page = html(tested)
    assert "ERP connection works" in page
    assert sqlite_stack.erp_url not in page  # the url is a secret: the message shows it masked
    saved = form_post(admin, "/config/erp", {"kind": "sql", "sql-lock_timeout_seconds": "0.5"})
    assert saved.status_code == 302
    assert sqlite_stack.rt.erp().test_connection()  # the stored url was kept
    assert "erp.update" in audit_actions(sqlite_stack) and "erp.test" in audit_actions(sqlite_stack)


# ---- store admin: test connection, register webhooks, health ------------------------------------


BASE = "https://connector.example.test"


def test_test_connection_and_webhook_registration_against_the_stores(sqlite_stack):
    from tests.fakes.shopify import FakeShopify
    from tests.fakes.woocommerce import FakeWooCommerce

    sqlite_stack.rt.settings = sqlite_stack.rt.settings.with_(public_base_url=BASE)  # Shopify wants https
    shop = FakeShopify(token="shpat_fake_token_0123456789")
    woo = FakeWooCommerce("ck_fake_0123456789", "cs_fake_0123456789")
    try:
        load_config(
            sqlite_stack.rt,
            json.dumps(
                {
                    "stores": [
                        {
                            "slug": "fake-shop",
                            "platform": "shopify",
                            "shop_domain": shop.shop_domain,
                            "api_base_url": shop.url,
                            "api_version": "2026-01",
                            "access_token": shop.token,
                            "webhook_secret": "whsec_fake_0123456789",
                        },
                        {
                            "slug": "fake-woo",
                            "platform": "woocommerce",
                            "url": woo.url,
                            "consumer_key": woo.consumer_key,
                            "consumer_secret": woo.consumer_secret,
                            "webhook_secret": "woo_fake_secret_0123456789",
                        },
                    ]
                }
            ),
        )
        admin = sign_in(sqlite_stack)
        for slug in ("fake-shop", "fake-woo"):
            done = admin.post(f"/config/stores/{slug}/test", data={"csrf_token": admin.csrf}, follow_redirects=True)
            assert "Connected to" in html(done), html(done)
            before = html(admin.get(f"/config/stores/{slug}/webhooks"))
            platform = "shopify" if slug == "fake-shop" else "woocommerce"
            assert before.count(">missing<") == len(platform_of(platform).subscriptions.topics)
            registered = admin.post(
                f"/config/stores/{slug}/webhooks", data={"csrf_token": admin.csrf}, follow_redirects=True
            )
            page = html(registered)
            assert "created" in page and ">missing<" not in page and "all subscribed" in page, page
            again = admin.post(
                f"/config/stores/{slug}/webhooks", data={"csrf_token": admin.csrf}, follow_redirects=True
            )
            assert "already there" in html(again)
        assert {h["address"] for h in shop.webhooks.values()} == {f"{BASE}/webhooks/shopify/fake-shop"}
        assert sorted(h["topic"] for h in shop.webhooks.values()) == sorted(platform_of("shopify").subscriptions.topics)
        assert {h["delivery_url"] for h in woo.webhooks.values()} == {f"{BASE}/webhooks/woocommerce/fake-woo"}
        assert sorted(h["topic"] for h in woo.webhooks.values()) == sorted(
            platform_of("woocommerce").subscriptions.topics
        )
        assert {h["secret"] for h in woo.webhooks.values()} == {"woo_fake_secret_0123456789"}

        # Health shows the last delivery we saw per topic.
        sqlite_stack.post_shopify(ORDER, store="fake-shop", secret="whsec_fake_0123456789")
        health = html(admin.get("/config/stores/fake-shop/webhooks"))
        assert health.count("UTC") >= 1 and "never" in health  # orders/create seen, the others not yet

        # A refusal of the store is shown as its message.
        load_config(
            sqlite_stack.rt,
            json.dumps(
                {
                    "stores": [
                        {
                            "slug": "fake-shop",
                            "platform": "shopify",
                            "shop_domain": shop.shop_domain,
                            "api_base_url": shop.url,
                            "access_token": "shpat_wrong_token_999999",
                            "webhook_secret": "whsec_fake_0123456789",
                        }
                    ]
                }
            ),
        )
        refused = html(
            admin.post("/config/stores/fake-shop/test", data={"csrf_token": admin.csrf}, follow_redirects=True)
        )
        assert "Connection test failed" in refused and "shpat_wrong_token_999999" not in refused
    finally:
        shop.stop()
        woo.stop()


# ---- mapping tables ---------------------------------------------------------------------------


def test_mapping_tables_are_edited_row_by_row(sqlite_stack):
    admin = sign_in(sqlite_stack)
    saved = form_post(
        admin,
        "/config/mappings/sku",
        [
            ("store", ""),
            ("source", "SOCK-MER-M-CHA"),
            ("target", "ERP-SOCK-1"),
            ("store", STORE),
            ("source", "SHOE-TR2-42-SLT"),
            ("target", "ERP-SHOE-42"),
            ("store", ""),
            ("source", ""),
            ("target", ""),
        ],
    )
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/config#skus")
    assert admin.get("/api/v1/mappings/sku").json["rows"] == [
        {"store": STORE, "source": "SHOE-TR2-42-SLT", "target": "ERP-SHOE-42"},
        {"store": None, "source": "SOCK-MER-M-CHA", "target": "ERP-SOCK-1"},
    ]
    page = html(admin.get("/config"))
    assert 'value="ERP-SOCK-1"' in page and 'id="skus"' in page

    refused = form_post(
        admin,
        "/config/mappings/sku",
        [
            ("store", ""),
            ("source", "SOCK-MER-M-CHA"),
            ("target", ""),
            ("store", ""),
            ("source", "A"),
            ("target", "B"),
            ("store", ""),
            ("source", "A"),
            ("target", "C"),
        ],
    )
    page = html(refused)
    assert refused.status_code == 400 and "nothing saved" in page
    assert ">required<" in page and "mapped twice" in page
    assert len(admin.get("/api/v1/mappings/sku").json["rows"]) == 2  # unchanged

    removed = form_post(
        admin,
        "/config/mappings/sku",
        [
            ("store", ""),
            ("source", "SOCK-MER-M-CHA"),
            ("target", "ERP-SOCK-1"),
            ("remove", "0"),
            ("store", STORE),
            ("source", "SHOE-TR2-42-SLT"),
            ("target", "ERP-SHOE-42"),
        ],
    )
    assert removed.status_code == 302
    assert [r["source"] for r in admin.get("/api/v1/mappings/sku").json["rows"]] == ["SHOE-TR2-42-SLT"]
    cod = form_post(admin, "/config/mappings/payment_method", {"source": "cod", "target": "CASH-ON-DELIVERY"})
    assert cod.status_code == 302 and cod.headers["Location"].endswith("#payment-methods")
    assert audit_actions(sqlite_stack).count("mapping.replace") == 3


def test_the_preview_shows_canonical_and_erp_rows_and_writes_nothing(sqlite_stack):
    admin = sign_in(sqlite_stack)
    form_post(admin, "/config/mappings/sku", {"source": "SOCK-MER-M-CHA", "target": "ERP-SOCK-1"})
    audits = audit_actions(sqlite_stack)
    response = form_post(admin, "/config/preview", {"store": STORE, "payload": json.dumps(ORDER)})
    page = html(response)
    assert response.status_code == 200
    assert "#1001" in page and "205.65 USD" in page and "Merino Crew Sock" in page  # canonical order
    assert "erp_orders" in page and "erp_order_lines" in page and "ERP-SOCK-1" in page  # ERP rows, mapped SKU
    assert "SHOE-TR2-42-SLT" in page
    assert sqlite_stack.erp_orders() == [] and sqlite_stack.events() == []
    assert audit_actions(sqlite_stack) == audits

    not_json = form_post(admin, "/config/preview", {"store": STORE, "payload": "{nope"})
    assert not_json.status_code == 400 and "not valid JSON" in field_error(html(not_json), "payload")
    unmappable = form_post(admin, "/config/preview", {"store": STORE, "payload": json.dumps({"id": 1})})
    assert unmappable.status_code == 200 and "does not map" in html(unmappable)

    sqlite_stack.post_shopify(ORDER)
    event_id = event_ids(sqlite_stack)[0]
    stored = admin.get(f"/config/preview?event={event_id}")
    assert stored.status_code == 200 and f"event {event_id}" in html(stored) and "ERP-SOCK-1" in html(stored)
    assert sqlite_stack.erp_orders() == [] and sqlite_stack.events()[0].status == "pending"


# ---- console ----------------------------------------------------------------------------------


def _order(number: int) -> dict:
    return {**ORDER, "id": 6000000000000 + number, "name": f"#{number}", "order_number": number}


def test_console_filters_and_pages_the_events(sqlite_stack):
    for number in range(2001, 2004):
        sqlite_stack.post_shopify(_order(number))
    sqlite_stack.run_jobs()
    for i in range(24):
        sqlite_stack.post_shopify(b"not json " + str(i).encode(), topic="orders/updated")
    sqlite_stack.post_woocommerce(b"not json either")
    support = sign_in(sqlite_stack, SUPPORT, "support")

    everything = html(support.get("/console/events?per_page=25"))
    assert "28 events" in everything and "page 1 of 2" in everything and everything.count('class="status ') == 25
    second = html(support.get("/console/events?per_page=25&page=2"))
    assert "page 2 of 2" in second and second.count('class="status ') == 3 and "#2001" in second

    assert "3 events" in html(support.get("/console/events?status=succeeded"))
    by_order = html(support.get("/console/events?order=%232002"))
    assert "1 event " in by_order and "#2002" in by_order
    assert "1 event " in html(support.get(f"/console/events?store={WOO_STORE}"))
    assert "24 events" in html(support.get("/console/events?topic=orders/updated&status=failed"))
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert "0 events" in html(support.get(f"/console/events?since={later}"))
    assert "28 events" in html(support.get(f"/console/events?until={later}"))
    bad = support.get("/console/events?since=yesterday")
    assert bad.status_code == 400 and "a date and time" in html(bad)

    dashboard = html(support.get("/console"))
    assert "<svg" in dashboard and "processed" in dashboard and "Latest failures" in dashboard
    assert re.search(r"3 processed and 0 failed|3 processed and \d+ failed", dashboard)


def test_the_event_page_tells_the_whole_story(sqlite_stack):
    with_item_master(sqlite_stack, "SHOE-TR2-42-SLT")
    sqlite_stack.post_shopify(ORDER)
    sqlite_stack.run_jobs()
    sqlite_stack.post_shopify({**ORDER, "updated_at": "2026-11-20T16:00:00Z"}, topic="orders/updated")
    sqlite_stack.run_jobs()
    first = event_ids(sqlite_stack)[0]
    support = sign_in(sqlite_stack, SUPPORT, "support")
    page = html(support.get(f"/console/events/{first}"))
    assert "unknown SKU SOCK-MER-M-CHA" in page  # why it failed
    assert "&#34;line_items&#34;: [" in page or '"line_items": [' in page  # pretty-printed payload
    assert "This is what the payload maps to now" in page and "Merino Crew Sock" in page  # canonical order
    assert "The order&#39;s timeline" in page or "The order's timeline" in page
    assert f'href="/console/events/{first + 1}"' in page  # the other event of the order
    assert "Retry now" in page and "Skip this event" in page
    assert support.get("/console/events/999999").status_code == 404

    with sqlite_stack.erp_engine.begin() as conn:
        conn.execute(erp_products.delete())
    support.post(f"/console/events/{first}/retry", data={"csrf_token": support.csrf})
    sqlite_stack.run_jobs()
    done = html(support.get(f"/console/events/{first}"))
    assert "succeeded" in done and "ERP reference" in done and "created" in done
    assert "Attempts" in done and done.count('class="status failed"') >= 1  # the first attempt stays listed
    assert sqlite_stack.erp_orders()[0].number == "#1001"


def test_the_event_page_shows_tips_duties_and_the_buyers_currency_apart(sqlite_stack):
    sqlite_stack.post_shopify(load_fixture("shopify", "order_duties.json"))
    sqlite_stack.post_shopify(load_fixture("shopify", "order_tip.json"))
    sqlite_stack.run_jobs()
    duties, tip = event_ids(sqlite_stack)
    support = sign_in(sqlite_stack, SUPPORT, "support")
    page = html(support.get(f"/console/events/{duties}"))
    assert "Duty: Lambswool Scarf (HS 611710, origin GB)" in page and "10.80 GBP" in page
    assert "Paid by the buyer in CAD" in page and "248.89 CAD" in page
    page = html(support.get(f"/console/events/{tip}"))
    assert ">Tip</th>" in page and "7.35 USD" in page and "Paid by the buyer in" not in page


def test_skip_needs_a_reason(sqlite_stack):
    sqlite_stack.post_shopify(b"not json")
    event_id = event_ids(sqlite_stack)[0]
    support = sign_in(sqlite_stack, SUPPORT, "support")
    refused = form_post(support, f"/console/events/{event_id}/skip", {"reason": "   "})
    assert refused.status_code == 400 and "say why" in field_error(html(refused), "reason")
    assert sqlite_stack.events()[0].status == "failed"
    skipped = form_post(support, f"/console/events/{event_id}/skip", {"reason": "a test order"})
    assert skipped.status_code == 302
    assert "skipped" in html(support.get(skipped.headers["Location"]))
    assert sqlite_stack.events()[0].status == "skipped"
    assert "event.skip" in audit_actions(sqlite_stack)
    log = html(support.get("/console/audit"))
    assert "a test order" in log and SUPPORT[0] in log


def test_bulk_retry_asks_for_the_count_and_refuses_a_changed_one(sqlite_stack):
    sqlite_stack.post_shopify(b"broken 1")
    sqlite_stack.post_shopify(b"broken 2")
    support = sign_in(sqlite_stack, SUPPORT, "support")
    confirm = html(support.get("/console/events/retry?status=failed"))
    assert 'name="expected_count" value="2"' in confirm and "Yes, retry 2 events" in confirm

    sqlite_stack.post_shopify(b"broken 3")  # a third failure arrives while the person reads
    changed = form_post(support, "/console/events/retry", {"status": "failed", "expected_count": "2"})
    assert changed.status_code == 409
    assert "now matches 3" in html(changed) and 'name="expected_count" value="3"' in html(changed)
    assert {e.status for e in sqlite_stack.events()} == {"failed"}
    assert "event.retry" not in audit_actions(sqlite_stack)

    done = form_post(support, "/console/events/retry", {"status": "failed", "expected_count": "3"})
    assert done.status_code == 302
    assert "Retrying 3 events" in html(support.get(done.headers["Location"]))
    assert {e.status for e in sqlite_stack.events()} == {"pending"}
    assert audit_actions(sqlite_stack).count("event.retry") == 1


# ---- no secret leaks ----------------------------------------------------------------------------

CANARIES = {
    "shopify_token": "shpat_CANARY_token_71f3a9",
    "shopify_webhook": "whsec_CANARY_webhook_52c8e1",
    "woo_key": "ck_CANARY_key_0d94b7",
    "woo_secret": "cs_CANARY_secret_e61f20",
    "woo_webhook": "woo_CANARY_webhook_9a7c35",
    "erp_password": "erp_CANARY_password_44b1d8",
}


@pytest.fixture
def canary_stack(tmp_path):  # type: ignore[no-untyped-def]
    erp_url = f"sqlite:///{tmp_path / 'erp_CANARY_url_3e9f.db'}"
    stack = build_stack("sqlite", tmp_path, f"sqlite:///{tmp_path / 'connector.db'}", erp_url)
    try:
        yield stack
    finally:
        stack.close()


def test_no_secret_leaks_into_pages_api_or_logs(canary_stack, caplog):
    from tests.fakes.woocommerce import FakeWooCommerce

    caplog.set_level(logging.DEBUG)
    stack = canary_stack
    woo = FakeWooCommerce(CANARIES["woo_key"], CANARIES["woo_secret"])
    try:
        load_config(
            stack.rt,
            json.dumps(
                {
                    "erp": {
                        "kind": "sql",
                        "url": stack.erp_url,
                        "push_token": CANARIES["erp_password"],
                        "lock_timeout_seconds": 0.2,
                    },
                    "stores": [
                        {
                            "slug": STORE,
                            "platform": "shopify",
                            "shop_domain": f"{STORE}.myshopify.com",
                            "api_base_url": "http://127.0.0.1:9",
                            "access_token": CANARIES["shopify_token"],
                            "webhook_secret": CANARIES["shopify_webhook"],
                        },
                        {
                            "slug": WOO_STORE,
                            "platform": "woocommerce",
                            "url": woo.url,
                            "consumer_key": CANARIES["woo_key"],
                            "consumer_secret": CANARIES["woo_secret"],
                            "webhook_secret": CANARIES["woo_webhook"],
                        },
                    ],
                }
            ),
        )
        secrets = [*CANARIES.values(), stack.erp_url]
        with_item_master(stack, "SHOE-TR2-42-SLT")
        stack.post_shopify(ORDER, secret=CANARIES["shopify_webhook"])  # fails in the ERP: unknown SKU
        stack.post_shopify(b"not json", secret=CANARIES["shopify_webhook"], topic="orders/updated")
        stack.run_jobs(include_delayed=True)
        failed = [e for e in stack.events() if e.status == "failed"]
        assert any("ERP" in (e.last_error or "") for e in failed)

        seen: list[str] = []
        admin = sign_in(stack)
        support = sign_in(stack, SUPPORT, "support")
        event_id = failed[0].id
        # Actions that talk to the stores and the ERP, whose answers are shown.
        for path in (
            f"/config/stores/{STORE}/test",
            f"/config/stores/{WOO_STORE}/test",
            "/config/erp/test",
            f"/config/stores/{WOO_STORE}/webhooks",
        ):
            seen.append(html(admin.post(path, data={"csrf_token": admin.csrf}, follow_redirects=True)))
        seen.append(html(form_post(admin, "/config/preview", {"store": STORE, "payload": json.dumps(ORDER)})))
        seen.append(html(form_post(admin, "/config/stores/new", {"slug": "x", "platform": "shopify"})))
        pages = [
            *ADMIN_PAGES,
            *CONSOLE_PAGES,
            f"/console/events/{event_id}",
            f"/config/preview?event={event_id}",
            f"/config/stores/{STORE}/webhooks",
            f"/config/stores/{WOO_STORE}/webhooks",
        ]
        api = [
            re.sub(r"<(?:int:)?event_id>", str(event_id), re.sub(r"<kind>", "sku", rule.rule))
            for rule in stack.app.url_map.iter_rules()
            if rule.rule.startswith("/api/") and "GET" in rule.methods
        ]
        api += [f"/api/v1/mappings/{kind}" for kind in ("payment_method", "shipping_method", "tax", "location")]
        for client in (admin, support):
            for path in [*pages, *api]:
                response = client.get(path)
                assert response.status_code in (200, 403), (path, response.status_code)
                seen.append(html(response))
                seen.append(str(response.headers))
        assert any("Connected to" in page for page in seen)  # the WooCommerce test went through
        everything = "\n".join(seen) + caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
        for secret in secrets:
            assert secret not in everything, secret
        assert "••••" in everything  # they are there, masked
        assert "oauth_consumer_key=••••" in caplog.text  # urllib3's request line, with the key masked
    finally:
        woo.stop()
