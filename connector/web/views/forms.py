"""Form handling for /config: what a form posts → a config-as-code entry, with errors per field.

Stores and the ERP are written through connector.setup.config_io.load_config, so the page shares the
YAML loader's validation (StoreConfig and its StoreSettings fields, the ERP kind's schema) and its
sealing of secrets. The checks here add what a form needs on top: which fields a platform shows, the
import statuses it knows, and write-only secrets (an empty secret field keeps the stored value; a
stored secret is never sent back to the browser).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from adapters.erp.rest import AUTH_TYPES
from connector.base.crypto import mask
from connector.base.runtime import Runtime, StoreInfo
from connector.setup.config_io import ConfigDocument, ConfigError, StoreConfig, StoreSettings, load_config
from mappings.merchant import KINDS as MAPPING_KINDS
from platforms.registry import PLATFORMS as REGISTERED

PLATFORMS = tuple(REGISTERED)
PLATFORM_LABELS = {name: p.label for name, p in REGISTERED.items()}
# What apply_order compares import_statuses with: the status each platform's stores give their orders.
IMPORT_STATUSES = {name: p.form.statuses for name, p in REGISTERED.items()}
DEFAULT_IMPORT = {name: p.form.default_import for name, p in REGISTERED.items()}
PLATFORM_FIELDS = {name: tuple(f.name for f in p.form.shown if not f.secret) for name, p in REGISTERED.items()}
PLATFORM_FORMS = {name: p.form for name, p in REGISTERED.items()}
SECRET_FIELDS = {name: tuple(f.name for f in p.form.shown if f.secret) for name, p in REGISTERED.items()}
RULE_FIELDS = (
    "inventory_interval_minutes",
    "safety_stock",
    "allocation_share",
    "stock_priority",
    "customer_policy",
    "guest_customer_id",
    "attribution",
    "split_owner_share",
    "import_statuses",
)
ATTRIBUTION_LABELS = {
    "web": "web — the web channel has the credit (default)",
    "owner": "owner — the account's owner has the whole credit",
    "split": "split — the owner has a share, the web channel the rest",
}
POLICY_LABELS = {
    "match": "match — one ERP customer per person (account id, then email, then phone)",
    "always_new": "always_new — a new ERP customer for every order",
    "guest_account": "guest_account — guests booked on one shared customer",
}


@dataclass
class FormResult:
    errors: dict[str, str]
    entry: dict[str, Any] | None = None
    changed_secrets: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def _first(messages: Any) -> str:
    if isinstance(messages, dict):
        return _first(next(iter(messages.values()), ""))
    if isinstance(messages, list):
        return _first(messages[0]) if messages else ""
    return _humane(str(messages))


# marshmallow's stock messages, said the way the rest of the form speaks
_STOCK_MESSAGES = (
    (re.compile(r"Longer than maximum length (\d+)\.?"), r"at most \1 characters"),
    (re.compile(r"Shorter than minimum length (\d+)\.?"), r"at least \1 characters"),
    (re.compile(r"Not a valid integer\.?"), "a whole number, such as 3"),
    (re.compile(r"Not a valid number\.?"), "a number, such as 0.5"),
    (re.compile(r"Missing data for required field\.?"), "required"),
    (re.compile(r"Field may not be null\.?"), "required"),
)


def _humane(message: str) -> str:
    for pattern, said in _STOCK_MESSAGES:
        if pattern.fullmatch(message):
            return pattern.sub(said, message)
    return message


def _field_errors(messages: Any) -> dict[str, str]:
    if not isinstance(messages, dict):
        return {"_form": _first(messages)}
    return {str(k): _first(v) for k, v in messages.items()}


def store_values(store: StoreInfo | None) -> dict[str, Any]:
    """What the form shows for a stored store (never a secret)."""
    if store is None:
        first = REGISTERED[PLATFORMS[0]]
        defaults = {f.name: f.default for f in first.form.shown if f.default}
        return {"platform": first.name, "active": True, **defaults, "customer_policy": "match"}
    values = {
        "slug": store.slug,
        "platform": store.platform,
        "active": store.active,
        "customer_policy": "match",
        **store.settings,
    }
    return values


def shown_defaults(platform: str) -> dict[str, Any]:
    """What the store form shows, and a save posts back, for a setting the store does not hold."""
    return {
        **{f.name: f.default for f in PLATFORM_FORMS[platform].shown if f.default and not f.secret},
        "customer_policy": "match",
        "attribution": "web",
        # none ticked is the platform's own set (None: every order), as the form's hint says
        "import_statuses": list(statuses) if (statuses := REGISTERED[platform].import_statuses) else None,
    }


def changed_settings(store: StoreInfo, entry: dict[str, Any]) -> list[str]:
    """The settings a saved form changed, by name (never a secret): a setting the store did not hold and the
    form posted back at the value it showed is unchanged, and import statuses are a set (their order is the
    form's, not the merchant's)."""
    defaults, before = shown_defaults(store.platform), store_values(store)

    def seen(name: str, value: Any) -> Any:
        value = defaults.get(name) if value in (None, "", []) else value
        return sorted(value) if name == "import_statuses" and isinstance(value, list) else value

    return sorted(
        name
        for name in set(entry) | set(before)
        if name not in SECRET_FIELDS[store.platform]
        and name not in ("slug", "platform")
        and seen(name, entry.get(name)) != seen(name, before.get(name))
    )


def _value(form: MultiDict, name: str, platform: str) -> str:
    """A field of the chosen platform: `<platform>-<name>` when the page names it so, else `<name>`."""
    for key in (f"{platform}-{name}", name):
        for value in form.getlist(key):
            if value.strip():
                return value.strip()
    return ""


def parse_store(form: MultiDict, existing: StoreInfo | None, existing_slugs: set[str]) -> FormResult:
    """A store's form → a config entry (validated; nothing written)."""
    errors: dict[str, str] = {}
    if existing is None:
        slug = (form.get("slug") or "").strip().lower()
        platform = form.get("platform") or ""
        if slug in existing_slugs:
            errors["slug"] = "a store with this slug exists already; edit it instead"
    else:
        slug, platform = existing.slug, existing.platform
    if platform not in PLATFORMS:
        errors["platform"] = f"choose {' or '.join(PLATFORM_LABELS.values())}"
        platform = PLATFORMS[0]

    raw = {name: _value(form, name, platform) for name in (*PLATFORM_FIELDS[platform], *RULE_FIELDS[:-1])}
    for name in REGISTERED[platform].form.lower_case:
        raw[name] = raw[name].lower()
    given = {k: v for k, v in raw.items() if v}
    try:
        typed = StoreSettings().load(given)
    except ValidationError as exc:
        errors.update(_field_errors(exc.messages))
        # The fields that were right stay in the entry: a bad guest ID must not make the shop domain "required".
        typed = exc.valid_data if isinstance(exc.valid_data, dict) else {}
    statuses = [s for s in form.getlist(f"import_statuses-{platform}") or form.getlist("import_statuses") if s]
    unknown = [s for s in statuses if s not in IMPORT_STATUSES[platform]]
    if unknown:
        errors["import_statuses"] = f"not a {PLATFORM_LABELS[platform]} status: {', '.join(unknown)}"
    if typed.get("customer_policy") != "guest_account" and "guest_customer_id" in typed:
        typed.pop("guest_customer_id")
    if typed.get("attribution") != "split" and "split_owner_share" in typed:
        typed.pop("split_owner_share")  # the field stays on the page; only a split reads it
    try:
        approval = StoreSettings().load({"approval": posted_approval(form)}).get("approval")
    except ValidationError as exc:
        errors["approval"] = _first(exc.messages)
        approval = None
    try:
        routing = StoreSettings().load({"routing": posted_routing(form)}).get("routing")
    except ValidationError as exc:
        errors["routing"] = _first(exc.messages)
        routing = None

    settings = dict(existing.settings) if existing is not None else {}
    for name in (*PLATFORM_FIELDS[platform], *RULE_FIELDS):
        settings.pop(name, None)
    settings.pop("approval", None)
    settings.pop("routing", None)
    settings.update(typed)
    if statuses:
        settings["import_statuses"] = statuses
    if approval:
        settings["approval"] = approval
    if routing:
        settings["routing"] = routing

    secrets: dict[str, str] = {}
    changed = []
    for name in SECRET_FIELDS[platform]:
        value = _value(form, name, platform)
        if value:
            secrets[name] = value
            changed.append(name)
        elif existing is not None and existing.secrets.get(name):
            secrets[name] = mask(existing.secrets[name]) or "••••"  # masked: load_config keeps the stored one
    entry = {
        "slug": slug,
        "platform": platform,
        "active": form.get("active") in ("on", "true", "1", "yes"),
        **settings,
        **secrets,
    }
    declared = REGISTERED[platform].form
    for name in declared.required:  # StoreConfig checks this only once its fields are valid
        if not entry.get(name) and name not in declared.generated:
            errors.setdefault(name, f"required for a {PLATFORM_LABELS[platform]} store")
    schema_errors = StoreConfig().validate(entry)
    for name, message in _field_errors(schema_errors).items():
        errors.setdefault(name, message)
    return FormResult(errors, entry, tuple(changed))


def posted_approval(form: MultiDict) -> dict[str, Any]:
    """The approval rules the form's `approval_*` fields set (mappings.approval validates them)."""
    rules: dict[str, Any] = {}
    for name in ("cod_above", "risk"):
        value = (form.get(f"approval_{name}") or "").strip()
        if value:
            rules[name] = value
    for name in ("first_order", "countries_differ"):
        if form.get(f"approval_{name}") in ("on", "true", "1", "yes"):
            rules[name] = True
    tags = [t.strip() for t in (form.get("approval_tags") or "").split(",") if t.strip()]
    if tags:
        rules["tags"] = tags
    return rules


def posted_routing(form: MultiDict) -> dict[str, Any]:
    """The routing rules the form's `routing_*` fields set (mappings.routing validates them): destinations as
    "DE=BER, US-CA=LAX, *=MAIN", warehouses as "MAIN, BER"."""
    rules: dict[str, Any] = {}
    pairs = [p.strip() for p in (form.get("routing_by_destination") or "").replace("\n", ",").split(",")]
    table = {}
    for pair in filter(None, pairs):
        destination, _, warehouse = pair.partition("=")
        table[destination.strip()] = warehouse.strip()
    if table:
        rules["by_destination"] = table
    warehouses = [w.strip() for w in (form.get("routing_warehouses") or "").split(",") if w.strip()]
    if warehouses:
        rules["warehouses"] = warehouses
    for name in ("stock_check", "split"):
        if form.get(f"routing_{name}") in ("on", "true", "1", "yes"):
            rules[name] = True
    return rules


def save_store(rt: Runtime, result: FormResult) -> dict[str, int]:
    """Write a validated entry through the config loader (which validates again and seals the secrets)."""
    try:
        return load_config(rt, json.dumps({"stores": [result.entry]}))
    except ConfigError as exc:  # a rule of the loader the form did not know: show it by field
        messages = exc.messages
        if isinstance(messages, dict) and isinstance(messages.get("stores"), dict):
            result.errors.update(_field_errors(messages["stores"].get(0) or messages["stores"]))
        else:
            result.errors["_form"] = str(exc)
        return {}


# ---- the ERP connection -----------------------------------------------------------------------


@dataclass(frozen=True)
class ErpField:
    name: str
    label: str
    secret: bool = False
    required: bool = False
    number: type | None = None
    choices: tuple[str, ...] = ()
    hint: str = ""
    zero_allowed: bool = False  # 0 means "off" (an interval)


CONNECT_FIELD = ErpField("connect_timeout_seconds", "Connect timeout (seconds)", number=float, hint="5 when empty")
ERP_KIND_LABELS = {"sql": "SQL staging tables", "rest": "REST/JSON API", "files": "File drop (CSV)", "tryton": "Tryton"}
RECEIPTS_FIELD = ErpField(
    "receipts_interval_minutes",
    "Receipts sync (minutes)",
    number=int,
    hint="5 when empty: store orders are marked paid when finance records their money in the ERP; 0 turns it off",
    zero_allowed=True,
)
UNDELIVERED_FIELD = ErpField(
    "undelivered_interval_minutes",
    "Undelivered parcels sync (minutes)",
    number=int,
    hint="5 when empty: a store order is cancelled when the ERP records its parcel returned undelivered; 0 is off",
    zero_allowed=True,
)
REFUNDS_FIELD = ErpField(
    "refunds_interval_minutes",
    "ERP refunds sync (minutes)",
    number=int,
    hint="5 when empty: credit notes the ERP makes itself are refunded in the store; 0 turns it off",
    zero_allowed=True,
)
ERP_FIELDS: dict[str, tuple[ErpField, ...]] = {
    "sql": (
        ErpField(
            "url",
            "Database URL",
            secret=True,
            required=True,
            hint="postgresql://user:password@host/database, or sqlite:////path/erp.db",
        ),
        ErpField(
            "lock_timeout_seconds",
            "Lock timeout (seconds)",
            number=float,
            hint="SQLite ERPs: how long to wait for the ERP's write lock",
        ),
        CONNECT_FIELD,
        ErpField("timeout_seconds", "Statement timeout (seconds)", number=float, hint="30 when empty"),
        RECEIPTS_FIELD,
        UNDELIVERED_FIELD,
        REFUNDS_FIELD,
    ),
    "rest": (
        ErpField("base_url", "Base URL", required=True, hint="the API paths are appended to it"),
        ErpField("auth_type", "Authentication", choices=AUTH_TYPES),
        ErpField("auth_header", "API key header", hint="api_key only; X-API-Key when empty"),
        ErpField("username", "Username", hint="basic only"),
        ErpField("token", "Bearer token", secret=True),
        ErpField("password", "Password", secret=True, hint="basic only"),
        ErpField("api_key", "API key", secret=True),
        ErpField("timeout_seconds", "Timeout per request (seconds)", number=float),
        CONNECT_FIELD,
        ErpField("max_tries", "Tries per call", number=int),
        RECEIPTS_FIELD,
        UNDELIVERED_FIELD,
        REFUNDS_FIELD,
    ),
    "files": (
        ErpField("outbound", "Outbound folder (we write)", required=True),
        ErpField("inbound", "Inbound folder (the ERP writes)", required=True),
        ErpField("state", "State folder", hint="optional"),
        ErpField("delimiter", "Delimiter", hint="a comma when empty"),
        ErpField("encoding", "Encoding", hint="utf-8 when empty"),
        RECEIPTS_FIELD,
        UNDELIVERED_FIELD,
        REFUNDS_FIELD,
    ),
    "tryton": (
        ErpField("url", "Server URL", secret=True, required=True),
        ErpField("database", "Database", required=True),
        ErpField("username", "Username", required=True),
        ErpField("password", "Password", secret=True, required=True),
        ErpField("warehouse", "Warehouse", hint="optional: the default warehouse's code"),
        ErpField("shipping_product", "Shipping product code", hint="SHIPPING when empty"),
        ErpField("tax_product", "Tax product code", hint="TAX when empty; only for refunds of older sales"),
        ErpField("tip_product", "Tip product code", hint="TIP when empty"),
        ErpField("duty_product", "Duty product code", hint="DUTY when empty"),
        ErpField("additional_fee_product", "Additional fee product code", hint="ADDITIONAL_FEE when empty"),
        ErpField("fee_product", "Fee product code", hint="optional: a line without product when empty"),
        ErpField("payment_term", "Payment term", hint="optional"),
        ErpField("owner_category", "Owner category", hint="Owner when empty: its sub-categories name account owners"),
        CONNECT_FIELD,
        ErpField("read_timeout_seconds", "Timeout per call (seconds)", number=float, hint="30 when empty"),
        RECEIPTS_FIELD,
        UNDELIVERED_FIELD,
    ),
}
REST_AUTH_SECRETS = {"bearer": ("token",), "basic": ("username", "password"), "api_key": ("api_key",), "none": ()}


def erp_values(kind: str | None, settings: dict) -> dict[str, Any]:
    values = dict(settings)
    auth = settings.get("auth")
    if isinstance(auth, dict):
        values["auth_type"] = auth.get("type") or "bearer"
        if auth.get("header"):
            values["auth_header"] = auth["header"]
    elif isinstance(auth, str):
        values["auth_type"] = auth
    return values


def parse_erp(form: MultiDict, current_kind: str | None, current_settings: dict, current_secrets: dict) -> FormResult:
    errors: dict[str, str] = {}
    kind = form.get("kind") or ""
    if kind not in ERP_FIELDS:
        return FormResult({"kind": f"choose one of {', '.join(ERP_FIELDS)}"})
    same_kind = kind == current_kind
    settings: dict[str, Any] = dict(current_settings) if same_kind else {}
    secrets: dict[str, str] = {}
    changed = []
    for f in ERP_FIELDS[kind]:
        value = (form.get(f"{kind}-{f.name}") or "").strip()
        settings.pop(f.name, None)
        if f.secret:
            if value:
                secrets[f.name] = value
                changed.append(f.name)
            elif same_kind and current_secrets.get(f.name):  # another kind's secret is not this one's
                secrets[f.name] = mask(current_secrets[f.name]) or "••••"
            elif f.required:
                errors[f.name] = "required"
            continue
        if not value:
            if f.required:
                errors[f.name] = "required"
            continue
        if f.number is not None:
            try:
                number = f.number(value)
            except ValueError:
                errors[f.name] = "a whole number" if f.number is int else "a number"
                continue
            if number < 0 or (number == 0 and not f.zero_allowed):
                errors[f.name] = "0 or more" if f.zero_allowed else "more than 0"
                continue
            settings[f.name] = number
        elif f.choices and value not in f.choices:
            errors[f.name] = f"one of {', '.join(f.choices)}"
        else:
            settings[f.name] = value
    settings.pop("offline_stock_priority", None)  # the ERP's own channels, whatever the kind
    offline = (form.get("offline_stock_priority") or "").strip()
    if offline:
        settings["offline_stock_priority"] = offline  # the schema below checks it; the loader makes it a number
    if kind == "rest":
        auth_type = settings.pop("auth_type", None) or "bearer"
        header = settings.pop("auth_header", None)
        settings.pop("auth", None)
        settings["auth"] = {"type": auth_type, **({"header": header} if header else {})}
        base = settings.get("base_url", "")
        if base and not str(base).startswith(("http://", "https://")):
            errors["base_url"] = "a web address starting with http:// or https://"
        for name in REST_AUTH_SECRETS.get(auth_type, ()):
            if not (secrets.get(name) or settings.get(name)):
                errors.setdefault(name, f"required for {auth_type} authentication")
    if kind == "sql" and secrets.get("url") and not secrets["url"].startswith("••••") and "://" not in secrets["url"]:
        errors["url"] = "a database URL such as postgresql://user:password@host/database"
    entry = {"kind": kind, **settings, **secrets}
    schema_errors = ConfigDocument().validate({"erp": entry})
    if schema_errors.get("erp"):
        for name, message in _field_errors(schema_errors["erp"]).items():
            errors.setdefault(name, message)
    return FormResult(errors, entry, tuple(changed))


def save_erp(rt: Runtime, result: FormResult) -> dict[str, int]:
    try:
        return load_config(rt, json.dumps({"erp": result.entry}))
    except ConfigError as exc:
        result.errors["_form"] = str(exc)
        return {}


# ---- mapping tables ---------------------------------------------------------------------------

MAPPING_INFO = {
    "sku": {
        "anchor": "skus",
        "title": "SKU overrides",
        "save": "Save SKU overrides",
        "source": "Store SKU",
        "target": "ERP SKU (item code)",
        "hint": "A store SKU the ERP knows under another code. Unlisted SKUs go to the ERP as they are.",
    },
    "stock_priority": {
        "anchor": "stock-priority",
        "title": "Last unit, per SKU",
        "save": "Save priorities",
        "source": "ERP SKU",
        "target": "Store slugs and offline, first goes first",
        "hint": "Stores sharing a warehouse get their shares rounded down; the units left over go one each, in "
        "this order, for this SKU (store slugs and offline, comma-separated; leave the store empty). Other "
        "SKUs follow the stores' stock priority.",
    },
    "location": {
        "anchor": "locations",
        "title": "Locations ↔ warehouses",
        "save": "Save locations",
        "source": "Store location id",
        "target": "ERP warehouse(s), comma-separated",
        "hint": "Which ERP warehouse's stock a store location shows, and where its shipments come from.",
    },
    "payment_method": {
        "anchor": "payment-methods",
        "title": "Payment methods",
        "save": "Save payment methods",
        "source": "Method or gateway",
        "target": "ERP payment method",
        "hint": "Our method (card, paypal, cod, bank_transfer, manual, gift_card, other) or the store's gateway "
        "name. Cash on delivery is cod: it enters the ERP unpaid.",
    },
    "shipping_method": {
        "anchor": "shipping-methods",
        "title": "Shipping methods",
        "save": "Save shipping methods",
        "source": "Shipping code or title",
        "target": "ERP carrier / service item",
        "hint": "The store's shipping line code (or its title) → the ERP's carrier or service item.",
    },
    "tax": {
        "anchor": "taxes",
        "title": "Tax codes",
        "save": "Save tax codes",
        "source": "Tax title",
        "target": "ERP tax code",
        "hint": "The tax line's title as the store names it (e.g. MA State Tax) → the ERP's tax code.",
    },
}
assert set(MAPPING_INFO) == set(MAPPING_KINDS)
PAYMENT_METHODS = ("card", "paypal", "cod", "bank_transfer", "manual", "gift_card", "other")


def parse_mapping(form: MultiDict, slugs: set[str]) -> tuple[list[dict], list[dict], dict[int, dict[str, str]]]:
    """The posted rows (for re-display), the rows to save, and errors by row index and field."""
    stores, sources, targets = form.getlist("store"), form.getlist("source"), form.getlist("target")
    removed = set(form.getlist("remove"))
    shown: list[dict] = []
    rows: list[dict] = []
    errors: dict[int, dict[str, str]] = {}
    seen: dict[tuple, int] = {}
    for i in range(max(len(sources), len(targets))):
        store = (stores[i] if i < len(stores) else "").strip() or None
        source = (sources[i] if i < len(sources) else "").strip()
        target = (targets[i] if i < len(targets) else "").strip()
        if not source and not target:
            continue
        row = {"store": store, "source": source, "target": target}
        shown.append(row)
        index = len(shown) - 1
        if str(i) in removed:
            row["removed"] = True
            continue
        problems: dict[str, str] = {}
        if store is not None and store not in slugs:
            problems["store"] = "no such store"
        if not source:
            problems["source"] = "required"
        elif len(source) > 255:
            problems["source"] = "at most 255 characters"
        if not target:
            problems["target"] = "required"
        elif len(target) > 255:
            problems["target"] = "at most 255 characters"
        key = (store, source)
        if source and key in seen:
            problems["source"] = "mapped twice" + (f" for {store}" if store else "")
        seen.setdefault(key, index)
        if problems:
            errors[index] = problems
        else:
            rows.append(row)
    return shown, rows, errors
