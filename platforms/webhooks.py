"""The platform contract's webhook seam: which topics the connector subscribes to and how, and what
"test connection" says.

The core (connector.sync.store_admin) owns the address (`<public base URL>/webhooks/<platform>/<slug>`), the
health page and the replace-what-is-stale loop; a platform's `Subscriptions` lists, creates and deletes
subscriptions on its store. A platform whose orders are polled has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.storefront import StorefrontError


@dataclass(frozen=True)
class Connection:
    """What "test connection" found: the message a person reads, and the scopes the store granted (None:
    the platform has no scopes)."""

    message: str
    granted: list[str] | None = None


class Subscriptions(Protocol):
    topics: tuple[str, ...]  # every topic the connector subscribes to

    def hooks(self, client: Any) -> list[dict]:
        """Every subscription on the store as {id, topic, address, status ("active" or the store's word)}."""

    def ungranted(self, client: Any) -> dict[str, str]:
        """{topic: the scope it needs that the store has not granted} (the store would refuse it)."""

    def create(self, client: Any, topic: str, address: str, secrets: Mapping[str, str]) -> None:
        """Subscribe `address` to `topic` (StorefrontError when the store lacks what it needs, saying what)."""

    def delete(self, client: Any, hook_id: str) -> None: ...


def call(client: Any, name: str) -> Any:
    """A client method by name, or a readable error when this client has none (a page, not a crash)."""
    method = getattr(client, name, None)
    if not callable(method):
        raise StorefrontError(
            f"the {type(client).__name__} in this build has no {name}(); the connector cannot do this for the "
            "store yet",
            retryable=False,
        )
    return method


def short_id(value: Any) -> str:
    """An id as a person reads it (a gid's number)."""
    text = str(value or "")
    return text.rsplit("/", 1)[-1] if text.startswith("gid://") else text
