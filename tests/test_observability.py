"""Error reports and logs never carry a secret or a customer's personal data."""

from __future__ import annotations

import json
import logging

import sentry_sdk

from connector.base.observability import JsonFormatter, scrub, setup_sentry

SECRET = "shpss_very_secret_value_123456"


def test_scrub_masks_known_secrets_and_personal_fields():
    event = {
        "exception": {"values": [{"value": f"401 from the store with token {SECRET}"}]},
        "extra": {"customer_email": "ann@example.com", "phone": "+44 7700 900123", "order": "#1001"},
        "request": {
            "url": "https://x/webhooks/shopify/acme",
            "data": '{"email": "ann@example.com"}',
            "cookies": {"connector_session": "abc"},
            "headers": {"X-Shopify-Hmac-Sha256": "sig"},
        },
    }
    cleaned = json.dumps(scrub(event, [SECRET]), ensure_ascii=False)
    assert SECRET not in cleaned and "••••3456" in cleaned
    assert "ann@example.com" not in cleaned and "7700" not in cleaned and "sig" not in cleaned
    assert "#1001" in cleaned and "connector_session" not in cleaned


class Capture(sentry_sdk.transport.Transport):
    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    def capture_envelope(self, envelope):  # type: ignore[no-untyped-def]
        self.sent.append(envelope.serialize().decode("utf-8", "replace"))


def test_a_reported_error_carries_no_secret():
    transport = Capture()
    try:
        assert setup_sentry("https://public@127.0.0.1/1", lambda: [SECRET], transport=transport)
        try:
            raise RuntimeError(f"ERP refused the key {SECRET} for ann@example.com")
        except RuntimeError:
            sentry_sdk.capture_exception()
        sentry_sdk.flush()
    finally:
        sentry_sdk.init(dsn=None)
    assert transport.sent, "nothing was reported"
    report = "\n".join(transport.sent)
    assert "RuntimeError" in report and SECRET not in report


def test_json_logs_carry_the_ids():
    record = logging.LogRecord("connector.orders.pipeline", logging.INFO, __file__, 1, "event %s succeeded", (7,), None)
    record.store, record.event, record.order = 3, 7, "#1001"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "event 7 succeeded"
    assert (line["store"], line["event"], line["order"]) == (3, 7, "#1001")
