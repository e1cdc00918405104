"""Configuration as code: stores and the ERP as data, secrets sealed at rest and masked on the way out."""

from __future__ import annotations

import json

import pytest
import yaml
from marshmallow import ValidationError
from sqlalchemy import select, text

from connector.base.crypto import SecretBox, SecretsError
from connector.base.models import AuditEntry, ErpConnection, MappingEntry, Store
from connector.base.runtime import Runtime
from connector.setup.config_io import ConfigError, dump_config, load_config, replace_mapping
from mappings.merchant import KINDS as MAPPING_KINDS
from tests.stack import SECRET

CONFIG = """
erp:
  kind: sql
  url: postgresql://erp:erp-db-password-123@127.0.0.1/erp_staging
stores:
  - slug: acme-eu
    platform: woocommerce
    url: https://shop.acme.eu
    consumer_key: ck_0123456789abcdef
    consumer_secret: cs_0123456789abcdef
    webhook_secret: woo-webhook-secret-xyz
  - slug: acme-ca
    platform: shopify
    shop_domain: acme-ca.myshopify.com
    access_token: shpat_0123456789abcdef
    webhook_secret: shopify-secret-abcdef
    api_version: 2026-01
    api_base_url: http://127.0.0.1:9001
"""
SECRETS = [
    "erp-db-password-123",
    "ck_0123456789abcdef",
    "cs_0123456789abcdef",
    "woo-webhook-secret-xyz",
    "shpat_0123456789abcdef",
    "shopify-secret-abcdef",
    SECRET,
]


def test_secrets_are_encrypted_at_rest_and_masked_in_the_dump(stack):
    load_config(stack.rt, CONFIG)
    with stack.rt.engine.connect() as conn:
        raw = " ".join(str(r) for r in conn.execute(text("SELECT * FROM stores")).all())
        raw += " ".join(str(r) for r in conn.execute(text("SELECT * FROM erp_connections")).all())
    dumped = dump_config(stack.rt)
    for secret in SECRETS:
        assert secret not in raw
        assert secret not in dumped
    doc = yaml.safe_load(dumped)
    stores = {s["slug"]: s for s in doc["stores"]}
    assert stores["acme-ca"]["api_version"] == "2026-01"
    assert stores["acme-ca"]["api_base_url"] == "http://127.0.0.1:9001"
    assert stores["acme-ca"]["access_token"].endswith("cdef") and stores["acme-ca"]["access_token"].startswith("••••")
    assert stores["acme-eu"]["url"] == "https://shop.acme.eu"
    assert doc["erp"]["kind"] == "sql"


def test_loading_a_dump_back_keeps_the_secrets(stack):
    load_config(stack.rt, CONFIG)
    load_config(stack.rt, dump_config(stack.rt))
    directory_secret = _store_secret(stack.rt, "acme-ca")
    assert directory_secret == "shopify-secret-abcdef"


def test_a_reloaded_secret_replaces_the_old_one(stack):
    load_config(stack.rt, CONFIG)
    load_config(stack.rt, CONFIG.replace("shopify-secret-abcdef", "rotated-secret-0000"))
    assert _store_secret(stack.rt, "acme-ca") == "rotated-secret-0000"


@pytest.mark.parametrize(
    "document, message",
    [
        (
            "stores:\n  - slug: Bad Slug\n    platform: shopify\n    shop_domain: x\n    webhook_secret: y\n",
            "stores.0.slug",
        ),
        ("stores:\n  - slug: ok\n    platform: prestashop\n", "stores.0.platform"),
        ("stores:\n  - slug: ok\n    platform: shopify\n", "shop_domain: required for a shopify store"),
        ("erp:\n  kind: oracle\n", "erp.kind"),
        ("stores: [\n", "not valid YAML"),
    ],
)
def test_invalid_config_is_refused_field_by_field(stack, document, message):
    with pytest.raises(ConfigError) as raised:
        load_config(stack.rt, document)
    assert message in str(raised.value)


def test_duplicate_slugs_are_refused(stack):
    doc = "stores:\n" + "".join(
        "  - {slug: twin, platform: shopify, shop_domain: t.myshopify.com, webhook_secret: s}\n" for _ in range(2)
    )
    with pytest.raises(ConfigError, match="unique: twin"):
        load_config(stack.rt, doc)


def test_the_key_can_be_rotated_and_a_wrong_key_says_so():
    old, new = SecretBox(["old-key"]), SecretBox(["new-key", "old-key"])
    token = old.seal({"webhook_secret": "s3cret"})
    assert new.open(token) == {"webhook_secret": "s3cret"}
    assert SecretBox(["new-key"]).open(new.rotate(token)) == {"webhook_secret": "s3cret"}
    with pytest.raises(SecretsError, match="CONNECTOR_ENCRYPTION_KEY"):
        SecretBox(["other-key"]).open(token)


def _store_secret(rt: Runtime, slug: str) -> str:
    with rt.sessions() as session:
        return rt.store_info(session.scalars(select(Store).where(Store.slug == slug)).one()).webhook_secret


# ---- every setting declared: type, limits, no unknown keys ----------------------------------------

SHOP = (
    "stores:\n"
    "  - {slug: acme-us, platform: shopify, shop_domain: acme-us.myshopify.com, webhook_secret: s3cret-0001%s}\n"
)


@pytest.mark.parametrize(
    "extra, message",
    [
        (", allocation_share: 5", "stores.0.allocation_share: more than 0 and at most 1 (0.5 = half)"),
        (", allocation_share: 0", "stores.0.allocation_share: more than 0 and at most 1 (0.5 = half)"),
        (", safety_stock: -3", "stores.0.safety_stock: 0 or more units"),
        (", stock_priority: -1", "stores.0.stock_priority: a whole number from 0 to 1000 (lower goes first)"),
        (", stock_priority: first", "stores.0.stock_priority: a whole number (lower goes first)"),
        (", safety_stock: 2.5", "stores.0.safety_stock: a whole number of units"),
        (", inventory_interval_minutes: 1441", "stores.0.inventory_interval_minutes: 0 (off) or up to 1440"),
        (", allocaton_share: 0.5", "stores.0.allocaton_share: Unknown field."),
        (', guest_customer_id: "a\\0b"', "stores.0.guest_customer_id: may not contain a NUL character"),
        (f", guest_customer_id: {'9' * 65}", "stores.0.guest_customer_id: at most 64 characters"),
        (f", api_base_url: http://x.test/{'p' * 2100}", "stores.0.api_base_url: at most 2048 characters"),
        (f", access_token: {'t' * 4097}", "stores.0.access_token: at most 4096 characters"),
        (", notify_customer: maybe", "stores.0.notify_customer"),
        (", restock_refunds: always", "stores.0.restock_refunds: a WooCommerce rule"),
        (", attribution: rep", "stores.0.attribution: Must be one of: owner, web, split"),
        (", attribution: split, split_owner_share: 1", "stores.0.split_owner_share: more than 0 and less than 1"),
        (", attribution: split, split_owner_share: half", "stores.0.split_owner_share: a share such as 0.5"),
        (", attribution: owner, split_owner_share: 0.5", "stores.0.split_owner_share: only with attribution: split"),
        (
            ", routing: {by_destination: {Germany: BER}}",
            "stores.0.routing: by_destination: 'Germany' is no destination",
        ),
        (", routing: {split: true}", "stores.0.routing: split: only with stock_check: true"),
        (", routing: {by_region: {}}", "stores.0.routing: unknown rule 'by_region'"),
    ],
)
def test_store_settings_out_of_range_or_unknown_are_refused_by_path_and_nothing_is_written(stack, extra, message):
    with pytest.raises(ConfigError) as raised:
        load_config(stack.rt, SHOP % extra + "mappings:\n  sku: [{source: A, target: B}]\n")
    assert message in str(raised.value)
    assert _mapping_rows(stack.rt) == []  # the whole document refused, not only the store


def test_every_store_setting_the_connector_reads_loads_and_comes_back(stack):
    load_config(
        stack.rt,
        SHOP
        % (
            ", api_version: 2026-01, api_base_url: 'http://127.0.0.1:9001', client_id: 1234567890abcdef,"
            " client_secret: shpss_0123456789abcdef, inventory_interval_minutes: 0, safety_stock: 2,"
            " allocation_share: 0.6, customer_policy: guest_account, guest_customer_id: 4711,"
            " notify_customer: false, import_statuses: [paid], attribution: split, split_owner_share: 0.30,"
            " routing: {by_destination: {de: BER, '*': MAIN}, warehouses: [MAIN], stock_check: true, split: true}"
        ),
    )
    settings = _store_settings(stack.rt, "acme-us")
    assert settings == {
        "shop_domain": "acme-us.myshopify.com",
        "api_version": "2026-01",
        "api_base_url": "http://127.0.0.1:9001",
        "client_id": "1234567890abcdef",
        "inventory_interval_minutes": 0,
        "safety_stock": 2,
        "allocation_share": 0.6,
        "customer_policy": "guest_account",
        "guest_customer_id": "4711",
        "notify_customer": False,
        "import_statuses": ["paid"],
        "attribution": "split",
        "split_owner_share": "0.3",  # decimal text: a share is money's business, never a float
        "routing": {
            "by_destination": {"DE": "BER", "*": "MAIN"},
            "warehouses": ["MAIN"],
            "stock_check": True,
            "split": True,
        },
    }
    assert "client_secret" not in settings


@pytest.mark.parametrize(
    "erp, message",
    [
        ({"kind": "sql", "url": "sqlite://", "base_url": "http://erp.test"}, "erp.base_url: Unknown field."),
        ({"kind": "sql", "url": "sqlite://", "lock_timeout_seconds": 0}, "erp.lock_timeout_seconds: more than 0"),
        ({"kind": "rest", "base_url": "ftp://erp.test"}, "erp.base_url: a web address"),
        ({"kind": "rest", "base_url": "http://erp.test", "auth": "oauth"}, "erp.auth: one of bearer"),
        ({"kind": "rest", "base_url": "http://erp.test", "max_tries": 0}, "erp.max_tries: between 1 and 20"),
        ({"kind": "rest", "base_url": "http://erp.test", "paths": {"odrer": "/o/{ref}"}}, "erp.paths.odrer"),
        ({"kind": "files", "outbound": "/o", "inbound": "/i", "delimiter": ";;"}, "erp.delimiter: at most 1"),
        ({"kind": "files", "outbound": "/o", "inbound": "/i", "encoding": "utf-99"}, "erp.encoding: an encoding"),
        (
            {
                "kind": "tryton",
                "url": "http://t.test",
                "database": "d",
                "username": "u",
                "password": "p",
                "confirm": "perhaps",
            },
            "erp.confirm",
        ),
        ({"kind": "sql", "url": "sqlite://", "push_token": "x" * 200_000}, "erp.push_token: at most 4096 characters"),
        ({"kind": "sql", "url": "sqlite://", "offline_stock_priority": 1.5}, "erp.offline_stock_priority: a whole"),
    ],
)
def test_erp_settings_are_checked_per_kind(stack, erp, message):
    with pytest.raises(ConfigError) as raised:
        load_config(stack.rt, json.dumps({"erp": erp}))
    assert message in str(raised.value)
    with stack.rt.sessions() as session:  # the stack's own sql connection is untouched
        assert session.scalars(select(ErpConnection.kind)).one() == "sql"


def test_each_erp_kind_loads_with_the_settings_its_adapter_reads(stack):
    kinds = [
        {
            "kind": "rest",
            "base_url": "https://erp.test/api",
            "auth": {"type": "api_key", "header": "X-Key"},
            "api_key": "k" * 32,
            "timeout_seconds": 2,
            "max_tries": 3,
            "retry_base_seconds": 0.05,
            "max_wait_seconds": 1,
            "paths": {"order": "/v2/orders/{ref}"},
            "shipments_interval_minutes": 2,
        },
        {
            "kind": "files",
            "outbound": "/srv/out",
            "inbound": "/srv/in",
            "state": "/srv/state",
            "delimiter": ";",
            "encoding": "latin-1",
        },
        {
            "kind": "tryton",
            "url": "http://tryton.test",
            "database": "erp",
            "username": "admin",
            "password": "pw",
            "warehouse": "WH",
            "warehouse_names": {"WH": "boston"},
            "shipping_product": "SHIP",
            "tax_product": "TAX",
            "tip_product": "TIP",
            "duty_product": "DUTY",
            "additional_fee_product": "XFEE",
            "fee_product": "FEE",
            "payment_term": "Net 30",
            "confirm": False,
            "owner_category": "Sales rep",
            "connect_timeout_seconds": 2,
            "read_timeout_seconds": 30,
        },
        {"kind": "sql", "url": "sqlite://", "lock_timeout_seconds": 0.2, "push_token": "push-token-0123456789"},
    ]
    for erp in kinds:
        load_config(stack.rt, json.dumps({"erp": erp}))
        with stack.rt.sessions() as session:
            conn = session.scalars(select(ErpConnection)).one()
            secrets = stack.rt.box.open(conn.secrets)
        declared = {k for k in erp if k not in conn.settings and k != "kind"}
        assert declared <= set(secrets), erp["kind"]  # what is not a setting was sealed
    assert conn.settings == {"lock_timeout_seconds": 0.2}


def test_the_erp_kind_is_named_when_unknown():
    from connector.setup.config_io import parse

    with pytest.raises(ConfigError, match=r"^erp\.kind: one of sql, rest, files, tryton$"):
        parse("erp: {kind: oracle, url: x}\n")


@pytest.mark.parametrize("kind", ["[sql]", "{sql: 1}"])
def test_an_erp_kind_that_is_no_name_is_refused_as_unknown(kind):
    from connector.setup.config_io import parse

    with pytest.raises(ConfigError, match=r"^erp\.kind: one of sql, rest, files, tryton$"):
        parse(f"erp: {{kind: {kind}, url: x}}\n")


# ---- mappings ----------------------------------------------------------------------------------

MAPPINGS = """
mappings:
  sku: [{source: A-1, target: ERP-A1}, {source: B, target: X, store: acme-ca}]
  payment_method: [{source: cod, target: CASH}]
"""


def test_mappings_are_loaded_with_the_stores_of_the_same_document(stack):
    counts = load_config(stack.rt, CONFIG + MAPPINGS)
    assert counts["mappings"] == 3
    assert _mapping_rows(stack.rt) == [
        ("payment_method", None, "cod", "CASH"),
        ("sku", None, "A-1", "ERP-A1"),
        ("sku", "acme-ca", "B", "X"),
    ]


def test_a_kind_in_the_document_replaces_its_rows_and_absent_kinds_stay(stack):
    load_config(stack.rt, CONFIG + MAPPINGS)
    load_config(stack.rt, "mappings:\n  sku: [{source: C, target: Z}]\n  tax: []\n")
    assert _mapping_rows(stack.rt) == [("payment_method", None, "cod", "CASH"), ("sku", None, "C", "Z")]


@pytest.mark.parametrize(
    "document, message",
    [
        ("mappings:\n  sku: [{source: A, target: B, store: nowhere}]\n", "mappings.sku.0.store: no store 'nowhere'"),
        ("mappings:\n  sku: [{source: A, target: B}, {source: A, target: C}]\n", "mappings.sku.1.source: mapped twice"),
        ("mappings:\n  skus: [{source: A, target: B}]\n", "mappings.skus: Unknown field."),
        (f"mappings:\n  tax: [{{source: {'s' * 256}, target: B}}]\n", "mappings.tax.0.source: at most 255 characters"),
        ("mappings:\n  tax: [{source: '  ', target: B}]\n", "mappings.tax.0.source: may not be blank"),
        ("mappings:\n  tax: [{source: A}]\n", "mappings.tax.0.target: Missing data"),
        (
            "mappings:\n  stock_priority: [{source: A, target: 'offline, acme-xx'}]\n",
            "mappings.stock_priority.0.target: no store 'acme-xx' (use store slugs and offline)",
        ),
        (
            "mappings:\n  stock_priority: [{source: A, target: acme-ca, store: acme-ca}]\n",
            "mappings.stock_priority.0.store: a priority order ranks every store: leave the store empty",
        ),
    ],
)
def test_bad_mapping_rows_are_refused_by_path_and_nothing_is_written(stack, document, message):
    load_config(stack.rt, CONFIG + MAPPINGS)
    with pytest.raises(ConfigError) as raised:
        load_config(stack.rt, SHOP % ", safety_stock: 7" + document)
    assert message in str(raised.value)
    assert len(_mapping_rows(stack.rt)) == 3
    assert "safety_stock" not in _store_settings(stack.rt, "acme-us")  # nor the store of the refused document


# ---- shared stock: shares of stores with a common warehouse add up to at most 1 --------------------

SHARED = """
stores:
  - {slug: outlet-eu, platform: woocommerce, url: 'https://shop.acme.eu', webhook_secret: w, allocation_share: %s}
  - {slug: outlet-ca, platform: shopify, shop_domain: outlet-ca.myshopify.com, webhook_secret: s, allocation_share: 0.6,
     stock_priority: 1}
"""


def test_shares_over_one_for_a_common_warehouse_are_refused_naming_the_stores_and_the_sum(stack):
    with pytest.raises(ConfigError) as raised:
        load_config(stack.rt, SHARED % "0.5")
    assert str(raised.value) == (
        "stores.0.allocation_share: allocation_share of outlet-ca (0.6), outlet-eu (0.5) adds up to 1.1 for every "
        "warehouse, which they all sell from: lower them to 1 or less together, or the stores are offered the "
        "same units twice"
    )
    assert "outlet-eu" not in _slugs(stack.rt)  # the whole document refused
    load_config(stack.rt, SHARED % "0.4")  # 1 in all: fine; stores without a share split nothing
    assert _store_settings(stack.rt, "outlet-ca")["stock_priority"] == 1

    # Each store sells from its own warehouse: no common one, so their shares are each their own business.
    own = (
        "mappings:\n  location: [{source: default, target: EU, store: outlet-eu},"
        " {source: '1', target: CA, store: outlet-ca}]\n"
    )
    load_config(stack.rt, SHARED % "0.9" + own)
    # A location edit that makes them share CA is refused, through every door, and the table stays.
    both_ca = [
        {"store": "outlet-eu", "source": "default", "target": "CA, EU"},
        {"store": "outlet-ca", "source": "1", "target": "CA"},
    ]
    with pytest.raises(ValidationError, match=r"outlet-ca \(0.6\), outlet-eu \(0.9\) adds up to 1.5 for CA,"):
        replace_mapping(stack.rt, "location", both_ca)
    with pytest.raises(
        ConfigError, match=r"mappings.location: allocation_share of outlet-ca \(0.6\), outlet-eu \(0.9\)"
    ):
        load_config(stack.rt, "mappings:\n  location: " + json.dumps(both_ca) + "\n")
    assert ("location", "outlet-eu", "default", "EU") in _mapping_rows(stack.rt)
    # An inactive store sells nothing: it shares with nobody.
    load_config(stack.rt, (SHARED % "0.9").replace("allocation_share: 0.9", "allocation_share: 0.9, active: false"))
    replace_mapping(stack.rt, "location", both_ca)


def test_the_per_sku_priority_table_names_known_stores_and_is_for_every_store(stack):
    load_config(stack.rt, SHARED % "0.4")
    with pytest.raises(ValidationError) as raised:
        replace_mapping(
            stack.rt, "stock_priority", [{"store": None, "source": "A-1", "target": "outlet-eu, outlet-eu"}]
        )
    assert raised.value.messages == {"rows": ["A-1: named twice: outlet-eu"]}
    replace_mapping(stack.rt, "stock_priority", [{"store": None, "source": "A-1", "target": "offline, outlet-eu"}])
    assert ("stock_priority", None, "A-1", "offline, outlet-eu") in _mapping_rows(stack.rt)
    assert yaml.safe_load(dump_config(stack.rt))["mappings"]["stock_priority"] == [
        {"source": "A-1", "target": "offline, outlet-eu"}
    ]


def test_mappings_dump_and_load_back_identically(stack):
    load_config(stack.rt, CONFIG + MAPPINGS)
    dumped = dump_config(stack.rt)
    doc = yaml.safe_load(dumped)
    assert set(doc["mappings"]) == set(MAPPING_KINDS)
    assert doc["mappings"]["sku"] == [
        {"source": "A-1", "target": "ERP-A1"},
        {"source": "B", "target": "X", "store": "acme-ca"},
    ]
    load_config(stack.rt, "mappings:\n  sku: []\n  payment_method: []\n")
    load_config(stack.rt, dumped)
    assert dump_config(stack.rt) == dumped


def test_the_issued_shopify_token_is_not_dumped_so_a_dump_loads_back(stack):
    load_config(stack.rt, CONFIG)
    with stack.rt.sessions.begin() as session:
        store = session.scalars(select(Store).where(Store.slug == "acme-ca")).one()
        store.secrets = stack.rt.box.seal({**stack.rt.box.open(store.secrets), "issued_token": "shpat_issued_0001"})
    dumped = dump_config(stack.rt)
    assert "issued_token" not in dumped
    load_config(stack.rt, dumped)


def test_the_cli_loads_mappings_and_audits_the_load(stack, tmp_path):
    from click.testing import CliRunner

    from connector.cli import main

    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + MAPPINGS)
    env = {"DATABASE_URL": str(stack.rt.settings.database_url), "CONNECTOR_ENCRYPTION_KEY": "test-encryption-key"}
    result = CliRunner().invoke(main, ["config", "load", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "3 mapping row(s)" in result.output
    with stack.rt.sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "config.load")).one()
    assert entry.actor.startswith("cli:") and entry.detail["mappings"] == 3
    assert "mappings" in CliRunner().invoke(main, ["config", "load", "--help"], env=env).output


def _mapping_rows(rt: Runtime) -> list[tuple]:
    with rt.sessions() as session:
        rows = session.execute(
            select(MappingEntry.kind, Store.slug, MappingEntry.source, MappingEntry.target).outerjoin(
                Store, Store.id == MappingEntry.store_id
            )
        ).all()
    return sorted((tuple(r) for r in rows), key=lambda r: (r[0], r[1] or "", r[2]))


def _slugs(rt: Runtime) -> list[str]:
    with rt.sessions() as session:
        return list(session.scalars(select(Store.slug)))


def _store_settings(rt: Runtime, slug: str) -> dict:
    with rt.sessions() as session:
        return session.scalars(select(Store.settings).where(Store.slug == slug)).one()


def test_process_settings_are_read_from_the_environment_in_one_place():
    from connector.base.settings import Settings

    settings = Settings.from_env({"WEB_THREADS": "8", "LOG_FORMAT": "JSON"})
    assert (settings.web_threads, settings.log_format) == (8, "json")
    defaults = Settings.from_env({})
    assert (defaults.web_threads, defaults.log_format) == (4, "text")
    assert Settings.from_env({"WEB_THREADS": "0", "LOG_FORMAT": "yaml"}).web_threads == 1


def test_a_worker_waits_for_the_disk_only_when_told_and_a_typo_stops_the_process():
    from connector.base.settings import Settings

    assert Settings.from_env({}).worker_synchronous_commit is False
    assert Settings.from_env({"CONNECTOR_WORKER_SYNCHRONOUS_COMMIT": "On"}).worker_synchronous_commit is True
    assert Settings.from_env({"CONNECTOR_WORKER_SYNCHRONOUS_COMMIT": "off"}).worker_synchronous_commit is False
    with pytest.raises(SystemExit, match="CONNECTOR_WORKER_SYNCHRONOUS_COMMIT must be on or off, got 'of'"):
        Settings.from_env({"CONNECTOR_WORKER_SYNCHRONOUS_COMMIT": "of"})
