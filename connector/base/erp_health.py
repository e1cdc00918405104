"""Whether the ERP answers, as the workers last found it: set when a call gets no answer (a timeout
or a refused connection, adapters.erp.ErpUnreachable), cleared by the next event that goes through.
/readyz and the dashboard show it, so "orders are late" has its reason on the first screen."""

from __future__ import annotations

import json

from adapters.clock import utcnow
from connector.base.runtime import Runtime
from connector.base.stock import load_json_cursor, save_cursor

CURSOR = "erp:health"


def silent(rt: Runtime, reason: str) -> None:
    """The ERP did not answer: since when (kept from the first time) and why, in the last words."""
    known = status(rt)
    now = utcnow().isoformat()
    save_cursor(
        rt, CURSOR, json.dumps({"since": known["since"] if known else now, "last": now, "reason": reason[:500]})
    )
    rt.per_batch_forget(CURSOR)


def answered(rt: Runtime) -> None:
    """An event went through: the ERP answers (one read per batch; a write only when it was silent)."""
    if rt.per_batch(CURSOR, lambda: status(rt)) is not None:
        save_cursor(rt, CURSOR, None)
        rt.per_batch_forget(CURSOR)


def status(rt: Runtime) -> dict | None:
    """{since, last, reason} while the ERP is not answering, else None."""
    value = load_json_cursor(rt, CURSOR)
    return value if value.get("since") else None


def describe(rt: Runtime) -> str:
    """One line for /readyz."""
    known = status(rt)
    if known is None:
        return "ok"
    return f"not answering since {known['since']} (last tried {known['last']}): {known['reason']}"
