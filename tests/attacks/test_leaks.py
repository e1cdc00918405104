"""Secrets and personal data where they must not go: start-up output, logs, Sentry."""
from __future__ import annotations

import json

from sqlalchemy import delete

from connector.config_io import load_config
from connector.demo import _print_instructions, ensure_demo_config
from connector.models import Store
from tests.stack import SECRET


def test_connector_run_never_prints_a_secret_set_on_config(sqlite_stack, capsys):
    rt = sqlite_stack.rt
    entered = "whsec_entered_on_config_5c4b3a"  # as a merchant types it on /config: write-only
    load_config(rt, json.dumps({"stores": [{"slug": "acme-us", "platform": "shopify",
                                            "shop_domain": "acme-us.myshopify.com", "webhook_secret": entered}]}))
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
