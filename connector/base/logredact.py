"""Keeping secrets and card data out of logs, in every process (web, worker, scheduler, CLI), for every
logger and format.

Redaction happens where each log record is made (the record factory), not on one logger or one handler:
RQ formats a failed job's traceback into its message, urllib3 logs request lines, a library may log from
a logger of its own, and a handler added later (RQ's, gunicorn's) would miss a filter set on the handlers
of today. So the message, the exception text and the stack are redacted once, before any handler or
formatter (text or JSON) sees them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from connector.base.crypto import mask
from mappings import cardnumbers

# Over plain http a store client may sign with OAuth 1.0a in the query string; tokens and secrets may
# also travel as form or query values, and some platforms' tokens have recognisable prefixes.
_QUERY_SECRETS = re.compile(
    r"((?:oauth_consumer_key|oauth_signature|oauth_nonce|consumer_key|consumer_secret|"
    r"client_secret|access_token|refresh_token)=)([^&\s\"',]+)"
)
_TOKENS = re.compile(r"\b(?:shpat|shpss|shprt|shpca|shppa|ck|cs)_[0-9A-Za-z]{8,}\b")
_FORMATTER = logging.Formatter()


def redact(text: str) -> str:
    if "=" in text:
        text = _QUERY_SECRETS.sub(lambda m: m.group(1) + mask(m.group(2)), text)
    if "_" in text:
        text = _TOKENS.sub(lambda m: mask(m.group(0)), text)
    # A card number or security code in a message (a payload logged while debugging, an ERP's error
    # quoting a note): the last four digits stay, as on the console.
    return cardnumbers.mask(text)


_make_plain = logging.getLogRecordFactory()


def _make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _make_plain(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a broken record is not ours to fix; logging reports it
        message = None
    if message is not None and (redacted := redact(message)) != message:
        record.msg, record.args = redacted, ()  # the raw args go too: handlers and tests read the record
    if record.exc_info and record.exc_info[0] is not None:
        # Formatters reuse exc_text when it is set: the traceback is formatted once, here, redacted.
        record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def install_log_redaction() -> None:
    logging.setLogRecordFactory(_make_record)
