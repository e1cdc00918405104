"""Several worker processes against one PostgreSQL and one Redis: each store stays within its concurrency
limit (RQ's RateLimit, shared by every worker on every machine), and every event is processed once."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
from redis import Redis
from sqlalchemy import create_engine, select, text

from connector.base.models import InboxEvent, Store
from connector.base.runtime import Runtime
from connector.base.settings import Settings
from connector.intake import inbox
from connector.orders.drains import schedule_retry, store_limit
from tests.conftest import REDIS_URL, load_fixture
from tests.fakes.rest_erp import FakeRestErp
from tests.test_processes import BIN, connector

ORDERS = 9


@pytest.mark.process
@pytest.mark.parametrize("limit", [1, 3])
def test_workers_on_one_store_stay_within_its_concurrency_limit(tmp_path, pg_databases, limit) -> None:
    db_url, _ = pg_databases
    erp = FakeRestErp(token="scale-token")
    erp.delay = 0.05  # every ERP call takes a moment, so overlapping jobs would show
    env = {
        **os.environ,
        "DATABASE_URL": db_url.replace("+psycopg", ""),
        "REDIS_URL": REDIS_URL,
        "CONNECTOR_ENCRYPTION_KEY": "scale-key",
        "CONNECTOR_QUEUE": f"scale-{uuid.uuid4().hex[:6]}",
        "CONNECTOR_STORE_CONCURRENCY": str(limit),
        "CONNECTOR_INSTANCE_PATH": str(tmp_path),
    }
    Redis.from_url(REDIS_URL).flushdb()
    try:
        connector(env, "db", "upgrade")
        with create_engine(db_url).begin() as conn:  # the session's database may hold other tests' rows
            conn.execute(
                text(
                    "DELETE FROM event_attempts; DELETE FROM erp_documents; DELETE FROM order_links; "
                    "DELETE FROM customer_links; DELETE FROM reservations; DELETE FROM inbox_events; "
                    "DELETE FROM stores; DELETE FROM erp_connections"
                )
            )
        config = tmp_path / "connector.yaml"
        config.write_text(
            json.dumps(
                {
                    "erp": {"kind": "rest", "base_url": erp.url, "auth": {"type": "bearer"}, "token": "scale-token"},
                    "stores": [
                        {
                            "slug": "scale",
                            "platform": "shopify",
                            "shop_domain": "scale.myshopify.com",
                            "webhook_secret": "scale-secret",
                        }
                    ],
                }
            )
        )
        connector(env, "config", "load", str(config))
        rt = Runtime.from_settings(Settings.from_env(env))
        with rt.sessions() as session:
            store_id = session.scalars(select(Store.id).where(Store.slug == "scale")).one()
        order = load_fixture("shopify", "order_discount_multiline.json")
        for n in range(ORDERS):  # orders whose retries all fall due at once, as after an ERP outage
            order.update(id=8_000_000 + n, name=f"#S{n}", email=f"s{n}@example.com", contact_email=f"s{n}@example.com")
            # another person each: one name at one postcode under other emails would wait for a person
            order["customer"].update(id=9_000_000 + n, email=f"s{n}@example.com", phone=None, last_name=f"Scale{n}")
            inbox.record(
                rt.engine,
                store_id=store_id,
                platform="shopify",
                topic="orders/create",
                dedupe_key=f"scale-{n}",
                headers={},
                body=json.dumps(order).encode(),
                resource_id=str(order["id"]),
            )
        with rt.sessions() as session:
            ids = list(session.scalars(select(InboxEvent.id)))
        for event_id in ids:
            schedule_retry(rt, event_id)
        key, _ = store_limit(rt, store_id)
        assert rt.queue.queue.count == limit  # type: ignore[attr-defined]  # the rest wait for a slot

        workers = [
            subprocess.Popen(
                [str(BIN / "connector"), "worker", "--burst"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(3)
        ]
        for worker in workers:
            worker.wait(timeout=120)
        with rt.sessions() as session:
            statuses = [e.status for e in session.scalars(select(InboxEvent))]
        assert statuses == ["succeeded"] * ORDERS
        assert len(erp.orders) == ORDERS and len(erp.requests_to("/orders", "POST")) == ORDERS
        assert erp.max_in_flight == limit, f"{erp.max_in_flight} ERP calls at once with a limit of {limit} ({key})"
        rt.engine.dispose()
    finally:
        erp.stop()
        Redis.from_url(REDIS_URL).flushdb()
