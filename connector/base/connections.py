"""Pending store connections: the one-time id that ties a platform's callback to the admin who
started the connection (an OAuth `state`, a key approval's `user_id`).

The id goes out once and is kept only as its SHA-256. A callback claims it in one statement, so of
two callbacks racing with the same id exactly one wins; a replayed, expired, unknown or foreign id
is refused with the reason, which the caller audits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update

from adapters.clock import utcnow
from connector.base.models import PendingConnection
from connector.base.runtime import Runtime

LIFETIME = timedelta(minutes=30)  # enough to sign in to the store and approve; not a standing invitation
KEEP_USED = timedelta(days=7)  # used ids are kept this long, so a replay is told apart from a stranger


@dataclass(frozen=True)
class Pending:
    platform: str
    store_slug: str
    target: str
    created_by: str
    detail: dict


class ConnectionRefused(Exception):
    """A callback that belongs to no pending connection; the message says why, for the audit log."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    rt: Runtime,
    platform: str,
    store_slug: str,
    target: str,
    actor: str,
    detail: dict | None = None,
    lifetime: timedelta = LIFETIME,
) -> str:
    """Record a connection about to be approved on the platform; the one-time id to send along."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with rt.sessions.begin() as session:
        session.add(
            PendingConnection(
                id=_digest(token),
                platform=platform,
                store_slug=store_slug,
                target=target,
                created_by=actor,
                created_at=now,
                expires_at=now + lifetime,
                detail=detail or {},
            )
        )
    return token


def claim(rt: Runtime, platform: str, token: str | None) -> Pending:
    """The pending connection `token` names, marked used; ConnectionRefused when there is none to use."""
    if not token or len(token) > 200:
        raise ConnectionRefused("no connection id in the callback")
    now = utcnow()
    key = _digest(token)
    with rt.sessions.begin() as session:
        row = session.execute(
            update(PendingConnection)
            .where(
                PendingConnection.id == key,
                PendingConnection.platform == platform,
                PendingConnection.used_at.is_(None),
                PendingConnection.expires_at > now,
            )
            .values(used_at=now)
            .returning(
                PendingConnection.platform,
                PendingConnection.store_slug,
                PendingConnection.target,
                PendingConnection.created_by,
                PendingConnection.detail,
            )
        ).first()
        if row is not None:
            return Pending(row.platform, row.store_slug, row.target, row.created_by, dict(row.detail or {}))
        known = session.scalars(select(PendingConnection).where(PendingConnection.id == key)).first()
    if known is None:
        raise ConnectionRefused("the connection id is unknown (forged, or from another connector)")
    if known.platform != platform:
        raise ConnectionRefused(f"the connection id belongs to a {known.platform} connection")
    if known.used_at is not None:
        raise ConnectionRefused("the connection id was used already (a replayed callback)")
    raise ConnectionRefused("the connection was started more than 30 minutes ago; start it again on /config")


def forget_old(rt: Runtime) -> None:
    """Expired and long-used ids go (called by prune)."""
    now = utcnow()
    with rt.sessions.begin() as session:
        session.execute(delete(PendingConnection).where(PendingConnection.expires_at <= now - KEEP_USED))


def record_outcome(rt: Runtime, token: str, outcome: dict) -> None:
    """Keep what the callback did with a claimed id, for the page the merchant's browser returns to."""
    with rt.sessions.begin() as session:
        row = session.get(PendingConnection, _digest(token))
        if row is not None:
            row.detail = {**(row.detail or {}), "outcome": outcome}


def outcome_of(rt: Runtime, platform: str, token: str | None) -> dict | None:
    """What became of the connection `token` names: {"used": bool, "store_slug", "outcome"?}; None when
    no connection of `platform` has that id (unknown, forged, or forgotten by prune)."""
    if not token or len(token) > 200:
        return None
    with rt.sessions() as session:
        row = session.get(PendingConnection, _digest(token))
        if row is None or row.platform != platform:
            return None
        detail = row.detail or {}
        return {
            "used": row.used_at is not None,
            "store_slug": row.store_slug,
            "target": row.target,
            "expired": row.expires_at <= utcnow(),
            **({"outcome": detail["outcome"]} if detail.get("outcome") else {}),
        }
