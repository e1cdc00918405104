"""An access token a store's platform issued us (and may renew), as a store keeps it with its secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Grant:
    access_token: str
    scope: str
    issued_at: datetime
    expires_at: datetime | None  # None: an offline token that does not expire
    refresh_token: str | None = None
    refresh_expires_at: datetime | None = None

    def fresh(self, now: datetime) -> bool:
        """Good for a while yet: a token is renewed a fifth of its life (at most 5 minutes) before it ends,
        so no call goes out with a token about to expire."""
        if self.expires_at is None:
            return True
        margin = min(timedelta(minutes=5), (self.expires_at - self.issued_at) / 5)
        return now < self.expires_at - margin

    def as_secrets(self) -> dict[str, str]:
        """How a store keeps it (sealed with its other secrets)."""
        return {
            "issued_token": self.access_token,
            "issued_scope": self.scope,
            "issued_at": self.issued_at.isoformat(),
            "issued_expires_at": self.expires_at.isoformat() if self.expires_at else "",
            "issued_refresh_token": self.refresh_token or "",
            "issued_refresh_expires_at": self.refresh_expires_at.isoformat() if self.refresh_expires_at else "",
        }

    @classmethod
    def from_secrets(cls, secrets: dict[str, str]) -> Grant | None:
        if not secrets.get("issued_token"):
            return None
        return cls(
            access_token=secrets["issued_token"],
            scope=secrets.get("issued_scope", ""),
            issued_at=datetime.fromisoformat(secrets["issued_at"]),
            expires_at=_when(secrets.get("issued_expires_at")),
            refresh_token=secrets.get("issued_refresh_token") or None,
            refresh_expires_at=_when(secrets.get("issued_refresh_expires_at")),
        )


ISSUED_KEYS = (
    "issued_token",
    "issued_scope",
    "issued_at",
    "issued_expires_at",
    "issued_refresh_token",
    "issued_refresh_expires_at",
)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
