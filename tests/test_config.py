"""Configuration as code: stores and the ERP as data, secrets sealed at rest and masked on the way out."""
from __future__ import annotations

import pytest
import yaml
from sqlalchemy import text

from connector.config_io import ConfigError, dump_config, load_config
from connector.crypto import SecretBox, SecretsError
from connector.runtime import Runtime
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
SECRETS = ["erp-db-password-123", "ck_0123456789abcdef", "cs_0123456789abcdef", "woo-webhook-secret-xyz",
           "shpat_0123456789abcdef", "shopify-secret-abcdef", SECRET]


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
        ("stores:\n  - slug: Bad Slug\n    platform: shopify\n    shop_domain: x\n    webhook_secret: y\n",
         "stores.0.slug"),
        ("stores:\n  - slug: ok\n    platform: magento\n", "stores.0.platform"),
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
        "  - {slug: twin, platform: shopify, shop_domain: t.myshopify.com, webhook_secret: s}\n" for _ in range(2))
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
    from sqlalchemy import select

    from connector.models import Store

    with rt.sessions() as session:
        return rt.store_info(session.scalars(select(Store).where(Store.slug == slug)).one()).webhook_secret
