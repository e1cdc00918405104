"""The product as it is run: the quickstart's `connector run`, and the Procfile's gunicorn + RQ worker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from platforms.signatures import sign
from tests.conftest import REDIS_URL, load_fixture

pytestmark = pytest.mark.process

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


def connector(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "connector"), *args], env=env, capture_output=True, text=True, timeout=timeout, check=True
    )


def test_quickstart_run_takes_a_signed_order_into_the_demo_erp(tmp_path):
    env = {**os.environ, "CONNECTOR_INSTANCE_PATH": str(tmp_path / "instance")}
    for name in ("DATABASE_URL", "REDIS_URL", "CONNECTOR_ENCRYPTION_KEY"):
        env.pop(name, None)
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "connector"), "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        sent = connector(env, "send-sample", "--url", f"http://127.0.0.1:{port}")
        assert sent.stdout.startswith("200")
        erp = create_engine(f"sqlite:///{tmp_path / 'instance' / 'erp.db'}")
        deadline = time.monotonic() + 15
        rows = []
        while time.monotonic() < deadline and not rows:
            with erp.connect() as conn:
                rows = conn.execute(text("SELECT number, total, currency FROM erp_orders")).all()
            time.sleep(0.2)
        assert [(r.number, str(r.total), r.currency) for r in rows] == [("#1001", "205.65", "USD")]
        assert "succeeded" in connector(env, "events").stdout
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    assert "/webhooks/shopify/demo" in output and "HMAC-SHA256" in output
    assert "Sign in at" in output and "admin@demo.local" in output


def test_gunicorn_and_an_rq_worker_on_postgres_and_redis(tmp_path, pg_databases):
    db_url, erp_url = pg_databases
    env = {
        **os.environ,
        "DATABASE_URL": db_url.replace("+psycopg", ""),
        "REDIS_URL": REDIS_URL,
        "CONNECTOR_ENCRYPTION_KEY": "process-test-key",
        "CONNECTOR_QUEUE": f"proc-{uuid.uuid4().hex[:6]}",
    }
    connector(env, "db", "upgrade")
    with create_engine(db_url).begin() as conn:  # the session's database may hold other tests' rows
        # CASCADE: whatever else other tests left referring to their stores goes with them
        conn.execute(text("TRUNCATE event_attempts, order_links, inbox_events, stores, erp_connections CASCADE"))
    config = tmp_path / "connector.yaml"
    config.write_text(
        json.dumps(
            {
                "erp": {"kind": "sql", "url": erp_url},
                "stores": [
                    {
                        "slug": "proc",
                        "platform": "shopify",
                        "shop_domain": "proc.myshopify.com",
                        "webhook_secret": "proc-secret",
                    }
                ],
            }
        )
    )
    assert "1 store(s) created" in connector(env, "config", "load", str(config)).stdout
    with create_engine(erp_url).begin() as conn:
        from adapters.erp.sql_contract import metadata

        metadata.create_all(conn)
        conn.execute(text("DELETE FROM erp_order_lines; DELETE FROM erp_orders; DELETE FROM erp_customers"))
    port = free_port()
    web = subprocess.Popen(
        [str(BIN / "connector"), "web", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz")
        body = json.dumps(load_fixture("shopify", "order_presentment_currency.json")).encode()
        headers = {
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Event-Id": "p-1",
            "X-Shopify-Hmac-Sha256": sign("proc-secret", body),
            "Content-Type": "application/json",
        }
        for _ in range(2):
            reply = requests.post(f"http://127.0.0.1:{port}/webhooks/shopify/proc", data=body, headers=headers)
            assert reply.status_code == 200
    finally:
        web.terminate()
        web.wait(timeout=10)
    # Under the 60 s that RQ's command channel made a burst worker wait after its last job.
    worked = connector(env, "worker", "--burst", timeout=45)
    with create_engine(erp_url).connect() as conn:
        rows = conn.execute(text("SELECT external_ref, currency FROM erp_orders")).all()
    assert len(rows) == 1 and rows[0].currency == "USD", worked.stderr[-3000:]
    assert "succeeded" in connector(env, "events").stdout
