"""Shopify's `returns/*` webhooks, read into what support staff need to see.

A return is the buyer's intent to send goods back; it moves no money and no stock by itself. What the
ERP books comes later through the refund that processing the return creates (`refunds/create`, its
lines restocked at a store location, see platforms.shopify.refunds). So a return is recorded against its
order and shown, not written to the ERP: the console then answers "is something on its way back, and
why?" before the credit note exists, and shows a return closed without a refund (an exchange).

Bodies, per Shopify's webhook reference (fields, 2026-01):
- returns/request, returns/approve: {id, admin_graphql_api_id, status, name, order: {id, admin_graphql_api_id},
  total_return_line_items, return_line_items: [{id, fulfillment_line_item: {id, line_item: {id}}, quantity,
  return_reason, return_reason_note, customer_note}], exchange_line_items, total_exchange_line_items,
  return_shipping_fees}
- returns/decline: {id, admin_graphql_api_id, status, order: {...}, decline: {reason, note}}
- returns/cancel, returns/close, returns/reopen: {id, admin_graphql_api_id, order_id, status}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STATUSES = ("requested", "open", "declined", "canceled", "closed")
MAX_LINES_SHOWN = 20


@dataclass(frozen=True)
class ReturnedLine:
    line_item_id: str
    quantity: int
    reason: str  # Shopify's ReturnReason, lower case ("size_too_small", "unwanted", …); "" when not given
    note: str  # the reason note and the customer's note, as the buyer wrote them


@dataclass(frozen=True)
class ReturnNotice:
    return_id: str
    name: str  # "#1106-R2"; Shopify may send null
    order_id: str
    status: str  # one of STATUSES
    lines: tuple[ReturnedLine, ...]
    more_lines: int  # lines the body counts but does not list (total_return_line_items − listed)
    exchanges: int  # exchange lines: goods sent out in place of the returned ones
    declined_because: str

    def describe(self, skus: Mapping[str, str] | None = None) -> str:
        """The return in words: "#1106-R2 open: 1 × BEANIE-RED (size too small: 'too tight')"."""
        skus = skus or {}
        parts = []
        for line in self.lines[:MAX_LINES_SHOWN]:
            why = ", ".join(x for x in (line.reason.replace("_", " "), repr(line.note) if line.note else "") if x)
            parts.append(
                f"{line.quantity} × {skus.get(line.line_item_id) or f'line {line.line_item_id}'}"
                + (f" ({why})" if why else "")
            )
        more = max(0, len(self.lines) - MAX_LINES_SHOWN) + self.more_lines
        if more > 0:
            parts.append(f"{more} more line(s)")
        text = f"{self.name or 'return ' + self.return_id} {self.status}"
        if parts:
            text += ": " + ", ".join(parts)
        if self.exchanges:
            text += f"; {self.exchanges} exchange line(s) sent in their place"
        if self.declined_because:
            text += f"; declined: {self.declined_because}"
        return text


def return_from_shopify(payload: dict) -> ReturnNotice:
    """The body has passed platforms.topics' check (an id, a known status, the order named)."""
    order = _obj(payload.get("order"))
    listed = _rows(payload.get("return_line_items"))
    lines = tuple(line for line in map(_line, listed) if line is not None)
    total = payload.get("total_return_line_items")
    exchanges = payload.get("total_exchange_line_items")
    if type(exchanges) is not int or exchanges < 0:
        exchanges = len(_rows(payload.get("exchange_line_items")))
    decline = _obj(payload.get("decline"))
    return ReturnNotice(
        return_id=str(payload["id"]),
        name=_text(payload.get("name")),
        order_id=str(order.get("id") if order.get("id") is not None else payload.get("order_id")),
        status=str(payload["status"]).lower(),
        lines=lines,
        more_lines=max(0, (total if type(total) is int else len(listed)) - len(lines)),
        exchanges=exchanges,
        declined_because=", ".join(
            x for x in (_text(decline.get("reason")).replace("_", " "), _text(decline.get("note"))) if x
        ),
    )


def _line(raw: dict) -> ReturnedLine | None:
    fulfilled = _obj(raw.get("fulfillment_line_item"))
    item = _obj(fulfilled.get("line_item"))
    quantity = raw.get("quantity")
    if item.get("id") is None or type(quantity) is not int:
        return None  # nothing a person could act on: counted in more_lines instead
    notes = [_text(raw.get(key)) for key in ("return_reason_note", "customer_note")]
    return ReturnedLine(
        line_item_id=str(item["id"]),
        quantity=quantity,
        reason=_text(raw.get("return_reason")).lower(),
        note=" / ".join(n for n in notes if n),
    )


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _rows(value: Any) -> list[dict]:
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def _text(value: Any, limit: int = 200) -> str:
    return str(value).strip()[:limit] if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
