"""One settings object, built from the environment once and passed in (never read deep inside)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if not 0 < value <= 3600:
        raise SystemExit(f"{name} must be a number of seconds between 0 and 3600, got {raw!r}")
    return value


def _on_off(env: dict[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise SystemExit(f"{name} must be on or off, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str
    redis_url: str | None  # None: the embedded in-process queue
    secret_key: str
    encryption_key: str | None  # None: a key file under instance_path (embedded defaults only)
    public_base_url: str = "http://127.0.0.1:5000"
    sentry_dsn: str | None = None
    webhook_max_bytes: int = 2 * 1024 * 1024
    max_attempts: int = 8
    retry_base_seconds: int = 30
    retry_cap_seconds: int = 3600
    batch_size: int = 50
    lease_seconds: int = 300  # how long a worker may hold an event before the sweep reclaims it
    sweep_grace_seconds: int = 60
    queue_name: str = "connector"
    store_concurrency: int = 2  # at most this many jobs of one store queued or running at once
    retention_days: int = 30  # finished inbox events older than this are pruned
    # A page request's body must arrive within this (a client that announces 100 kB and sends 7 bytes
    # would otherwise hold a page thread): 408 after it.
    body_timeout_seconds: float = 15.0
    web_threads: int = 4  # threads per `connector web` worker for pages and the API
    log_format: str = "text"  # "json": one JSON object a log line
    # A worker's commits to our PostgreSQL return before the WAL is on disk (the door's and the console's do not):
    # see Runtime.from_settings. CONNECTOR_WORKER_SYNCHRONOUS_COMMIT=on makes them wait like every other.
    worker_synchronous_commit: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        instance = Path(env.get("CONNECTOR_INSTANCE_PATH", "instance")).resolve()
        return cls(
            instance_path=instance,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{instance / 'connector.db'}",
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY") or "dev-only-secret-key-change-me",
            encryption_key=env.get("CONNECTOR_ENCRYPTION_KEY") or None,
            public_base_url=env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
            sentry_dsn=env.get("SENTRY_DSN") or None,
            webhook_max_bytes=_int(env, "WEBHOOK_MAX_BYTES", 2 * 1024 * 1024),
            max_attempts=_int(env, "CONNECTOR_MAX_ATTEMPTS", 8),
            retry_base_seconds=_int(env, "CONNECTOR_RETRY_BASE_SECONDS", 30),
            retry_cap_seconds=_int(env, "CONNECTOR_RETRY_CAP_SECONDS", 3600),
            batch_size=_int(env, "CONNECTOR_BATCH_SIZE", 50),
            lease_seconds=_int(env, "CONNECTOR_LEASE_SECONDS", 300),
            sweep_grace_seconds=_int(env, "CONNECTOR_SWEEP_GRACE_SECONDS", 60),
            queue_name=env.get("CONNECTOR_QUEUE", "connector"),
            store_concurrency=max(1, _int(env, "CONNECTOR_STORE_CONCURRENCY", 2)),
            retention_days=_int(env, "CONNECTOR_RETENTION_DAYS", 30),
            body_timeout_seconds=_seconds(env, "WEB_BODY_TIMEOUT", 15.0),
            web_threads=max(1, _int(env, "WEB_THREADS", 4)),
            log_format="json" if env.get("LOG_FORMAT", "").strip().lower() == "json" else "text",
            worker_synchronous_commit=_on_off(env, "CONNECTOR_WORKER_SYNCHRONOUS_COMMIT", False),
        )

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def embedded_queue(self) -> bool:
        return self.redis_url is None
