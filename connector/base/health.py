"""Liveness and readiness, as both doors answer them: `/healthz` (the process answers) and `/readyz`
(it can do its work: database, queue, readable secrets). The ASGI door answers them itself, so a
page pool full of slow clients never makes a healthy process look dead."""

from __future__ import annotations

from sqlalchemy import text

from connector.base import erp_health
from connector.base.runtime import Runtime

LIVE = {"status": "ok"}


def readiness(rt: Runtime) -> tuple[dict, int]:
    """The readiness document and its status: 200 when every check is ok, else 503.

    The ERP's state is reported beside the checks and never makes it 503: a load balancer would take
    the webhook door out of service, and deliveries are exactly what must go on while the ERP is
    down (they wait in the inbox)."""
    checks = {"database": _check_database(rt), "queue": _check_queue(rt), "secrets": _check_secrets(rt)}
    ok = all(v == "ok" for v in checks.values())
    return {"status": "ok" if ok else "unavailable", "checks": checks, "erp": _erp(rt)}, 200 if ok else 503


def _erp(rt: Runtime) -> str:
    try:
        return erp_health.describe(rt)
    except Exception as exc:  # the database check names that failure
        return f"not checked: {type(exc).__name__}"


def _check_database(rt: Runtime) -> str:
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"


def _check_secrets(rt: Runtime) -> str:
    try:
        return rt.key_problem() or "ok"
    except Exception as exc:  # the database check names that failure
        return f"not checked: {type(exc).__name__}"


def _check_queue(rt: Runtime) -> str:
    try:
        return "ok" if rt.queue.ping() else "unreachable"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
