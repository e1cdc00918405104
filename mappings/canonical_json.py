"""The canonical order and refund as JSON: what the inbox keeps of each event, and the console shows.

The marshmallow schemas are derived from the dataclasses of mappings.canonical, one field per
dataclass field, from its type hint and default: a field added to the model is in the JSON at once,
and there is no second list of fields to keep in step. Loading validates as the types say (a field
without a default is required, None only where the hint allows it, no unknown keys); the few checks
a type cannot say are in CHECKS.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, post_load, validate

from mappings.canonical import FEE_KINDS, FeeLine, Money, Order, Refund, RefundFee
from mappings.utc import as_utc


class AwareDateTime(fields.DateTime):
    """A datetime that is always timezone-aware UTC once loaded or dumped."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            raise ValidationError("timestamp has no timezone")
        return as_utc(parsed)


def _iso_4217(value: str) -> None:
    if len(value) != 3 or not value.isalpha():
        raise ValidationError("must be a three-letter ISO 4217 code")


# What a field's type does not say: the checks its loaded value must also pass.
CHECKS: dict[tuple[type, str], Callable[[Any], Any]] = {
    (Money, "currency"): _iso_4217,
    (FeeLine, "kind"): validate.OneOf(FEE_KINDS),
    (RefundFee, "kind"): validate.OneOf(FEE_KINDS),
}


class _Canonical(Schema):
    """A schema derived from one canonical dataclass (schema_for): loads into an instance of it."""

    model: ClassVar[type]
    tuples: ClassVar[tuple[str, ...]]  # the fields the model holds as tuples: JSON has lists

    class Meta:
        register = False  # derived classes stay out of marshmallow's registry of names

    @post_load
    def make(self, data: dict, **_: object) -> Any:
        for name in self.tuples:
            data[name] = tuple(data[name])
        try:
            return self.model(**data)
        except (TypeError, ValueError) as exc:  # the model's own checks (e.g. Money's): invalid, never a crash
            raise ValidationError(str(exc)) from exc


def _without_none(hint: Any) -> tuple[Any, bool]:
    """The type a hint allows besides None, and whether it allows None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0], len(rest) < len(typing.get_args(hint))
    return hint, False


def _field(hint: Any, **options: Any) -> fields.Field:
    kind, nullable = _without_none(hint)
    if nullable:
        options["allow_none"] = True
    if kind is str:
        return fields.String(**options)
    if kind is bool:
        return fields.Boolean(**options)
    if kind is int:
        return fields.Integer(strict=True, **options)
    if kind is Decimal:
        return fields.Decimal(as_string=True, **options)
    if kind is datetime:
        return AwareDateTime(**options)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return fields.Nested(schema_for(kind), **options)
    args = typing.get_args(kind)
    if typing.get_origin(kind) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return fields.List(_field(args[0]), **options)
    if typing.get_origin(kind) is dict and args == (str, str):
        return fields.Dict(keys=fields.String(), values=fields.String(), **options)
    raise TypeError(f"no JSON form for {hint!r}: teach mappings.canonical_json._field the type")


@functools.cache
def schema_for(model: type) -> type[Schema]:
    """The schema of a canonical dataclass: each of its fields, in order, with its type's JSON form."""
    hints = typing.get_type_hints(model)
    declared: dict[str, Any] = {}
    for spec in dataclasses.fields(model):
        options: dict[str, Any] = {}
        if spec.default is not dataclasses.MISSING:
            options["load_default"] = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            options["load_default"] = spec.default_factory
        else:
            options["required"] = True
        if (model, spec.name) in CHECKS:
            options["validate"] = CHECKS[(model, spec.name)]
        declared[spec.name] = _field(hints[spec.name], **options)
    tuples = tuple(name for name in declared if typing.get_origin(_without_none(hints[name])[0]) is tuple)
    attributes = {**declared, "model": model, "tuples": tuples}
    return typing.cast(type[Schema], type(f"{model.__name__}Schema", (_Canonical,), attributes))


@functools.cache
def _schema(model: type) -> Schema:
    # Building a schema costs more than using it (about 1.4 ms for an order); one instance is safe to
    # share, since dump and load keep no state on it.
    return schema_for(model)()


def _json_form(hint: Any) -> Callable[[Any], Any]:
    """How a value of this type is written, as its field in schema_for writes it (format(…, "f") for a Decimal,
    isoformat for a time, a list for a tuple, None as None), without marshmallow's per-field machinery: the dump
    of an order was ~180 µs that way, a few percent of a drained order's CPU (issue 18). The test holds the two
    equal for every fixture."""
    kind, _ = _without_none(hint)
    write: Callable[[Any], Any]
    if kind in (str, bool, int):
        write = kind
    elif kind is Decimal:
        write = _decimal_text
    elif kind is datetime:
        write = datetime.isoformat
    elif isinstance(kind, type) and dataclasses.is_dataclass(kind):
        write = dumper_for(kind)
    elif typing.get_origin(kind) is tuple:
        each = _json_form(typing.get_args(kind)[0])
        write = functools.partial(_listed, each)
    elif typing.get_origin(kind) is dict:
        write = _text_dict
    else:
        raise TypeError(f"no JSON form for {hint!r}: teach mappings.canonical_json._json_form the type")
    return functools.partial(_unless_none, write)


def _unless_none(write: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else write(value)


def _decimal_text(value: Any) -> str:
    return format(Decimal(str(value)), "f")


def _listed(each: Callable[[Any], Any], values: Any) -> list:
    return [each(value) for value in values]


def _text_dict(value: Mapping) -> dict:
    return {str(k): str(v) for k, v in value.items()}


@functools.cache
def dumper_for(model: type) -> Callable[[Any], dict]:
    """The JSON of an instance of a canonical dataclass: what its schema's dump gives."""
    hints = typing.get_type_hints(model)
    forms = [(spec.name, _json_form(hints[spec.name])) for spec in dataclasses.fields(model)]

    def dump(value: Any) -> dict:
        return {name: write(getattr(value, name)) for name, write in forms}

    return dump


def order_to_json(order: Order) -> dict:
    return dumper_for(Order)(order)


def order_from_json(data: dict) -> Order:
    return _schema(Order).load(data)


def refund_to_json(refund: Refund) -> dict:
    return dumper_for(Refund)(refund)


def refund_from_json(data: dict) -> Refund:
    return _schema(Refund).load(data)
