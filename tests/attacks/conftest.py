"""What the attacks need: `connector web` served as in production, on a PostgreSQL database of its own."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, REDIS_URL
from tests.test_processes import BIN, connector, free_port, wait_for

BODY_TIMEOUT = 3


@dataclass(frozen=True)
class Served:
    address: str  # host:port
    env: dict[str, str]  # for running `connector …` commands against the same database

    def url(self, path: str) -> str:
        return f"http://{self.address}{path}"


@pytest.fixture
def served(request) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    """`connector web` with one worker process and two page threads. Parametrize indirectly with a
    dict to add to its environment."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"served_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}".replace("+psycopg", ""),
        "REDIS_URL": REDIS_URL,
        "CONNECTOR_ENCRYPTION_KEY": "served-key",
        "SECRET_KEY": "served-secret",
        "WEB_BODY_TIMEOUT": str(BODY_TIMEOUT),
        **getattr(request, "param", {}),
    }
    connector(env, "db", "upgrade")
    port = free_port()
    web = subprocess.Popen(
        [str(BIN / "connector"), "web", "--port", str(port), "--workers", "1", "--threads", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz")
        yield Served(f"127.0.0.1:{port}", env)
    finally:
        web.terminate()
        web.wait(timeout=10)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
