"""Canonical model <-> the JSON documents of the REST ERP contract (docs/erp-rest.md, "ERP over REST/JSON").

Pure, no I/O. The wire rules an ERP team implements:
- every amount and quantity is a decimal STRING ("204.00", "3"), never a JSON number, so nothing
  passes through a binary float;
- every time is ISO-8601 in UTC with a `Z` ("2026-11-20T15:16:12Z");
- ids the ERP hands back are strings; our references (`external_ref`, `order_ref`) are the
  connector's idempotency keys, `shopify:<store>:<order id>` and the like.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from mappings.attribution import Attribution
from mappings.canonical import (
    Address,
    Customer,
    ErpRefund,
    ErpRefundLine,
    Money,
    Order,
    Receipt,
    Refund,
    Shipment,
    ShipmentLine,
    StockLevel,
    Undelivered,
)
from mappings.customers import normalise_email, normalise_phone
from mappings.utc import as_utc, utc_text

if TYPE_CHECKING:  # the adapter layer's record; only its attributes are read here
    from adapters.erp.base import PaymentRecord


class DocumentError(ValueError):
    """A document the ERP sent does not follow the contract (the message names the field)."""


# ---- canonical -> wire -----------------------------------------------------------------------


def decimal_text(value: Decimal | int) -> str:
    """A decimal as plain text: no exponent ("1E+1" -> "10"), the store's own places kept."""
    return format(Decimal(value), "f")


def rest_time(value: datetime) -> str:
    """A time as the REST contract writes it: ISO-8601 UTC with a `Z`."""
    return utc_text(value, zulu=True)


def _money(value: Money) -> str:
    return decimal_text(value.amount)


def _address(address: Address | None) -> dict[str, str] | None:
    if address is None:
        return None
    return {
        "name": " ".join(p for p in (address.first_name, address.last_name) if p),
        "company": address.company,
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "region": address.region,
        "postal_code": address.postal_code,
        "country_code": address.country_code,
        "phone": address.phone,
    }


def customer_document(customer: Customer, external_ref: str) -> dict[str, Any]:
    """POST /customers. `external_ref` is the connector's key for this person (`email:…`, `guest`, …)."""
    return {
        "external_ref": external_ref,
        "name": customer.name,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": normalise_email(customer.email),
        "phone": normalise_phone(customer.phone),
        "accepts_marketing": customer.accepts_marketing,
        "postcode": customer.postcode.strip() or None,
    }


def attribution_document(attribution: Attribution, total: Money) -> dict[str, Any]:
    """Who has the credit for the order: the channel, the account's owner (null: none), the owner's share
    of the credit and its amount (the web channel has the rest)."""
    return {
        "channel": attribution.channel,
        "owner": attribution.owner,
        "owner_share": decimal_text(attribution.owner_share),
        "owner_credit": _money(attribution.owner_credit(total)),
    }


def order_document(order: Order, customer_id: str, attribution: Attribution | None = None) -> dict[str, Any]:
    """POST /orders (create) and PUT /orders/{ref} (replace while the ERP still allows)."""
    t = order.totals
    return {
        "external_ref": order.external_ref,
        "source": order.source,
        "store": order.store,
        "number": order.number,
        "customer_id": str(customer_id),
        "customer_email": normalise_email(order.customer.email),
        "currency": order.currency,
        "taxes_included": order.taxes_included,
        "placed_at": rest_time(order.placed_at),
        "source_updated_at": rest_time(order.updated_at),
        "payment_status": order.payment.status,
        "payment_method": order.payment.method or "other",
        "payment_gateway": order.payment.gateway,
        "shipping_method": ", ".join(s.title for s in order.shipping_lines),
        "note": order.note,
        "totals": {
            "subtotal": _money(t.subtotal),
            "discount_total": _money(t.discount_total),
            "shipping_total": _money(t.shipping_total),
            "tax_total": _money(t.tax_total),
            "fee_total": _money(t.fees),
            "tip_total": _money(order.fees_of("tip")),
            "duty_total": _money(order.fees_of("duty")),
            "additional_fee_total": _money(order.fees_of("additional_fee")),
            "total": _money(t.total),
        },
        # What the buyer paid in their own currency, for matching an invoice or the processor's payout.
        "presentment": (
            {"currency": order.presentment_total.currency, "total": _money(order.presentment_total)}
            if order.presentment_total
            else None
        ),
        "lines": [
            {
                "line_no": line.line_no,
                "source_line_id": line.external_id,
                "sku": line.sku,
                "description": line.title + (f" - {line.variant_title}" if line.variant_title else ""),
                "quantity": decimal_text(line.quantity),
                "unit_price": _money(line.unit_price),
                "discount_total": _money(line.discount_total),
                "tax_total": _money(line.tax_total),
                "line_total": _money(line.line_total),
                "warehouse": line.warehouse,  # ships from (null: the order's warehouse, or the ERP's default)
            }
            for line in order.lines
        ],
        "shipping_lines": [
            {
                "code": s.code,
                "title": s.title,
                "price": _money(s.price),
                "discount_total": _money(s.discount_total),
                "tax_total": decimal_text(sum((tl.amount.amount for tl in s.tax_lines), Decimal(0))),
            }
            for s in order.shipping_lines
        ],
        "fee_lines": [
            {
                "kind": f.kind,
                "title": f.title,
                "amount": _money(f.amount),
                "source_line_id": f.source_line_id,
                "tax_total": decimal_text(sum((tl.amount.amount for tl in f.tax_lines), Decimal(0))),
            }
            for f in order.fee_lines
        ],
        "billing_address": _address(order.billing_address),
        "shipping_address": _address(order.shipping_address),
        "attribution": attribution_document(attribution, t.total) if attribution is not None else None,
        "warehouse": order.warehouse,  # the ship-from warehouse the routing rules chose (null: the ERP's default)
    }


def payment_document(payment: PaymentRecord) -> dict[str, Any]:
    """POST /orders/{ref}/payments; `key` is the payment's idempotency key."""
    return {
        "key": payment.key,
        "order_ref": payment.order_ref,
        "amount": _money(payment.amount),
        "currency": payment.amount.currency,
        "method": payment.method,
        "gateway": payment.gateway,
        "transaction_ref": payment.transaction_ref,
        "paid_at": rest_time(payment.paid_at),
    }


def cancel_document(reason: str) -> dict[str, Any]:
    """POST /orders/{ref}/cancel."""
    return {"reason": reason}


def credit_note_document(refund: Refund, order_ref: str) -> dict[str, Any]:
    """POST /orders/{ref}/credit-notes; `external_ref` is the refund's idempotency key."""
    subtotal = sum((line.subtotal.amount for line in refund.lines), Decimal(0))
    tax = sum((line.tax.amount for line in refund.lines), Decimal(0))
    return {
        "external_ref": refund.external_ref,
        "order_ref": order_ref,
        "currency": refund.currency,
        "subtotal": decimal_text(subtotal),
        "tax_total": decimal_text(tax),
        "shipping_total": _money(refund.shipping),
        # Fees given back, each with its tax: all of them, then the kinds finance books apart.
        "fee_total": _money(refund.fee_total),
        "tip_total": _money(refund.fees_of("tip")),
        "duty_total": _money(refund.fees_of("duty")),
        "additional_fee_total": _money(refund.fees_of("additional_fee")),
        "adjustment": _money(refund.adjustment),
        "total": _money(refund.total),
        "reason": refund.reason,
        "issued_at": rest_time(refund.created_at),
        "lines": [
            {
                "line_no": n,
                "source_line_id": line.line_external_id,
                "sku": line.sku,
                "quantity": decimal_text(line.quantity),
                "subtotal": _money(line.subtotal),
                "tax_total": _money(line.tax),
                "restock": line.restock,
                "warehouse": line.warehouse,  # where restocked units go back (null: the ERP's default)
            }
            for n, line in enumerate(refund.lines, start=1)
        ],
        "fee_lines": [
            {
                "kind": f.kind,
                "title": f.title,
                "amount": _money(f.amount),
                "tax_total": _money(f.tax),
                "source_line_id": f.source_line_id,
            }
            for f in refund.fees
        ],
    }


# ---- wire -> canonical -----------------------------------------------------------------------


def field(doc: Any, name: str, where: str) -> Any:
    if not isinstance(doc, dict) or name not in doc or doc[name] is None:
        raise DocumentError(f"{where}.{name} is missing")
    return doc[name]


def parse_decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DocumentError(f"{where} is not a decimal: {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise DocumentError(f"{where} is not a decimal: {value!r}") from None
    if not number.is_finite():
        raise DocumentError(f"{where} is not a finite decimal: {value!r}")
    return number


def parse_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise DocumentError(f"{where} is not an ISO-8601 time: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise DocumentError(f"{where} is not an ISO-8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise DocumentError(f"{where} has no time zone: {value!r}")
    return as_utc(parsed)


def _text(doc: dict, name: str) -> str:
    value = doc.get(name)
    return "" if value is None else str(value)


def stock_level_from_document(doc: Any, where: str = "stock item") -> StockLevel:
    return StockLevel(
        sku=str(field(doc, "sku", where)),
        warehouse=str(field(doc, "warehouse", where)),
        on_hand=parse_decimal(field(doc, "on_hand", where), f"{where}.on_hand"),
        updated_at=parse_time(field(doc, "updated_at", where), f"{where}.updated_at"),
    )


def _lines(doc: Any, where: str) -> list[tuple[str, Any]]:
    """The document's `lines`, each with where it is ("shipment.lines[2]") for the error messages."""
    lines = field(doc, "lines", where)
    if not isinstance(lines, list):
        raise DocumentError(f"{where}.lines is not a list")
    return [(f"{where}.lines[{n}]", line) for n, line in enumerate(lines)]


def _units(line: Any, at: str) -> int:
    quantity = parse_decimal(field(line, "quantity", at), f"{at}.quantity")
    if quantity != quantity.to_integral_value():
        raise DocumentError(f"{at}.quantity is not a whole number: {quantity}")
    return int(quantity)


def shipment_from_document(doc: Any, where: str = "shipment") -> Shipment:
    parsed_lines = [ShipmentLine(str(field(line, "sku", at)), _units(line, at)) for at, line in _lines(doc, where)]
    return Shipment(
        ref=str(field(doc, "ref", where)),
        order_ref=str(field(doc, "order_ref", where)),
        lines=tuple(parsed_lines),
        shipped_at=parse_time(field(doc, "shipped_at", where), f"{where}.shipped_at"),
        carrier=_text(doc, "carrier"),
        tracking_number=_text(doc, "tracking_number"),
        tracking_url=_text(doc, "tracking_url"),
        warehouse=_text(doc, "warehouse"),
    )


def receipt_from_document(doc: Any, where: str = "receipt") -> Receipt:
    currency = _currency(doc, where)
    return Receipt(
        ref=str(field(doc, "ref", where)),
        order_ref=str(field(doc, "order_ref", where)),
        amount=Money(parse_decimal(field(doc, "amount", where), f"{where}.amount"), currency),
        received_at=parse_time(field(doc, "received_at", where), f"{where}.received_at"),
        method=_text(doc, "method"),
        reference=_text(doc, "reference"),
    )


def undelivered_from_document(doc: Any, where: str = "undelivered parcel") -> Undelivered:
    return Undelivered(
        ref=str(field(doc, "ref", where)),
        order_ref=str(field(doc, "order_ref", where)),
        reason=_text(doc, "reason"),
        returned_at=parse_time(field(doc, "returned_at", where), f"{where}.returned_at"),
    )


def _currency(doc: Any, where: str) -> str:
    currency = str(field(doc, "currency", where)).strip().upper()
    if len(currency) != 3:
        raise DocumentError(f"{where}.currency is not an ISO 4217 code: {currency!r}")
    return currency


def erp_refund_from_document(doc: Any, where: str = "refund") -> ErpRefund:
    """A credit note the ERP made itself (GET /refunds): lines of {sku, quantity, amount (tax included),
    restock (true/false), warehouse}, shipping and total, all in `currency`."""
    currency = _currency(doc, where)
    parsed = []
    for at, line in _lines(doc, where):
        quantity = _units(line, at)
        if quantity < 0:
            raise DocumentError(f"{at}.quantity is negative: {quantity}")
        restock = field(line, "restock", at)
        if not isinstance(restock, bool):
            raise DocumentError(f"{at}.restock is not true or false: {restock!r}")
        amount = parse_decimal(field(line, "amount", at), f"{at}.amount")
        parsed.append(
            ErpRefundLine(
                str(field(line, "sku", at)), int(quantity), Money(amount, currency), restock, _text(line, "warehouse")
            )
        )
    try:
        return ErpRefund(
            ref=str(field(doc, "ref", where)),
            order_ref=str(field(doc, "order_ref", where)),
            lines=tuple(parsed),
            shipping=Money(parse_decimal(doc.get("shipping") or "0", f"{where}.shipping"), currency),
            total=Money(parse_decimal(field(doc, "total", where), f"{where}.total"), currency),
            created_at=parse_time(field(doc, "created_at", where), f"{where}.created_at"),
            reason=_text(doc, "reason"),
        )
    except ValueError as exc:
        raise DocumentError(str(exc)) from None


# ---- the ERP side (the test fake, and a reference for ERP teams) ----------------------------


def shipment_document(shipment: Shipment, updated_at: datetime) -> dict[str, Any]:
    return {
        "ref": shipment.ref,
        "order_ref": shipment.order_ref,
        "warehouse": shipment.warehouse,
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "tracking_url": shipment.tracking_url,
        "shipped_at": rest_time(shipment.shipped_at),
        "updated_at": rest_time(updated_at),
        "lines": [{"sku": line.sku, "quantity": decimal_text(line.quantity)} for line in shipment.lines],
    }


def receipt_document(receipt: Receipt, updated_at: datetime) -> dict[str, Any]:
    return {
        "ref": receipt.ref,
        "order_ref": receipt.order_ref,
        "amount": decimal_text(receipt.amount.amount),
        "currency": receipt.amount.currency,
        "method": receipt.method,
        "reference": receipt.reference,
        "received_at": rest_time(receipt.received_at),
        "updated_at": rest_time(updated_at),
    }


def undelivered_document(parcel: Undelivered, updated_at: datetime) -> dict[str, Any]:
    return {
        "ref": parcel.ref,
        "order_ref": parcel.order_ref,
        "reason": parcel.reason,
        "returned_at": rest_time(parcel.returned_at),
        "updated_at": rest_time(updated_at),
    }


def erp_refund_document(refund: ErpRefund, updated_at: datetime) -> dict[str, Any]:
    currency = refund.total.currency
    return {
        "ref": refund.ref,
        "order_ref": refund.order_ref,
        "currency": currency,
        "lines": [
            {
                "sku": ln.sku,
                "quantity": decimal_text(ln.quantity),
                "amount": decimal_text(ln.amount.amount),
                "restock": ln.restock,
                "warehouse": ln.warehouse,
            }
            for ln in refund.lines
        ],
        "shipping": decimal_text(refund.shipping.amount),
        "total": decimal_text(refund.total.amount),
        "reason": refund.reason,
        "created_at": rest_time(refund.created_at),
        "updated_at": rest_time(updated_at),
    }
