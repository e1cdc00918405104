"""The canonical order and refund as JSON (mappings.canonical_json): every field of the model is in
it, everything comes back exactly, and JSON that is not a canonical order is refused with the field named."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from marshmallow import ValidationError

from mappings import canonical
from mappings.canonical import (
    Address,
    Customer,
    Discount,
    FeeLine,
    Money,
    Order,
    Payment,
    Refund,
    RefundFee,
    RefundLine,
    TaxLine,
    Transaction,
)
from mappings.canonical_json import (
    CHECKS,
    order_from_json,
    order_to_json,
    refund_from_json,
    refund_to_json,
    schema_for,
)
from platforms.shopify.mapping import order_from_shopify
from platforms.shopify.refunds import refund_from_shopify
from tests.mappings.fuzz import HOSTILE, paths, replaced

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
AT = datetime(2026, 11, 20, 15, 15, 0, 250000, tzinfo=UTC)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def _full_order() -> Order:
    """A Shopify fixture's order with every optional field filled, so each one makes the round trip."""
    order = order_from_shopify(json.loads((FIXTURES / "order_discount_multiline.json").read_text()), "northwind")
    gst = TaxLine("GST", Decimal("0.05"), usd("0.05"), "GST5")
    return dataclasses.replace(
        order,
        customer=Customer("ann@example.com", "Ann", "Lee", "+15550100", "77", True, "K1A 0B1"),
        billing_address=Address("Ann", "Lee", "Acme", "1 Main St", "Unit 2", "Town", "ON", "K1A 0B1", "CA", "+1555"),
        shipping_address=Address("Zoë", "Lee", "Acme", "2 Main St", "Rear", "Town", "ON", "K1A 0B2", "CA", "+1556"),
        lines=tuple(
            dataclasses.replace(
                line,
                tax_lines=(gst,),
                product_id="p1",
                variant_id="v1",
                variant_title="Large",
                requires_shipping=False,
                subtotal=usd("9.999"),
                removed=1,
                warehouse="BER",
            )
            for line in order.lines
        ),
        shipping_lines=tuple(dataclasses.replace(s, tax_lines=(gst,)) for s in order.shipping_lines),
        fee_lines=(FeeLine("Tip", usd("1.00"), (gst,), "tip", "line-9"),),
        discounts=(Discount("SAVE", "percentage", usd("-0.00")),),
        tax_lines=(TaxLine("X", Decimal("1E-7"), usd("1E+2"), "X1"),),
        totals=dataclasses.replace(order.totals, fee_total=usd("1.00")),
        payment=Payment("paid", "shopify_payments", "card", "tr-1", AT),
        presentment_currency="EUR",
        presentment_total=Money(Decimal("10.10"), "EUR"),
        cancel_reason="customer",
        note="a note\nwith lines \u2028 and \u0000",
        note_attributes={"gift": "yes", "ü": ""},
        tags=("vip", "wholesale"),
        transactions=(Transaction("1", "sale", "success", "gw", "card", usd("3"), "auth-1", AT, "0"),),
        warehouse="MAIN",
    )


def _full_refund() -> Refund:
    refund = refund_from_shopify(
        json.loads((FIXTURES / "refunds" / "fee_refund_tip.json").read_text()), "northwind", "USD"
    )
    return dataclasses.replace(
        refund,
        reason="damaged",
        lines=(RefundLine("1", "SKU-1", 2, usd("4.00"), usd("0.40"), True, "loc-1", "WH1"),),
        fees=(RefundFee("duty", "Duty", usd("1"), usd("0.10"), "line-5"),),
    )


def _left_at_default(value: Any, path: str = "") -> list[str]:
    """The fields, anywhere in a canonical object, that still hold their default (so go untested)."""
    if isinstance(value, tuple):
        return [name for n, item in enumerate(value) for name in _left_at_default(item, f"{path}[{n}]")]
    if not dataclasses.is_dataclass(value):
        return []
    found = []
    for spec in dataclasses.fields(value):
        held = getattr(value, spec.name)
        default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
        if held == default:
            found.append(f"{path}.{spec.name}")
        found += _left_at_default(held, f"{path}.{spec.name}")
    return found


def _canonical_classes() -> list[type]:
    return [c for c in vars(canonical).values() if isinstance(c, type) and dataclasses.is_dataclass(c)]


@pytest.mark.parametrize("model", _canonical_classes(), ids=lambda c: c.__name__)
def test_every_field_of_the_model_is_in_its_json_in_order(model: type) -> None:
    schema = schema_for(model)()
    specs = dataclasses.fields(model)
    assert list(schema.fields) == [spec.name for spec in specs]
    required = [s.name for s in specs if s.default is dataclasses.MISSING and s.default_factory is dataclasses.MISSING]
    assert [name for name, f in schema.fields.items() if f.required] == required


def test_each_extra_check_names_a_field_of_the_model() -> None:
    assert all(name in {s.name for s in dataclasses.fields(model)} for model, name in CHECKS)


def test_an_order_with_every_field_filled_comes_back_exactly() -> None:
    order = _full_order()
    assert _left_at_default(order) == []
    assert order_from_json(json.loads(json.dumps(order_to_json(order)))) == order


def test_a_refund_with_every_field_filled_comes_back_exactly() -> None:
    refund = _full_refund()
    assert _left_at_default(refund) == []
    assert refund_from_json(json.loads(json.dumps(refund_to_json(refund)))) == refund


def test_amounts_are_exact_strings_and_times_carry_their_offset() -> None:
    data = order_to_json(_full_order())
    assert data["presentment_total"] == {"amount": "10.10", "currency": "EUR"}
    # Fixed-point, never exponents: what a person reads on the console.
    assert data["tax_lines"][0]["rate"] == "0.0000001" and data["tax_lines"][0]["amount"]["amount"] == "100"
    assert data["payment"]["paid_at"] == "2026-11-20T15:15:00.250000+00:00"
    assert isinstance(data["tags"], list) and isinstance(data["lines"][0]["tax_lines"], list)


def test_a_time_in_another_offset_loads_as_the_same_instant_in_utc() -> None:
    data = order_to_json(_full_order())
    data["placed_at"] = AT.astimezone(timezone(timedelta(hours=5))).isoformat()
    loaded = order_from_json(data)
    assert loaded.placed_at == AT and loaded.placed_at.tzinfo == UTC


@pytest.mark.parametrize(
    ("path", "value", "refused"),
    [
        (("placed_at",), "2026-11-20T15:15:00", "timestamp has no timezone"),
        (("totals", "total", "amount"), "NaN", "Special numeric values (nan or infinity) are not permitted."),
        (("totals", "total", "amount"), "ten", "Not a valid number."),
        (("totals", "total", "currency"), "EURO", "must be a three-letter ISO 4217 code"),
        (("totals", "total", "currency"), "US1", "must be a three-letter ISO 4217 code"),
        (("fee_lines", 0, "kind"), "bonus", "Must be one of: fee, tip, duty, additional_fee."),
        (("lines", 0, "quantity"), "3", "Not a valid integer."),
        (("lines", 0, "line_no"), 1.5, "Not a valid integer."),
        (("customer", "first_name"), None, "Field may not be null."),
        (("tags",), "vip", "Not a valid list."),
        (("note_attributes",), {"gift": 1}, "Not a valid string."),
        (("transactions", 0, "gateway"), None, "Field may not be null."),
        (("number",), ..., "Missing data for required field."),
        (("lines", 0, "sku"), ..., "Missing data for required field."),
        (("payment", "colour"), "red", "Unknown field."),
    ],
)
def test_json_that_is_no_canonical_order_is_refused_with_the_field_named(path: tuple, value: Any, refused: str) -> None:
    data = order_to_json(_full_order())
    if value is ...:
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
    else:
        data = replaced(data, path, value)
    with pytest.raises(ValidationError) as info:
        order_from_json(data)
    messages: Any = info.value.messages
    for key in path:
        messages = messages[key]
    assert refused in json.dumps(messages)


@pytest.mark.fuzz
@pytest.mark.parametrize(
    ("to_json", "from_json", "build"),
    [(order_to_json, order_from_json, _full_order), (refund_to_json, refund_from_json, _full_refund)],
)
def test_every_value_replaced_with_hostile_input_is_loaded_or_refused_never_a_crash(to_json, from_json, build) -> None:  # type: ignore[no-untyped-def]
    data = to_json(build())
    failures = []
    for path in paths(data):
        for value in HOSTILE:
            try:
                from_json(replaced(data, path, value))
            except ValidationError as exc:
                if not exc.messages:
                    failures.append(f"{path} <- {value!r}: refused without saying why")
            except Exception as exc:
                failures.append(f"{path} <- {value!r}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures[:20])


def _fixture_orders() -> list[Order]:
    from platforms.woocommerce.mapping import order_from_woocommerce

    shopify = [
        order_from_shopify(json.loads(p.read_text()), "northwind") for p in sorted(FIXTURES.glob("order_*.json"))
    ]
    woo = [
        order_from_woocommerce(json.loads(p.read_text()), "woo")
        for p in sorted((FIXTURES.parent / "woocommerce").glob("order_*.json"))
    ]
    return [_full_order(), *shopify, *woo]


def test_the_json_written_is_what_the_schemas_dump_gives_field_for_field_in_order() -> None:
    # order_to_json writes without marshmallow's per-field machinery (issue 18): the same text, keys in the same order
    for order in _fixture_orders():
        assert json.dumps(order_to_json(order)) == json.dumps(schema_for(Order)().dump(order))
    refund = _full_refund()
    assert json.dumps(refund_to_json(refund)) == json.dumps(schema_for(Refund)().dump(refund))
