"""What a request to the pages or the API may carry, checked once for every view: text PostgreSQL can
store (no NUL), ids and page numbers a BIGINT holds, times inside the years 1–9999 once in UTC, and JSON
nested no deeper than people's data ever is. Anything else is refused with a 400 naming the field,
before it reaches a query that would fail with a 500 (the webhook doors never come here).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypedDict

from flask import Response, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound

from mappings.utc import as_utc

MAX_JSON_DEPTH = 64  # an order payload is under 10 levels deep; Python's parser gives up near 1000
MAX_ID = 2**63 - 1  # BIGINT, the widest id column
MAX_PAGE = 1_000_000
NUL = "\x00"


# ---- fields: what PostgreSQL can store, said in the OpenAPI document too ------------------------
# (shared by the API's schemas and the configuration loader's)


class BadInputData(TypedDict):
    message: str
    errors: dict[str, list[str]]  # {field: [message]}


class BadInput(BadRequest):
    """A 400 that names the field; rendered as JSON for the API and as the error page for people."""

    def __init__(self, field: str, message: str) -> None:
        text = f"{field!r}: {message}"  # quoted: the page capitalises the first letter of a message
        super().__init__(text)
        self.field = field
        self.data: BadInputData = {"message": text, "errors": {field: [message]}}


class TooDeep(ValueError):
    """JSON nested deeper than MAX_JSON_DEPTH."""


class OutOfRange(ValueError):
    """A time that is outside the years 1 to 9999 once in UTC."""


# ---- the request-wide guard --------------------------------------------------------------------


def check_request() -> None:
    """Before every page and API view: refuse NUL in any query, form or path value, ids past a
    BIGINT, and JSON bodies nested too deep (the JSON parsers would fail with RecursionError)."""
    for source in (request.args, request.form):
        for key, value in source.items(multi=True):
            if NUL in key or NUL in value:
                raise BadInput(key.replace(NUL, "\\u0000"), "may not contain a NUL character (\\u0000)")
    for key, value in (request.view_args or {}).items():
        if isinstance(value, str) and NUL in value:
            raise BadInput(key, "may not contain a NUL character (\\u0000)")
        if isinstance(value, int) and value > MAX_ID:  # an id no row can have
            noun = key.removesuffix("_id")
            raise NotFound(f"no {noun} {value}")
    if request.is_json:
        try:
            loads_bounded(request.get_data(cache=True))
        except TooDeep as exc:
            raise BadInput("body", str(exc)) from None
        except ValueError:
            pass  # not JSON: the view's own parser says so, as before


def refusal(error: BadInput) -> Response | tuple[str, int]:
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        response = jsonify(status=400, **error.data)
        response.status_code = 400
        return response
    from connector.web.views.common import error_page

    return error_page(400, error.data["message"])


# ---- parsing helpers for views -----------------------------------------------------------------


def loads_bounded(text: str | bytes) -> Any:
    """json.loads, refusing (TooDeep, a ValueError) anything nested deeper than MAX_JSON_DEPTH."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    if depth_exceeds(value, MAX_JSON_DEPTH):
        raise TooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether lists/objects nest more than `limit` levels (iterative: no recursion limit to hit)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False


def page_number(raw: str | None) -> int:
    """A page number from a query string: 1 when absent, else 1 to MAX_PAGE (BadInput otherwise)."""
    if raw is None or not raw.strip():
        return 1
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PAGE:
        raise BadInput("page", f"a whole number from 1 to {MAX_PAGE}")
    return value


def row_id(raw: str) -> int | None:
    """An id typed by a person: None unless it is a whole number some row could have."""
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 0 < value <= MAX_ID else None


def to_utc(value: datetime) -> datetime:
    """The time in UTC; ValueError when that falls outside the years 1–9999 (0001-01-01T00:00+14:00)."""
    try:
        return as_utc(value)
    except OverflowError:
        raise OutOfRange("outside the years 1 to 9999 once converted to UTC") from None
