"""Configuration as code: `connector config load FILE.yaml` and `connector config dump`.

Stores, the ERP connection and the merchant mapping tables live in the database; this module
validates a YAML document with marshmallow (every problem reported by its path, such as
`stores.0.allocation_share`), seals the secrets, and writes it back out with the secrets masked.
Loading a dump keeps the stored secrets, since masked values are never written.

Every setting is declared with its type and limits, per platform and per ERP kind: an unknown key, a
NUL character or an over-long value is refused, since a misspelt key would otherwise be kept and
silently leave a guard such as allocation_share at its default. The /config page validates a store
with the same StoreSettings fields.

`mappings:` holds one list per table kind (mappings.merchant.KINDS) of {source, target, store}, where
`store` is a store slug (in the database or in the same document) and no store means every store. A
kind listed in the document replaces that kind's rows entirely (an empty list clears it); kinds the
document does not list are left as they are. A dump lists every kind.

A document is written in one transaction: when anything in it is wrong, nothing is written.
"""

from __future__ import annotations

import codecs
from secrets import token_urlsafe
from typing import Any

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.erp.rest import AUTH_TYPES, DEFAULT_PATHS
from connector.base.crypto import mask
from connector.base.models import ErpConnection, MappingEntry, Store
from connector.base.runtime import Runtime
from connector.orders.customers import POLICIES
from connector.sync.sharing import PRIORITY_KIND, share_problems
from mappings.allocation import order_problems
from mappings.approval import RulesError, rules_from_setting, rules_to_setting
from mappings.attribution import RULES as ATTRIBUTION_RULES
from mappings.attribution import AttributionError, parse_share, share_text
from mappings.merchant import KINDS as MAPPING_KINDS
from mappings.routing import RoutingError
from mappings.routing import rules_from_setting as routing_from_setting
from mappings.routing import rules_to_setting as routing_to_setting
from mappings.text_fields import (
    HOST_MAX,
    ID_MAX,
    NAME_MAX,
    PATH_MAX,
    URL_MAX,
    Setting,
    at_most,
    http_url,
    secret,
    text,
)
from platforms.registry import PLATFORMS

ERP_KINDS = ("sql", "rest", "files", "tryton")
MAPPING_MAX = 255  # mapping_entries.source/target are String(255)
ISSUED = frozenset(name for p in PLATFORMS.values() for name in p.issued_secrets)  # renewed by us: never dumped
MASK = "••••"  # what mask() puts before a secret's last characters


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


# ---- field kinds ------------------------------------------------------------------------------


class Whole(fields.Integer):
    """A whole number, or its digits as text (a form posts text); 2.5 is refused rather than cut to 2."""

    def _validated(self, value: Any) -> Any:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._validated(value)


def minutes() -> Whole:
    return Whole(
        validate=validate.Range(min=0, max=1440, error="0 (off) or up to 1440 minutes"),
        error_messages={"invalid": "a whole number of minutes"},
    )


def priority() -> Whole:
    """A rank for the units rounding leaves when stores share stock (mappings.allocation): lower first."""
    return Whole(
        validate=validate.Range(min=0, max=1000, error="a whole number from 0 to 1000 (lower goes first)"),
        error_messages={"invalid": "a whole number (lower goes first)"},
    )


def seconds(most: float) -> fields.Float:
    return fields.Float(
        validate=validate.Range(
            min=0, min_inclusive=False, max=most, error=f"more than 0 and at most {most:g} seconds"
        ),
        error_messages={"invalid": "a number of seconds"},
    )


def _known_encoding(name: str) -> None:
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValidationError("an encoding such as utf-8") from None


# ---- stores -----------------------------------------------------------------------------------


class ApprovalRulesField(fields.Field):
    """A store's approval rules (mappings.approval): read and written back in their canonical form."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict:
        try:
            return rules_to_setting(rules_from_setting(value))
        except RulesError as exc:
            raise ValidationError(str(exc).partition(": ")[2] or str(exc)) from None


class RoutingRulesField(fields.Field):
    """A store's routing rules (mappings.routing): read and written back in their canonical form."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict:
        try:
            return routing_to_setting(routing_from_setting(value))
        except RoutingError as exc:
            raise ValidationError(str(exc).partition("routing")[2].lstrip(".: ") or str(exc)) from None


class ShareField(fields.Field):
    """The owner's share of a split credit, kept as decimal text ("0.5"): a share is money's business."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        try:
            return share_text(parse_share(value))
        except AttributionError as exc:
            raise ValidationError(str(exc)) from None


class StoreSettings(Schema):
    """A store's settings: every key the connector reads, with its limits (the YAML and /config)."""

    class Meta:
        unknown = RAISE

    inventory_interval_minutes = minutes()
    # A store whose platform sends no webhooks: how often its orders are polled.
    poll_interval_seconds = Whole(
        validate=validate.Range(min=15, max=3600, error="15 to 3600 seconds"),
        error_messages={"invalid": "a whole number of seconds"},
    )
    safety_stock = Whole(
        validate=validate.Range(min=0, max=1_000_000, error="0 or more units (at most 1000000)"),
        error_messages={"invalid": "a whole number of units"},
    )
    # 0 would hide every unit from the store: refused rather than read as "unset"
    allocation_share = fields.Float(
        validate=validate.Range(min=0, min_inclusive=False, max=1, error="more than 0 and at most 1 (0.5 = half)"),
        error_messages={"invalid": "a number between 0 and 1, such as 0.5"},
    )
    stock_priority = priority()  # who gets a unit the shares' rounding leaves; unset: this store takes none
    customer_policy = fields.String(validate=validate.OneOf(POLICIES))
    guest_customer_id = text(ID_MAX)
    import_statuses = fields.List(text(64, validate.Length(min=1)), validate=validate.Length(max=32))
    notify_customer = fields.Boolean()
    approval = ApprovalRulesField()  # which orders wait for a person before the ERP
    routing = RoutingRulesField()  # which ERP warehouse ships an order (mappings.routing)
    # Who has the credit for a web order of an account with an owner (mappings.attribution).
    attribution = fields.String(validate=validate.OneOf(ATTRIBUTION_RULES))
    split_owner_share = ShareField()


# Each platform's own settings (platforms/<name>/form.py), declared as if written above: a subclass
# (StoreConfig) inherits them with the rest.
for _platform in PLATFORMS.values():
    StoreSettings._declared_fields.update(_platform.form.settings)
SECRETS = tuple(dict.fromkeys(name for p in PLATFORMS.values() for name in p.form.secrets))


class StoreConfig(StoreSettings):
    slug = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z0-9][a-z0-9-]{0,62}$", error="use lower-case letters, digits and dashes (at most 63)"
        ),
    )
    platform = fields.String(required=True, validate=validate.OneOf(tuple(PLATFORMS)))
    active = fields.Boolean(load_default=True)

    @validates_schema
    def _required_per_platform(self, data: dict, **_: object) -> None:
        found = PLATFORMS.get(data.get("platform", ""))
        if found is None:
            return
        form = found.form
        missing = [
            k
            for k in form.required
            if not data.get(k)
            and k not in form.generated  # made when the store is written
            and not (k in form.stands_in and data.get(form.stands_in[k]))
        ]
        if missing:
            raise ValidationError({k: [f"required for a {data['platform']} store"] for k in missing})
        if data.get("split_owner_share") and data.get("attribution") != "split":
            raise ValidationError({"split_owner_share": ["only with attribution: split"]})
        for other in PLATFORMS.values():
            wrong = {k: [why] for k, why in other.form.only_here.items() if other is not found and data.get(k)}
            if wrong:
                raise ValidationError(wrong)


for _secret in SECRETS:
    StoreConfig._declared_fields[_secret] = secret()


# ---- the ERP connection: one schema per kind, each with what its adapter reads (adapters/erp) ---


class ErpConfig(Schema):
    class Meta:
        unknown = RAISE

    kind = fields.String(required=True, validate=validate.OneOf(ERP_KINDS))
    shipments_interval_minutes = minutes()
    receipts_interval_minutes = minutes()  # marking store orders paid from the ERP's receipts; 0 turns it off
    undelivered_interval_minutes = minutes()  # cancelling store orders whose parcel came back; 0 turns it off
    refunds_interval_minutes = minutes()  # refunding in the stores the credit notes the ERP made itself; 0: off
    push_token = secret()  # the ERP's bearer token for POST /api/v1/stock
    offline_stock_priority = priority()  # the ERP's own channels' rank for those units; unset: they keep the rest


class SqlErpConfig(ErpConfig):
    url = secret()  # a database URL carries its password
    lock_timeout_seconds = seconds(3600)
    connect_timeout_seconds = seconds(600)
    timeout_seconds = seconds(600)  # the statement timeout


class RestAuth(fields.Field):
    """`auth: bearer` for short, or a mapping such as {type: api_key, header: X-Key}."""

    class Mapping(Schema):
        type = fields.String(validate=validate.OneOf(AUTH_TYPES))
        header = text(NAME_MAX)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, dict):
            return self.Mapping().load(value)
        if value not in AUTH_TYPES:
            raise ValidationError(f"one of {', '.join(AUTH_TYPES)}, or a mapping such as {{type: bearer}}")
        return value


class RestErpConfig(ErpConfig):
    base_url = http_url()
    paths = fields.Dict(keys=fields.String(validate=validate.OneOf(DEFAULT_PATHS)), values=text(URL_MAX))
    auth = RestAuth()
    auth_type = fields.String(validate=validate.OneOf(AUTH_TYPES))  # what `auth` says, spelt flat
    auth_header = text(NAME_MAX)
    username = text(NAME_MAX)
    token = secret()
    password = secret()
    api_key = secret()
    timeout_seconds = seconds(600)
    connect_timeout_seconds = seconds(600)
    max_tries = Whole(validate=validate.Range(min=1, max=20, error="between 1 and 20 tries"))
    retry_base_seconds = seconds(60)
    max_wait_seconds = seconds(3600)


class FilesErpConfig(ErpConfig):
    outbound = text(PATH_MAX)
    inbound = text(PATH_MAX)
    state = text(PATH_MAX)
    delimiter = text(1, validate.Length(min=1, error="one character"))
    encoding = text(64, _known_encoding)


class TrytonErpConfig(ErpConfig):
    url = secret()  # may carry credentials
    database = text(NAME_MAX)
    username = text(NAME_MAX)
    password = secret()
    warehouse = text(ID_MAX)
    warehouse_names = fields.Dict(keys=text(ID_MAX), values=text(NAME_MAX))
    shipping_product = text(ID_MAX)
    tax_product = text(ID_MAX)
    tip_product = text(ID_MAX)
    duty_product = text(ID_MAX)
    additional_fee_product = text(ID_MAX)
    fee_product = text(ID_MAX)
    payment_term = text(NAME_MAX)
    confirm = fields.Boolean()
    owner_category = text(NAME_MAX)  # the party category whose sub-categories name the accounts' owners
    connect_timeout_seconds = seconds(600)
    read_timeout_seconds = seconds(600)


ERP_SCHEMAS: dict[str, type[ErpConfig]] = {
    "sql": SqlErpConfig,
    "rest": RestErpConfig,
    "files": FilesErpConfig,
    "tryton": TrytonErpConfig,
}


class ErpSection(fields.Field):
    """The `erp:` section, checked by its kind's schema."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("a mapping such as {kind: sql, url: ...}")
        kind = value.get("kind")
        schema = ERP_SCHEMAS.get(kind) if isinstance(kind, str) else None  # a list or mapping is no key
        if schema is None:
            raise ValidationError({"kind": [f"one of {', '.join(ERP_KINDS)}"]})
        return schema().load(value)


# ---- mapping tables ---------------------------------------------------------------------------


class MappingRowConfig(Schema):
    source = Setting(required=True, blank=False, validate=at_most(MAPPING_MAX))
    target = Setting(required=True, blank=False, validate=at_most(MAPPING_MAX))
    store = Setting(load_default=None, allow_none=True, validate=at_most(HOST_MAX))  # a slug; none: every store


class _SourcesOnce(Schema):
    """MappingsConfig's check, for its generated subclass (one list field per mapping kind)."""

    @validates_schema
    def _each_source_once(self, data: dict, **_: object) -> None:
        errors: dict = {}
        for kind, rows in data.items():
            seen: set[tuple] = set()
            for index, row in enumerate(rows):
                key = (row["store"], row["source"].strip())
                if key in seen:
                    errors.setdefault(kind, {})[index] = {
                        "source": ["mapped twice" + (f" for {row['store']}" if row["store"] else "")]
                    }
                seen.add(key)
        if errors:
            raise ValidationError(errors)


MappingsConfig = _SourcesOnce.from_dict(
    {kind: fields.List(fields.Nested(MappingRowConfig)) for kind in MAPPING_KINDS}, name="MappingsConfig"
)


class ConfigDocument(Schema):
    erp = ErpSection(allow_none=True, load_default=None)
    stores = fields.List(fields.Nested(StoreConfig), load_default=list)
    mappings = fields.Nested(MappingsConfig, load_default=dict)

    @validates_schema
    def _unique_slugs(self, data: dict, **_: object) -> None:
        slugs = [s["slug"] for s in data.get("stores", [])]
        dupes = sorted({s for s in slugs if slugs.count(s) > 1})
        if dupes:
            raise ValidationError(f"store slugs must be unique: {', '.join(dupes)}", "stores")


# ---- loading ----------------------------------------------------------------------------------


def _split(values: dict, schema: Schema, fixed: tuple[str, ...]) -> tuple[dict, dict]:
    """A validated entry → (settings, secrets to write); masked secrets keep the stored value."""
    settings, secrets = {}, {}
    for key, value in values.items():
        if key in fixed:
            continue
        if schema.fields[key].metadata.get("secret"):
            if value is not None and not value.startswith(MASK):
                secrets[key] = value
        else:
            settings[key] = value
    return settings, secrets


def parse(text: str) -> dict:
    """A YAML document → the validated configuration (ConfigError naming each wrong field)."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}") from None
    try:
        return ConfigDocument().load(raw if isinstance(raw, dict) else {"_": raw})
    except ValidationError as exc:
        raise ConfigError(exc.messages) from None


def load_config(rt: Runtime, text: str) -> dict[str, int]:
    doc = parse(text)
    counts = {"stores_created": 0, "stores_updated": 0, "erp": 0, "mappings": 0}
    with rt.sessions.begin() as session:
        for entry in doc["stores"]:
            counts["stores_created" if _write_store(rt, session, entry) else "stores_updated"] += 1
        if doc["erp"]:
            _write_erp(rt, session, doc["erp"])
            counts["erp"] = 1
        if doc["mappings"]:
            counts["mappings"] = _write_mappings(session, doc["mappings"])
        _check_shares(session, doc)
    return counts


def _check_shares(session: Session, doc: dict) -> None:
    """Shares of the stores that sell from a common warehouse add up to at most 1, once the document is in
    (refused for the stores it names, or for all when it changes the location table)."""
    if not doc["stores"] and "location" not in doc["mappings"]:
        return
    slugs = [s["slug"] for s in doc["stores"]]
    problems = share_problems(session, None if "location" in doc["mappings"] else set(slugs))
    if not problems:
        return
    named = [i for i, slug in enumerate(slugs) if any(slug in p.stores for p in problems)]
    messages = [str(p) for p in problems]
    if named:
        raise ConfigError({"stores": {named[0]: {"allocation_share": messages}}})
    raise ConfigError({"mappings": {"location": messages}})


def _write_store(rt: Runtime, session: Session, entry: dict) -> bool:
    """Create or update one store; True when it is new."""
    settings, secrets = _split(entry, StoreConfig(), ("slug", "platform", "active"))
    store = session.scalars(select(Store).where(Store.slug == entry["slug"])).first()
    created = store is None
    if store is None:
        store = Store(slug=entry["slug"], platform=entry["platform"], secrets=None)
        session.add(store)
    store.platform, store.active, store.settings = entry["platform"], entry["active"], settings
    merged = {**rt.box.open(store.secrets), **secrets}
    for name in PLATFORMS[entry["platform"]].form.generated:  # e.g. the secret a webhook header carries
        merged[name] = merged.get(name) or token_urlsafe(32)
    store.secrets = rt.box.seal(merged)
    return created


def _write_erp(rt: Runtime, session: Session, entry: dict) -> None:
    settings, secrets = _split(entry, ERP_SCHEMAS[entry["kind"]](), ("kind",))
    conn = session.scalars(select(ErpConnection).where(ErpConnection.name == "default")).first()
    if conn is None:
        conn = ErpConnection(name="default", kind=entry["kind"], secrets=None)
        session.add(conn)
    conn.kind, conn.settings = entry["kind"], settings
    conn.secrets = rt.box.seal({**rt.box.open(conn.secrets), **secrets})


def _write_mappings(session: Session, tables: dict[str, list[dict]]) -> int:
    session.flush()  # the document's new stores get their ids
    store_ids = dict(session.execute(select(Store.slug, Store.id)).all())  # a Result has keys(): not a mapping
    unknown = {
        kind: {
            i: {"store": [f"no store {row['store']!r}"]}
            for i, row in enumerate(rows)
            if row["store"] is not None and row["store"] not in store_ids
        }
        for kind, rows in tables.items()
    }
    unknown = {kind: rows for kind, rows in unknown.items() if rows}
    orders = _order_problems(tables.get(PRIORITY_KIND, []), set(store_ids))
    if orders:
        unknown.setdefault(PRIORITY_KIND, {}).update(orders)
    if unknown:
        raise ConfigError({"mappings": unknown})  # raised inside the transaction: nothing is written
    return sum(write_mapping(session, kind, rows, store_ids) for kind, rows in tables.items())


def _order_problems(rows: list[dict], slugs: set[str]) -> dict[int, dict[str, list[str]]]:
    """Per row of the per-SKU priority table: it ranks stores against each other, so it is for every store,
    and its order names known stores and `offline`."""
    found: dict[int, dict[str, list[str]]] = {}
    for i, row in enumerate(rows):
        if row.get("store"):
            found.setdefault(i, {})["store"] = ["a priority order ranks every store: leave the store empty"]
        problems = order_problems(row["target"], slugs)
        if problems:
            found.setdefault(i, {})["target"] = problems
    return found


def replace_mapping(runtime: Runtime, kind: str, rows: list[dict]) -> int:
    """Replace one mapping table's rows (the API's and /config's edit); ValidationError names what is wrong."""
    with runtime.sessions.begin() as session:
        slugs = {s.slug: s.id for s in session.scalars(select(Store))}
        unknown = sorted({r["store"] for r in rows if r.get("store") and r["store"] not in slugs})
        if unknown:
            raise ValidationError({"rows": [f"unknown store {', '.join(unknown)}"]})
        seen = set()
        for r in rows:
            key = (r.get("store"), r["source"].strip())  # stripped as stored: the unique key sees it so
            if key in seen:
                raise ValidationError({"rows": [f"{r['source']} is mapped twice"]})
            seen.add(key)
        if kind == PRIORITY_KIND:
            problems = _order_problems(rows, set(slugs))
            if problems:
                raise ValidationError(
                    {
                        "rows": [
                            f"{rows[i]['source']}: {m}" for i, p in problems.items() for ms in p.values() for m in ms
                        ]
                    }
                )
        count = write_mapping(session, kind, rows, slugs)
        if kind == "location":
            conflicts = share_problems(session)
            if conflicts:  # raised inside the transaction: the table stays as it was
                raise ValidationError({"rows": [str(c) for c in conflicts]})
        return count


def write_mapping(session: Session, kind: str, rows: list[dict], store_ids: dict[str, int]) -> int:
    """Replace one mapping table with validated rows (their stores known), in the caller's transaction."""
    session.query(MappingEntry).filter(MappingEntry.kind == kind).delete()
    session.add_all(
        MappingEntry(
            kind=kind,
            store_id=store_ids[r["store"]] if r.get("store") else None,
            source=r["source"].strip(),
            target=r["target"].strip(),
        )
        for r in rows
    )
    return len(rows)


# ---- dumping ----------------------------------------------------------------------------------


def _masked(sealed: str | None, rt: Runtime) -> dict[str, str]:
    # The issued_* tokens are the connector's own (renewed by connector.base.tokens), not configuration.
    return {k: mask(v) for k, v in rt.box.open(sealed).items() if k not in ISSUED}


def _dump_mappings(session: Session) -> dict[str, list[dict]]:
    tables: dict[str, list[dict]] = {kind: [] for kind in MAPPING_KINDS}
    query = (
        select(MappingEntry.kind, Store.slug, MappingEntry.source, MappingEntry.target)
        .outerjoin(Store, Store.id == MappingEntry.store_id)
        .where(MappingEntry.kind.in_(MAPPING_KINDS))
    )
    for kind, slug, source, target in session.execute(query):
        tables[kind].append({"source": source, "target": target, **({"store": slug} if slug else {})})
    for rows in tables.values():  # sorted here: the databases order NULL stores differently
        rows.sort(key=lambda r: (r.get("store", ""), r["source"]))
    return tables


def dump_config(rt: Runtime) -> str:
    with rt.sessions() as session:
        stores = session.scalars(select(Store).order_by(Store.slug)).all()
        conn = session.scalars(select(ErpConnection).where(ErpConnection.name == "default")).first()
        doc: dict[str, Any] = {}
        if conn is not None:
            doc["erp"] = {"kind": conn.kind, **conn.settings, **_masked(conn.secrets, rt)}
        doc["stores"] = [
            {"slug": s.slug, "platform": s.platform, "active": s.active, **s.settings, **_masked(s.secrets, rt)}
            for s in stores
        ]
        doc["mappings"] = _dump_mappings(session)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
