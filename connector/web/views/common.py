"""Small helpers shared by the pages: the runtime, error pages, secret scrubbing, display filters."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Response, current_app, render_template
from markupsafe import Markup, escape
from sqlalchemy import select

from adapters.clock import utcnow
from connector.base.crypto import mask
from connector.base.models import ErpConnection, Store
from connector.base.runtime import Runtime
from connector.web.web_input import to_utc
from mappings import payloads
from mappings.utc import as_utc

MIN_SCRUB = 6  # shorter "secrets" would mangle ordinary words


def rt() -> Runtime:
    return current_app.extensions["connector.runtime"]


def error_page(status: int, message: str) -> Response:
    return Response(render_template("error.html", status=status, message=message), status)


# ---- secrets ----------------------------------------------------------------------------------


def secret_values(runtime: Runtime) -> list[str]:
    """Every stored secret in clear (in memory only), longest first, to scrub text shown to people."""
    values: set[str] = set()
    with runtime.sessions() as session:
        sealed = [s.secrets for s in session.scalars(select(Store))]
        sealed += [c.secrets for c in session.scalars(select(ErpConnection))]
    for token in sealed:
        try:
            opened = runtime.box.open(token)
        except Exception:  # a key problem is reported elsewhere; nothing to scrub with
            continue
        values.update(str(v) for v in opened.values() if v and len(str(v)) >= MIN_SCRUB)
    return sorted(values, key=len, reverse=True)


def scrub(text: str | None, values: list[str]) -> str:
    """Text from another system (an error, a connection test) with any known secret masked."""
    if not text:
        return text or ""
    for value in values:
        if value in text:
            text = text.replace(value, mask(value))
    return text


# ---- display ----------------------------------------------------------------------------------


def when(value: datetime | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        value = parsed
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | int | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    delta = (utcnow() - as_utc(value)).total_seconds()
    return "just now" if delta < 5 else f"{duration(delta)} ago"


def money(value: Any) -> str:
    if isinstance(value, dict) and "amount" in value:
        return f"{value['amount']} {value.get('currency') or ''}".strip()
    return "—" if value in (None, "") else str(value)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False, default=str)


def detail_pairs(detail: Any) -> list[tuple[str, str]]:
    """An audit entry's detail as (name, value) lines a person reads: `fields: name, email`, `from: 10.0.0.7`;
    a nested value as compact JSON in plain characters (no `\\u003c` escapes)."""
    if not isinstance(detail, dict):
        return [("", _plain(detail))]
    return [(str(key).replace("_", " "), _plain(value)) for key, value in detail.items()]


def _plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def pretty_body(body: bytes) -> tuple[str, bool]:
    """The raw payload as text; pretty-printed when it parses as JSON a handler could take (not nested
    deeper than any order: printing that would recurse as deep)."""
    text = body.decode("utf-8", "replace")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return text, False
    if payloads.problem(payload):
        return text, False
    return json.dumps(payload, indent=2, ensure_ascii=False), True


def parse_time(raw: str | None) -> datetime | None:
    """A datetime-local input (taken as UTC) or an ISO time with a zone, in UTC; ValueError when neither,
    or when UTC would fall outside the years 1 to 9999."""
    raw = (raw or "").strip()
    if not raw:
        return None
    return to_utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))


def time_input(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if value else ""


_CONFIG_LINK = re.compile(r"/config#([a-z-]+)")


def config_links(text: str | None, linked: bool = True) -> Markup:
    """Error text (escaped) whose "/config#skus"-style hints become links, for those who may open /config."""
    escaped = escape(text or "")
    if not linked:
        return Markup(escaped)
    return Markup(_CONFIG_LINK.sub(lambda m: f'<a href="/config#{m.group(1)}">/config#{m.group(1)}</a>', str(escaped)))


def unconfirmed(form: Any, matching: int, what: str) -> tuple[dict[str, str], int] | None:
    """None when the form's `expected_count` is the `matching` count a bulk action was confirmed for;
    otherwise the error for its confirm page and the status. `what` names the items, e.g. "event to retry"."""
    try:
        expected = int(form.get("expected_count", ""))
    except ValueError:
        return {"expected_count": "confirm the count first"}, 400
    if matching == expected:
        return None
    noun, _, rest = what.partition(" ")
    plural = f"{noun}{'s' if matching != 1 else ''}{' ' + rest if rest else ''}"
    return {
        "expected_count": (
            f"The filter now matches {matching} {plural}, not {expected}: things changed meanwhile. "
            "Nothing was done; check the new count and confirm again."
        )
    }, 409
