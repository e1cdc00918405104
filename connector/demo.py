"""`connector run`: everything in one process on the embedded defaults, for trying it out.

SQLite for our tables, an in-process queue, a demo Shopify store and a demo ERP (SQL staging
tables in another SQLite file). Prints where to post a webhook and how to sign it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click
from sqlalchemy import select

from adapters.erp.sql import SqlStagingErp
from connector.base.migrate import upgrade
from connector.base.models import ErpConnection, Store, User
from connector.base.queue import EmbeddedJobQueue
from connector.base.runtime import Runtime, install
from connector.base.settings import Settings
from connector.orders.drains import sweep
from connector.setup.config_io import load_config
from connector.web.app import create_app
from connector.web.auth import add_user

SAMPLE_ORDER = Path(__file__).parent / "demo_order.json"
SWEEP_EVERY = 60
DEMO_ADMIN = "admin@demo.local"


def ensure_demo_admin(rt: Runtime) -> str | None:
    """A first admin to sign in with, when nobody can yet; its password is shown once, here."""

    with rt.sessions() as session:
        if session.scalars(select(User).limit(1)).first() is not None:
            return None
    password = secrets.token_urlsafe(12)
    add_user(rt, DEMO_ADMIN, password, "admin")
    return password


def ensure_demo_config(rt: Runtime) -> str | None:
    """Add a demo store and a demo ERP unless the merchant configured their own. Returns the slug of the
    store made in this run, the only one whose webhook secret may be printed."""
    with rt.sessions() as session:
        has_store = session.scalars(select(Store).limit(1)).first() is not None
        has_erp = session.scalars(select(ErpConnection).limit(1)).first() is not None
    erp_url = f"sqlite:///{rt.settings.instance_path / 'erp.db'}"
    doc: dict = {}
    if not has_store:
        doc["stores"] = [
            {
                "slug": "demo",
                "platform": "shopify",
                "shop_domain": "demo.myshopify.com",
                "api_version": "2026-01",
                "webhook_secret": secrets.token_urlsafe(24),
            }
        ]
    if not has_erp:
        doc["erp"] = {"kind": "sql", "url": erp_url}
    if doc:
        load_config(rt, json.dumps(doc))
    erp = rt.erp()
    if isinstance(erp, SqlStagingErp) and str(erp.engine.url).startswith("sqlite"):
        erp.create_tables()
    return None if has_store else "demo"


def run_demo(settings: Settings, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    upgrade(settings.database_url)
    queue = EmbeddedJobQueue()
    rt = install(Runtime.from_settings(settings, queue=queue))
    created = ensure_demo_config(rt)
    password = ensure_demo_admin(rt)
    queue.start()
    threading.Thread(target=_sweep_forever, args=(sweep,), daemon=True, name="sweep").start()
    app = create_app(runtime=rt)
    _print_instructions(rt, host, port, password, created)
    run_simple(host, port, app, threaded=True, use_reloader=False)


def _sweep_forever(sweep: Callable[[], object]) -> None:
    while True:
        time.sleep(SWEEP_EVERY)
        try:
            sweep()
        except Exception:  # keep sweeping; the next round retries
            pass


def _print_instructions(rt: Runtime, host: str, port: int, password: str | None, created: str | None) -> None:
    """How to try it. A webhook secret is printed only for the demo store made in this very run: a secret
    set on /config or by `config load` is write-only and never shown again."""
    with rt.sessions() as session:
        stores = session.scalars(select(Store).where(Store.platform == "shopify")).all()
        infos = [rt.store_info(s) for s in stores]
    base = f"http://{host}:{port}"
    click.echo(f"\nThe connector is running at {base}  (database: {rt.settings.database_url})")
    if password:
        click.echo(
            f"\n  Sign in at {base}/login as {DEMO_ADMIN} with password {password} (shown only now;\n"
            "  `connector user add EMAIL --role admin` adds or resets users)"
        )
    for info in infos:
        click.echo(f"\n  Shopify store {info.slug!r}: POST {base}/webhooks/shopify/{info.slug}")
        if info.slug != created:
            click.echo(
                "  Signed with its stored webhook secret (write-only: not shown again); "
                f"`.venv/bin/connector send-sample --url {base} --store {info.slug}` signs for you"
            )
            continue
        click.echo(
            f"  Sign each body: X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(secret, raw body)), "
            f"secret = {info.webhook_secret}  (made now; not shown again)"
        )
        click.echo(f"  Try it from another terminal:  .venv/bin/connector send-sample --url {base} --store {info.slug}")
        click.echo("  or by hand:")
        click.echo(f"    body={SAMPLE_ORDER}")
        click.echo(f"    curl -s {base}/webhooks/shopify/{info.slug} -H 'Content-Type: application/json' \\")
        click.echo("      -H 'X-Shopify-Topic: orders/create' -H 'X-Shopify-Event-Id: demo-1' \\")
        click.echo(
            f"      -H \"X-Shopify-Hmac-Sha256: $(openssl dgst -sha256 -hmac '{info.webhook_secret}' "
            '-binary < $body | base64)" --data-binary @$body'
        )
    erp = rt.erp()
    click.echo(f"\n  ERP ({erp.kind}): {erp.test_connection()}")
    click.echo(
        "  Then: .venv/bin/connector events   (and the ERP's tables: sqlite3 instance/erp.db "
        "'select number, total, currency from erp_orders')\n"
    )
