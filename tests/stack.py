"""A running connector for tests: app, runtime, queue driver, ERP reader and webhook sender."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job
from sqlalchemy import create_engine, select, text

from adapters import clock
from adapters.erp.sql_contract import erp_customers, erp_order_lines, erp_orders
from adapters.erp.sql_contract import metadata as erp_metadata
from connector.base.migrate import upgrade
from connector.base.models import Base, InboxEvent
from connector.base.queue import BurstWorker, EmbeddedJobQueue, RedisJobQueue
from connector.base.runtime import Runtime, install
from connector.base.settings import Settings
from connector.setup.config_io import load_config
from connector.web.app import create_app
from connector.web.asgi import Connector
from platforms.signatures import sign
from tests.asgi_client import AsgiClient
from tests.erp_backends.sql import sqlite_locked

SECRET = "shpss_test_webhook_secret_0123456789"
STORE = "acme-us"
WOO_STORE = "acme-eu"
WOO_SECRET = "woo_test_webhook_secret_9876543210"
WOO_URL = "https://shop.acme.test"


@dataclass
class Stack:
    kind: str
    rt: Runtime
    erp_url: str
    redis: Redis | None = None
    pg_admin_url: str | None = None
    _seq: int = 0
    _engines: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = create_app(runtime=self.rt)
        self.client = self.app.test_client()
        # Deliveries go in as in production: on PostgreSQL through the ASGI front door that
        # `connector web` serves; on SQLite through the WSGI one that `connector run` serves.
        self.asgi = AsgiClient(Connector(self.app)) if self.kind == "postgres" else None
        self.webhooks = self.asgi or self.client
        self.erp_engine = create_engine(self.erp_url.replace("postgresql://", "postgresql+psycopg://"))

    # ---- sending ------------------------------------------------------------------------------

    def post_shopify(
        self,
        payload: dict | bytes,
        *,
        topic: str = "orders/create",
        event_id: str | None = None,
        webhook_id: str | None = None,
        store: str = STORE,
        secret: str = SECRET,
        signature: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ):  # type: ignore[no-untyped-def]
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self._seq += 1
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": signature if signature is not None else sign(secret, body),
            "X-Shopify-Shop-Domain": f"{store}.myshopify.com",
            "X-Shopify-API-Version": "2026-01",
            "X-Shopify-Webhook-Id": webhook_id or f"wh-{self._seq}",
            "X-Shopify-Event-Id": event_id or f"ev-{self._seq}",
            "X-Shopify-Triggered-At": "2026-11-20T15:00:00.000Z",
            **(extra_headers or {}),
        }
        return self._sent(self.webhooks.post(f"/webhooks/shopify/{store}", data=body, headers=headers))

    def post_woocommerce(
        self,
        payload: dict | bytes,
        *,
        topic: str = "order.updated",
        store: str = WOO_STORE,
        secret: str = WOO_SECRET,
        signature: str | None = None,
    ):  # type: ignore[no-untyped-def]
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self._seq += 1
        resource, event = topic.split(".", 1)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "WooCommerce/9.4.0 Hookshot (WordPress/6.7)",
            "X-WC-Webhook-Source": f"{WOO_URL}/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": signature if signature is not None else sign(secret, body),
            "X-WC-Webhook-ID": "17",
            "X-WC-Webhook-Delivery-ID": f"d{self._seq:08x}",  # changes on every send, as WooCommerce's does
        }
        return self._sent(self.webhooks.post(f"/webhooks/woocommerce/{store}", data=body, headers=headers))

    def _sent(self, response):  # type: ignore[no-untyped-def]
        self.app.extensions["connector.waker"].flush()  # the wake-up follows the 200 within milliseconds
        return response

    # ---- running jobs -------------------------------------------------------------------------

    def run_jobs(self, include_delayed: bool = False) -> None:
        """Run queued jobs to completion; with include_delayed, time passes too (the connector's clock moves on,
        nobody sleeps) until each job scheduled for later is due, and it runs."""
        self._run_due_jobs()
        for _ in range(100):
            if not include_delayed or self.wait_for_next_job() is None:
                return

    def wait_for_next_job(self) -> datetime | None:
        """Let time pass until the soonest job scheduled for later is due, and run what is due then; the time
        it was scheduled for, or None when nothing waits."""
        waiting = self.rt.queue.scheduled()
        if not waiting:
            return None
        clock.advance_to(waiting[0][0])
        self._run_due_jobs()
        return waiting[0][0]

    def _run_due_jobs(self) -> None:
        if isinstance(self.rt.queue, EmbeddedJobQueue):
            self.rt.queue.run_until_idle()
            return
        queue: Queue = self.rt.queue.queue  # type: ignore[attr-defined]
        registry = queue.scheduled_job_registry  # what RQ's scheduler would move, by the connector's clock
        for job_id in registry.get_jobs_to_schedule(int(clock.utcnow().timestamp())):
            job = Job.fetch(job_id, connection=self.redis)
            registry.remove(job)
            queue.enqueue_job(job)
        for _ in range(50):
            if queue.count == 0:
                return
            BurstWorker([queue], connection=self.redis).work(burst=True, with_scheduler=False)

    def lose_queue(self) -> None:
        """Everything queued vanishes (Redis flushed, or the embedded queue's process restarted)."""
        if self.redis is not None:
            self.redis.flushdb()
        else:
            self.rt.queue = EmbeddedJobQueue()

    # ---- reading ------------------------------------------------------------------------------

    def erp_orders(self) -> list:
        with self.erp_engine.connect() as conn:
            return conn.execute(select(erp_orders).order_by(erp_orders.c.id)).all()

    def erp_lines(self, external_ref: str) -> list:
        with self.erp_engine.connect() as conn:
            return conn.execute(
                select(erp_order_lines)
                .where(erp_order_lines.c.external_ref == external_ref)
                .order_by(erp_order_lines.c.line_no)
            ).all()

    def erp_customers(self) -> list:
        with self.erp_engine.connect() as conn:
            return conn.execute(select(erp_customers).order_by(erp_customers.c.id)).all()

    def erp_rows(self, table) -> list:  # type: ignore[no-untyped-def]
        with self.erp_engine.connect() as conn:
            return conn.execute(select(table).order_by(table.c.id)).all()

    def events(self) -> list[InboxEvent]:
        with self.rt.sessions() as session:
            events = session.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
            for e in events:
                _ = e.attempt_rows  # load before the session closes
            return list(events)

    # ---- faults -------------------------------------------------------------------------------

    def wrap_erp(self, wrap: Callable[[Any], Any]) -> None:
        """From now on the runtime's ERP adapter is wrap(the adapter it would build): a test's ERP that
        fails when the test says, passed in through Runtime.erp_factory rather than patched into a class."""
        build = self.rt.erp_factory
        self.rt.erp_factory = lambda kind, settings, secrets: wrap(build(kind, settings, secrets))
        self.rt._erp = None  # built again, wrapped, at its next use

    @contextlib.contextmanager
    def erp_down(self) -> Iterator[None]:
        """The ERP database refuses us for the duration of the block."""
        if self.kind == "postgres":
            name = self.erp_url.rsplit("/", 1)[1]
            admin = create_engine(self.pg_admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            try:
                yield
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
                admin.dispose()
        else:
            with sqlite_locked(self.erp_url):
                yield

    def cli_env(self, tmp_path: Path) -> dict[str, str]:
        """The environment of a `connector` command run against this stack's database (no Redis: in-process)."""
        return {
            "DATABASE_URL": str(self.rt.settings.database_url),
            "CONNECTOR_ENCRYPTION_KEY": "test-encryption-key",
            "CONNECTOR_INSTANCE_PATH": str(tmp_path / "instance"),
            "REDIS_URL": "",
        }

    def close(self) -> None:
        if self.asgi is not None:
            self.asgi.close()
        self.erp_engine.dispose()
        self.rt.close()
        if self.redis is not None:
            self.redis.flushdb()
        clock.reset()


def build_stack(
    kind: str,
    tmp_path: Path,
    db_url: str,
    erp_url: str,
    *,
    redis_url: str | None = None,
    pg_admin_url: str | None = None,
    erp_config: dict | None = None,
    **overrides: object,
) -> Stack:
    """A connector on these databases. `erp_config` replaces the `erp:` configuration section (for example a
    Tryton harness's config()); by default the ERP is the SQL staging tables at erp_url."""
    settings = Settings.from_env({"CONNECTOR_INSTANCE_PATH": str(tmp_path / "instance")}).with_(
        database_url=db_url,
        redis_url=redis_url,
        encryption_key="test-encryption-key",
        retry_base_seconds=1,
        retry_cap_seconds=2,
        max_attempts=4,
        **overrides,
    )
    upgrade(db_url)
    redis = Redis.from_url(redis_url) if redis_url else None
    queue = RedisJobQueue(redis, settings.queue_name) if redis else EmbeddedJobQueue()
    rt = install(Runtime.from_settings(settings, queue=queue))
    with rt.engine.begin() as conn:  # an empty connector database for every test
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    erp = create_engine(erp_url.replace("postgresql://", "postgresql+psycopg://"))
    erp_metadata.create_all(erp)
    with erp.begin() as conn:
        for table in reversed(erp_metadata.sorted_tables):
            conn.execute(table.delete())
    erp.dispose()
    load_config(
        rt,
        json.dumps(
            {
                "erp": erp_config or {"kind": "sql", "url": erp_url, "lock_timeout_seconds": 0.2},
                # No Admin API token: nothing here answers for acme-us.myshopify.com, so its orders keep one payment
                # for their total; tests that read the Admin API point the store at a fake (tests/storefronts.py).
                "stores": [
                    {
                        "slug": STORE,
                        "platform": "shopify",
                        "shop_domain": f"{STORE}.myshopify.com",
                        "webhook_secret": SECRET,
                        "api_version": "2026-01",
                    },
                    {
                        "slug": WOO_STORE,
                        "platform": "woocommerce",
                        "url": WOO_URL,
                        "webhook_secret": WOO_SECRET,
                        "consumer_key": "ck_test_0123456789",
                        "consumer_secret": "cs_test_0123456789",
                    },
                ],
            }
        ),
    )
    return Stack(kind, rt, erp_url, redis=redis, pg_admin_url=pg_admin_url)
