"""Secrets and personal data where they must not go: start-up output, logs, Sentry."""

from __future__ import annotations

import json

from sqlalchemy import delete

from connector.base.models import Store
from connector.demo import _print_instructions, ensure_demo_config
from connector.setup.config_io import load_config
from tests.stack import SECRET


def test_connector_run_never_prints_a_secret_set_on_config(sqlite_stack, capsys):
    rt = sqlite_stack.rt
    entered = "whsec_entered_on_config_5c4b3a"  # as a merchant types it on /config: write-only
    load_config(
        rt,
        json.dumps(
            {
                "stores": [
                    {
                        "slug": "acme-us",
                        "platform": "shopify",
                        "shop_domain": "acme-us.myshopify.com",
                        "webhook_secret": entered,
                    }
                ]
            }
        ),
    )
    _print_instructions(rt, "127.0.0.1", 5000, None, ensure_demo_config(rt))
    out = capsys.readouterr().out
    assert "/webhooks/shopify/acme-us" in out
    assert entered not in out and SECRET not in out and "write-only" in out


def test_connector_run_shows_the_demo_secret_it_made_once(sqlite_stack, capsys):
    rt = sqlite_stack.rt
    with rt.sessions.begin() as session:
        session.execute(delete(Store))
    _print_instructions(rt, "127.0.0.1", 5000, None, ensure_demo_config(rt))
    first = capsys.readouterr().out
    (demo,) = [s for s in [rt.store_info(row) for row in _stores(rt)] if s.slug == "demo"]
    assert demo.webhook_secret in first
    _print_instructions(rt, "127.0.0.1", 5000, None, ensure_demo_config(rt))  # the next start
    assert demo.webhook_secret not in capsys.readouterr().out


def _stores(rt):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    with rt.sessions() as session:
        return session.scalars(select(Store)).all()


def _logged_failure(formatter) -> str:  # type: ignore[no-untyped-def]
    """What a handler on the root logger writes when an RQ job fails on an http WooCommerce store's call."""
    import io
    import logging

    import requests

    from connector.base.logredact import install_log_redaction

    install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    url = (
        "http://shop.example/wp-json/wc/v3/orders/1?oauth_consumer_key=ck_0123456789abcdef0123&"
        "oauth_signature=c2lnbmF0dXJlLXNlY3JldA%3D%3D&oauth_nonce=abc"
    )
    try:
        try:
            raise requests.ConnectionError(f"Max retries exceeded with url: {url}")
        except requests.ConnectionError:
            logging.getLogger("rq.worker").exception("job failed")  # RQ's own logger, its own traceback
        logging.getLogger("some.library").warning("GET %s", url)  # any logger, args formatted later
    finally:
        root.removeHandler(handler)
    return stream.getvalue()


def test_woocommerce_oauth_secrets_never_reach_a_log_line_in_any_format():
    import json
    import logging

    from connector.base.observability import JsonFormatter

    text = _logged_failure(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    lines = [json.loads(line) for line in _logged_failure(JsonFormatter()).splitlines()]
    as_json = "\n".join(f"{line['message']}\n{line.get('error', '')}" for line in lines)
    for out in (text, as_json):
        assert "job failed" in out and "Traceback" in out
        assert "ck_0123456789abcdef0123" not in out and "c2lnbmF0dXJlLXNlY3JldA" not in out, out
        assert "oauth_consumer_key=••••" in out and "oauth_signature=••••" in out


def test_a_sentry_event_as_sent_carries_no_personal_data():
    import sentry_sdk

    from connector.base.observability import setup_sentry
    from tests.test_observability import Capture

    # Built at run time: Sentry sends the source lines around each frame, and this file's must not match.
    secret = "shpss_sentry_" + "secret_value_987654"
    email, phone = "ann.lee@" + "example.com", "+44 7700 " + "900123"
    name, street = "Ann " + "Leewood", "12 Quay" + "side"
    transport = Capture()

    def map_order(payload: dict, body: bytes) -> None:  # locals: a customer's whole order
        raise ValueError(f"cannot book the order of {payload['email']} ({payload['phone']})")

    try:
        assert setup_sentry("https://public@127.0.0.1/1", lambda: [secret], transport=transport)
        sentry_sdk.add_breadcrumb(message=f"looked up customer {email}, {phone}")
        payload = {"email": email, "phone": phone, "name": name, "address1": street, "token": secret}
        try:
            map_order(payload, json.dumps(payload).encode())
        except ValueError:
            sentry_sdk.capture_exception()
        sentry_sdk.flush()
    finally:
        sentry_sdk.init(dsn=None)
    report = "\n".join(transport.sent)
    assert "ValueError" in report and "map_order" in report
    for personal in (email, "7700 900123", name, street, secret):
        assert personal not in report, personal
