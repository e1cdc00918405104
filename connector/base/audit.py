"""The audit log: who did what to which store, user or event (shown on /console/audit and in the API).

Kept apart from the web's sign-in code: the CLI, webhook handlers and jobs write entries too, with
actors such as `cli:<user>` or `webhook:<event id>`.
"""

from __future__ import annotations

from connector.base.models import AuditEntry
from connector.base.runtime import Runtime


def audit(rt: Runtime, actor: str, action: str, target: str = "", detail: dict | None = None) -> None:
    with rt.sessions.begin() as s:
        s.add(AuditEntry(actor=actor, action=action, target=target[:255], detail=detail))
