"""Keeping secrets out of logs, in every process (web, worker, scheduler, CLI)."""
from __future__ import annotations

import logging
import re

from connector.crypto import mask

_QUERY_SECRETS = re.compile(r"((?:oauth_consumer_key|oauth_signature|consumer_key|consumer_secret)=)([^&\s\"']+)")


class RedactQuerySecrets(logging.Filter):
    """urllib3 logs each request line at DEBUG; over plain http the WooCommerce library puts the consumer
    key (OAuth 1.0a) in the query string. Mask it before any handler sees the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        if _QUERY_SECRETS.search(message):
            record.msg, record.args = _QUERY_SECRETS.sub(lambda m: m.group(1) + mask(m.group(2)), message), ()
        return True


def install_log_redaction() -> None:
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, RedactQuerySecrets) for f in target.filters):
        target.addFilter(RedactQuerySecrets())
