"""Error reports (Sentry) and structured logs, with secrets and personal data kept out of both.

The runtime calls `setup_sentry` once per process. With SENTRY_DSN set, sentry-sdk starts with its
Flask and RQ integrations (collecting no personal data by default) and every event passes through
`scrub`, which masks our stored secrets wherever they appear, drops request bodies, cookies and
customer fields, and masks card numbers and security codes in every string. LOG_FORMAT=json switches
the log lines to one JSON object each, carrying `store`, `event` and `order` when the code logs them
as `extra`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from connector.base.crypto import mask
from mappings import cardnumbers

if TYPE_CHECKING:  # sentry_sdk itself is imported only when a DSN is set
    from sentry_sdk.types import Event, Hint

_Event = TypeVar("_Event", bound=Mapping[str, Any])

PII_KEYS = re.compile(
    r"(email|phone|address|first_name|last_name|name|zip|postcode|password|token|secret|key|"
    r"authorization|cookie|signature|hmac)",
    re.IGNORECASE,
)
CONTEXT_FIELDS = ("store", "event", "order", "topic")
# Personal data inside free text (an exception message, a breadcrumb): emails, and phones written the
# international way, as the stores send them. Names and addresses have no shape to find: they are kept
# out by sending no frame locals, no request bodies and no personal fields at all.
EMAILS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONES = re.compile(r"\+\d[\d \-().]{6,}\d")


def scrub(event: _Event, secrets: Iterable[str]) -> _Event:
    """Mask known secret values anywhere in a Sentry event; blank personal and credential fields.
    A copy of the same shape comes back (the request's body, cookies and query string dropped)."""
    values = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def clean(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            return {k: clean(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [clean(v, key) for v in node]
        if isinstance(node, str):
            if key and PII_KEYS.search(key):
                return "[scrubbed]"
            for value in values:
                if value in node:
                    node = node.replace(value, mask(value))
            if "@" in node:
                node = EMAILS.sub("[email]", node)
            if "+" in node:
                node = PHONES.sub("[phone]", node)
            return cardnumbers.mask(node)
        return node

    event = clean(event)
    request = event.get("request")
    if isinstance(request, dict):
        for field in ("data", "cookies", "query_string"):
            request.pop(field, None)
    return event


def setup_sentry(
    dsn: str | None, secrets: Callable[[], Iterable[str]], environment: str = "production", **options: Any
) -> bool:
    """`secrets` is asked at each report, so a store added since start-up is scrubbed too."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    def before_send(event: Event, _hint: Hint) -> Event:
        try:
            known = list(secrets())
        except Exception:  # the database is away: still scrub the fields, mask what we can
            known = []
        return scrub(event, known)

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        max_request_body_size="never",
        include_local_variables=False,  # a frame's payload dict or body bytes would carry a customer
        send_default_pii=False,
        integrations=[FlaskIntegration(), RqIntegration()],
        before_send=before_send,
        before_send_transaction=before_send,
        **options,
    )
    return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the ids the code attached."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:  # exc_text: formatted and redacted when the record was made (connector.base.logredact)
            line["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def use_json_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonFormatter())
