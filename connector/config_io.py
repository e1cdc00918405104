"""Configuration as code: `connector config load FILE.yaml` and `connector config dump`.

Stores and the ERP connection live in the database; this module validates a YAML document with
marshmallow (every problem reported by field), seals the secrets, and writes it back out with the
secrets masked. Loading a dump keeps the stored secrets, since masked values are never written.
"""
from __future__ import annotations

from typing import Any

import yaml
from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from connector.crypto import mask
from connector.customers import POLICIES
from connector.models import ErpConnection, Store
from connector.runtime import Runtime

# push_token: the ERP's bearer token for POST /api/v1/stock; client_secret: a Shopify app's (Dev Dashboard)
SECRET_KEYS = {"access_token", "webhook_secret", "consumer_key", "consumer_secret", "url", "password",
               "token", "api_key", "push_token", "client_secret"}
STORE_SECRET_KEYS = SECRET_KEYS - {"url"}  # a WooCommerce store's url is not a secret
ERP_KINDS = ("sql", "rest", "files", "tryton")
PLATFORM_REQUIRED = {
    "shopify": ("shop_domain", "webhook_secret"),
    "woocommerce": ("url", "webhook_secret"),
}


class ConfigError(Exception):
    def __init__(self, messages: dict | list | str):
        self.messages = messages
        super().__init__(_flatten(messages))


def _flatten(messages: Any, prefix: str = "") -> str:
    if isinstance(messages, dict):
        return "; ".join(_flatten(v, f"{prefix}{k}." if prefix or k != "_schema" else "") for k, v in messages.items())
    if isinstance(messages, list):
        return "; ".join(f"{prefix.rstrip('.')}: {m}" if isinstance(m, str) else _flatten(m, prefix) for m in messages)
    return f"{prefix.rstrip('.')}: {messages}"


class StoreConfig(Schema):
    class Meta:
        unknown = INCLUDE  # platform-specific keys (api_base_url, notify_customer, ...) are kept

    slug = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z0-9][a-z0-9-]{0,62}$", error="use lower-case letters, digits and dashes (at most 63)"))
    platform = fields.String(required=True, validate=validate.OneOf(tuple(PLATFORM_REQUIRED)))
    active = fields.Boolean(load_default=True)
    customer_policy = fields.String(validate=validate.OneOf(POLICIES))
    import_statuses = fields.List(fields.String(validate=validate.Length(min=1)))

    @validates_schema
    def _required_per_platform(self, data: dict, **_: object) -> None:
        missing = [k for k in PLATFORM_REQUIRED.get(data.get("platform", ""), ()) if not data.get(k)
                   and not (k == "webhook_secret" and data.get("client_secret"))]  # an app signs with its secret
        if missing:
            raise ValidationError({k: [f"required for a {data['platform']} store"] for k in missing})


class ErpConfig(Schema):
    class Meta:
        unknown = INCLUDE

    kind = fields.String(required=True, validate=validate.OneOf(ERP_KINDS))


class ConfigDocument(Schema):
    erp = fields.Nested(ErpConfig, allow_none=True, load_default=None)
    stores = fields.List(fields.Nested(StoreConfig), load_default=list)

    @validates_schema
    def _unique_slugs(self, data: dict, **_: object) -> None:
        slugs = [s["slug"] for s in data.get("stores", [])]
        dupes = sorted({s for s in slugs if slugs.count(s) > 1})
        if dupes:
            raise ValidationError(f"store slugs must be unique: {', '.join(dupes)}", "stores")


def _split(values: dict, secret_keys: set[str], fixed: tuple[str, ...]) -> tuple[dict, dict]:
    settings, secrets = {}, {}
    for key, value in values.items():
        if key in fixed:
            continue
        if key in secret_keys:
            if value is not None and not str(value).startswith("••••"):
                secrets[key] = str(value)
        else:
            settings[key] = str(value) if key == "api_version" else value
    return settings, secrets


def load_config(rt: Runtime, text: str) -> dict[str, int]:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}") from None
    try:
        doc = ConfigDocument().load(raw if isinstance(raw, dict) else {"_": raw})
    except ValidationError as exc:
        raise ConfigError(exc.messages) from None
    counts = {"stores_created": 0, "stores_updated": 0, "erp": 0}
    with rt.sessions.begin() as session:
        for entry in doc["stores"]:
            settings, secrets = _split(entry, STORE_SECRET_KEYS, ("slug", "platform", "active"))
            store = session.scalars(select(Store).where(Store.slug == entry["slug"])).first()
            if store is None:
                store = Store(slug=entry["slug"], platform=entry["platform"], secrets=None)
                session.add(store)
                counts["stores_created"] += 1
            else:
                counts["stores_updated"] += 1
            store.platform, store.active, store.settings = entry["platform"], entry["active"], settings
            store.secrets = rt.box.seal({**rt.box.open(store.secrets), **secrets})
        if doc["erp"]:
            settings, secrets = _split(doc["erp"], SECRET_KEYS, ("kind",))
            conn = session.scalars(select(ErpConnection).where(ErpConnection.name == "default")).first()
            if conn is None:
                conn = ErpConnection(name="default", kind=doc["erp"]["kind"], secrets=None)
                session.add(conn)
            conn.kind, conn.settings = doc["erp"]["kind"], settings
            conn.secrets = rt.box.seal({**rt.box.open(conn.secrets), **secrets})
            counts["erp"] = 1
    return counts


def dump_config(rt: Runtime) -> str:
    with rt.sessions() as session:
        stores = session.scalars(select(Store).order_by(Store.slug)).all()
        conn = session.scalars(select(ErpConnection).where(ErpConnection.name == "default")).first()
        doc: dict[str, Any] = {}
        if conn is not None:
            doc["erp"] = {"kind": conn.kind, **conn.settings,
                          **{k: mask(v) for k, v in rt.box.open(conn.secrets).items()}}
        doc["stores"] = [
            {"slug": s.slug, "platform": s.platform, "active": s.active, **s.settings,
             **{k: mask(v) for k, v in rt.box.open(s.secrets).items()}}
            for s in stores
        ]
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
