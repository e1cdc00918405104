"""An admin's (or a stolen admin session's) configuration input: values that would defeat the oversell
guard, misspelt keys that would be kept silently, huge secrets and reasons, NUL characters. Each is
refused with the field named, and nothing of the document is written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from connector.base.models import AuditEntry, MappingEntry, Store
from connector.setup.config_io import ConfigError, dump_config, load_config
from tests.stack import STORE, WOO_STORE, build_stack
from tests.test_api import SUPPORT, sign_in
from tests.test_pages import field_error, form_post, html

SHOP = (
    "stores:\n"
    "  - {slug: acme-us, platform: shopify, shop_domain: acme-us.myshopify.com, webhook_secret: s3cret-0001%s}\n"
)
HUGE_SECRET = "s" * 200_000


def _put_config(client, document: str):  # type: ignore[no-untyped-def]
    return client.put("/api/v1/config", json={"yaml": document}, headers={"X-CSRF-Token": client.csrf})


def _settings(stack, slug: str = STORE) -> dict:  # type: ignore[no-untyped-def]
    with stack.rt.sessions() as session:
        return session.scalars(select(Store.settings).where(Store.slug == slug)).one()


@pytest.mark.parametrize(
    "extra, message",
    [
        (", allocation_share: 5", "stores.0.allocation_share: more than 0 and at most 1 (0.5 = half)"),
        (", allocation_share: 0", "stores.0.allocation_share: more than 0 and at most 1 (0.5 = half)"),
        (", safety_stock: -3", "stores.0.safety_stock: 0 or more units"),
        (", allocaton_share: 0.5", "stores.0.allocaton_share: Unknown field."),
        (', guest_customer_id: "guest\\0id"', "stores.0.guest_customer_id: may not contain a NUL character"),
        (f", access_token: {HUGE_SECRET}", "stores.0.access_token: at most 4096 characters"),
    ],
)
def test_guard_defeating_or_unknown_store_settings_are_refused_through_the_api(sqlite_stack, extra, message):
    admin = sign_in(sqlite_stack)
    refused = _put_config(admin, SHOP % extra)
    assert refused.status_code == 400
    assert message in refused.json["message"]
    assert _settings(sqlite_stack) == {"shop_domain": f"{STORE}.myshopify.com", "api_version": "2026-01"}


def test_a_huge_secret_in_yaml_is_refused_with_its_field_named(sqlite_stack):
    with pytest.raises(ConfigError, match=r"stores\.0\.webhook_secret: at most 4096 characters") as raised:
        load_config(
            sqlite_stack.rt,
            f"stores:\n  - {{slug: acme-us, platform: shopify, shop_domain: "
            f"acme-us.myshopify.com, webhook_secret: {HUGE_SECRET}}}\n",
        )
    assert len(str(raised.value)) < 500  # the message names the field; it does not repeat the value


def test_a_nul_escape_anywhere_in_the_yaml_is_refused_with_its_field_named(sqlite_stack):
    for document, field in [
        (SHOP % ', import_statuses: ["paid\\0"]', "stores.0.import_statuses.0"),
        ('erp: {kind: sql, url: "sqlite://\\0"}\n', "erp.url"),
        ('mappings:\n  sku: [{source: "A\\0", target: B}]\n', "mappings.sku.0.source"),
    ]:
        with pytest.raises(ConfigError, match=rf"{field}: may not (be blank or )?contain a NUL character"):
            load_config(sqlite_stack.rt, document)


def test_a_huge_secret_posted_to_the_store_form_is_refused_and_the_stored_one_kept(sqlite_stack):
    admin = sign_in(sqlite_stack)
    response = form_post(
        admin,
        f"/config/stores/{STORE}",
        {
            "shop_domain": f"{STORE}.myshopify.com",
            "api_version": "2026-01",
            "customer_policy": "match",
            "shopify-access_token": HUGE_SECRET,
        },
    )
    page = html(response)
    assert response.status_code == 400
    assert "at most 4096 characters" in field_error(page, "shopify-access_token")
    assert HUGE_SECRET[:5000] not in page
    with sqlite_stack.rt.sessions() as session:
        info = sqlite_stack.rt.store_info(session.scalars(select(Store).where(Store.slug == STORE)).one())
    assert "access_token" not in info.secrets  # the stack's store has none: the refused one was not stored


def test_allocation_share_zero_is_refused_on_the_store_form(sqlite_stack):
    admin = sign_in(sqlite_stack)
    response = form_post(
        admin, f"/config/stores/{WOO_STORE}", {"url": "https://shop.acme.test", "allocation_share": "0"}
    )
    assert response.status_code == 400
    assert field_error(html(response), "allocation_share") == "more than 0 and at most 1 (0.5 = half)"
    assert "allocation_share" not in _settings(sqlite_stack, WOO_STORE)


def test_a_20000_character_skip_reason_is_refused_and_not_stored(sqlite_stack):
    sqlite_stack.post_shopify(b"not json at all")
    support = sign_in(sqlite_stack, SUPPORT, "support")
    event_id = sqlite_stack.events()[0].id
    reason = "r" * 20_000
    api = support.post(
        f"/api/v1/events/{event_id}/skip", json={"reason": reason}, headers={"X-CSRF-Token": support.csrf}
    )
    assert api.status_code == 422 and "reason" in api.text
    page = form_post(support, f"/console/events/{event_id}/skip", {"reason": reason})
    assert page.status_code == 400 and field_error(html(page), "reason") == "at most 500 characters"
    assert sqlite_stack.events()[0].status == "failed"
    with sqlite_stack.rt.sessions() as session:
        assert (
            session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "event.skip")) == 0
        )


def test_over_long_mapping_rows_are_refused_by_the_api_and_the_page(sqlite_stack):
    admin = sign_in(sqlite_stack)
    long = "x" * 256
    api = admin.put(
        "/api/v1/mappings/sku", json={"rows": [{"source": long, "target": "B"}]}, headers={"X-CSRF-Token": admin.csrf}
    )
    assert api.status_code == 422 and "source" in api.text
    page = form_post(admin, "/config/mappings/sku", [("store", ""), ("source", "A"), ("target", long)])
    assert page.status_code == 400 and "at most 255 characters" in html(page)
    with pytest.raises(ConfigError, match=r"mappings\.sku\.0\.target: at most 255 characters"):
        load_config(sqlite_stack.rt, f"mappings:\n  sku: [{{source: A, target: {long}}}]\n")
    with sqlite_stack.rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(MappingEntry)) == 0


def test_mappings_round_trip_into_a_fresh_database(sqlite_stack, tmp_path):
    load_config(
        sqlite_stack.rt,
        f"""
mappings:
  sku: [{{source: A-1, target: ERP-A1}}, {{source: B, target: X, store: {STORE}}}, {{source: "0042", target: Y}}]
  payment_method: [{{source: cod, target: CASH, store: {WOO_STORE}}}]
  location: [{{source: "123456", target: "BOS, NYC"}}]
""",
    )
    dumped = dump_config(sqlite_stack.rt)
    fresh_path = tmp_path / "fresh"
    fresh_path.mkdir()
    fresh = build_stack(
        "sqlite", fresh_path, f"sqlite:///{fresh_path / 'connector.db'}", f"sqlite:///{fresh_path / 'erp.db'}"
    )
    try:
        load_config(fresh.rt, dumped)
        assert dump_config(fresh.rt) == dumped
    finally:
        fresh.close()
