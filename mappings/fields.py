"""Marshmallow fields and helpers the storefront mappings share (Shopify, WooCommerce).

Every mapping describes only the fields it reads, turns marshmallow's nested errors into
"line_items[1].price: Not a valid number." and raises nothing but MappingError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, missing, validate

from mappings.errors import MappingError

MAX_ID = 2**63 - 1  # store ids are int64 at most; the bound also keeps str(id) safe
MAX_ERRORS = 5  # a support person needs the first few problems, not a wall of text
_UNSIGNED = re.compile(r"\d{1,13}(\.\d{1,8})?")  # "19.99"; no signs, exponents or "1_0"
_SIGNED = re.compile(r"-?\d{1,13}(\.\d{1,8})?")


class Amount(fields.Decimal):
    """An amount or tax rate: a decimal string, or a JSON number (rates and Woo prices are).

    Non-negative unless `signed`; `max_places` bounds the decimals a JSON number may carry (a PHP
    float such as 25/3 serialises with 15 of them).
    """

    def __init__(self, *, signed: bool = False, max_places: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.signed, self.max_places = signed, max_places

    def _validated(self, value: Any) -> Decimal:
        pattern = _SIGNED if self.signed else _UNSIGNED
        if isinstance(value, str) and not pattern.fullmatch(value):
            raise self.make_error("invalid", input=value)
        number = super()._validated(value)
        # Bounded, so later arithmetic cannot overflow on absurd input such as 1e400.
        low = -(Decimal(10) ** 13) if self.signed else Decimal(0)
        exponent = number.as_tuple().exponent  # "n"/"N"/"F" only for NaN/Infinity, which fields.Decimal refused
        too_fine = not isinstance(exponent, int) or exponent < -self.max_places
        if not low <= number < Decimal(10) ** 13 or too_fine:
            kind = "amount" if self.signed else "non-negative amount"
            raise ValidationError(f"Not a plausible {kind}.")
        return number


class Timestamp(fields.DateTime):
    """ISO-8601, returned in UTC. Without an offset the instant is ambiguous, unless the platform
    documents the field as UTC (`naive_is_utc`, e.g. WooCommerce's *_gmt dates)."""

    def __init__(self, *, naive_is_utc: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.naive_is_utc = naive_is_utc

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.utcoffset() is None:
            if not self.naive_is_utc:
                raise ValidationError("Timestamp has no UTC offset (expected e.g. 2026-11-20T10:15:00-05:00).")
            return parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:  # year 1 or 9999 shifted out of range
            raise ValidationError("Timestamp out of range.") from exc


_INVALID = {"_schema": ["Invalid input type."]}  # what a nested schema says of a value that is no object


class MoneySet(fields.Field):
    """Shopify's money set, {"shop_money": {"amount", "currency_code"}, "presentment_money": ...}: loaded and
    refused as the nested schemas it stands for would be (the same values, messages and paths), without a schema
    load per level. A nested load per set was most of an order's mapping time: an order has dozens (issue 18).
    `presentment`: its presentment_money is read too (else it is left out, as unknown fields are)."""

    def __init__(self, *, signed: bool = False, presentment: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.twins = ("shop_money", "presentment_money") if presentment else ("shop_money",)
        self.bag: dict[str, fields.Field] = {
            "amount": Amount(signed=signed, required=True),
            "currency_code": currency(required=True),
        }

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> dict:
        if not isinstance(value, Mapping):
            raise ValidationError(_INVALID)
        loaded: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for twin in self.twins:
            bag = value.get(twin, missing)
            if bag is None or bag is missing:
                if twin == "shop_money":
                    errors[twin] = ["Field may not be null." if bag is None else "Missing data for required field."]
                else:
                    loaded[twin] = None  # optional: absent or null alike
            elif not isinstance(bag, Mapping):
                errors[twin] = _INVALID
            else:
                loaded[twin], problems = self._bag(bag)
                if problems:
                    errors[twin] = problems
        if errors:
            raise ValidationError(errors)
        return loaded

    def _bag(self, bag: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        loaded, problems = {}, {}
        for name, field in self.bag.items():
            try:
                loaded[name] = field.deserialize(bag.get(name, missing), name, bag)
            except ValidationError as exc:
                problems[name] = exc.messages
        return loaded, problems


def opt(field_cls: Callable[..., fields.Field] = fields.String, **kw: Any) -> fields.Field:
    """`field_cls` is a Field class or a factory of one (ident, currency)."""
    return field_cls(allow_none=True, load_default=None, **kw)


def ident(minimum: int = 1, **kw: Any) -> fields.Integer:
    """An integer id; WooCommerce uses 0 for "none" (guest customer, no variation)."""
    return fields.Integer(strict=True, validate=validate.Range(min=minimum, max=MAX_ID), **kw)


def currency(**kw: Any) -> fields.String:
    return fields.String(validate=validate.Regexp(r"[A-Z]{3}\Z", error="Not an ISO 4217 currency code."), **kw)


def list_of(schema: type[Schema]) -> fields.List:
    return fields.List(fields.Nested(schema), allow_none=True, load_default=list)


class Base(Schema):
    class Meta:
        unknown = EXCLUDE


def load(schema: Schema, payload: Any, what: str) -> dict:
    """schema.load, with every problem flattened into one MappingError message."""
    if not isinstance(payload, dict):
        raise MappingError(f"payload: expected a JSON object ({what}), got {type(payload).__name__}")
    try:
        return schema.load(payload)
    except ValidationError as exc:
        problems = flatten(exc.messages)
        more = f" (and {len(problems) - MAX_ERRORS} more)" if len(problems) > MAX_ERRORS else ""
        raise MappingError("; ".join(problems[:MAX_ERRORS]) + more) from None


def blank_to_none(value: str | None) -> str | None:
    return value if value and value.strip() else None


def flatten(messages: Any, path: str = "") -> list[str]:
    """marshmallow's nested errors -> ["line_items[1].price: Not a valid number.", ...]."""
    if isinstance(messages, dict):
        return [msg for key, sub in messages.items() for msg in flatten(sub, _join(path, key))]
    text = " ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
    return [f"{path or 'payload'}: {text}"]


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return path if key == "_schema" else f"{path}.{key}" if path else str(key)
