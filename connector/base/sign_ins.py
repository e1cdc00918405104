"""Sign-in bookkeeping the daily prune forgets: sessions past their end, failure counts of windows long over."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from adapters.clock import utcnow
from connector.base.models import LoginFailure, UserSession
from connector.base.runtime import Runtime

FAILURE_WINDOW = timedelta(minutes=15)  # failed sign-ins are counted per address over this window


def forget_sign_ins(rt: Runtime) -> None:
    """Sessions past their end and sign-in counts of windows long over (they name addresses)."""

    now = utcnow()
    with rt.sessions.begin() as session:
        session.execute(delete(UserSession).where(UserSession.expires_at <= now))
        session.execute(delete(LoginFailure).where(LoginFailure.window_start <= now - FAILURE_WINDOW))
