"""The platform contract: what a storefront platform gives the core.

It grows one seam at a time (issue 17). Today: how a webhook delivery is checked and identified at the
door (`Receiver`; a platform that sends no webhooks, its orders polled, has none), and how the orders the
webhooks may have missed are listed from the store's API (`OrderListing`: reconciliation and backfill).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Reply = tuple[int, str]  # an HTTP status and the message the sender sees


@dataclass(frozen=True)
class Delivery:
    """A delivery as the inbox keeps it: its topic, what makes a re-delivery of it the same event, and the
    headers worth keeping."""

    topic: str
    dedupe_key: str
    headers: dict[str, str]


class Receiver(Protocol):
    """The door's rules for one platform's webhooks. `environ` holds the request headers the WSGI way
    (HTTP_X_SHOPIFY_TOPIC, CONTENT_TYPE), as both front doors give them."""

    secret_headers: tuple[str, ...]  # kept headers a replay could use: masked wherever they are shown

    def early_reply(self, environ: Mapping[str, str], body: bytes) -> Reply | None:
        """An answer for a request that is no delivery and needs no signature (a platform's check that the
        address works), or None."""

    def authentic(self, secret: str, environ: Mapping[str, str], body: bytes) -> bool:
        """Whether the store's secret vouches for this delivery (constant-time)."""

    def identify(self, environ: Mapping[str, str], body: bytes, payload: object) -> Delivery:
        """Topic, dedupe key and kept headers of an authentic delivery (`payload`: the parsed body, or None)."""

    def order_number(self, topic: str, payload: Mapping[str, object]) -> str | None:
        """The order number the store shows, when the delivery is about an order (for support's search)."""


class OrderListing(Protocol):
    """Orders changed since a time, from the store's API, fed through the inbox as if their webhook had come
    (the same dedupe: an order already delivered is a duplicate at the door or a stale version)."""

    topic: str  # the webhook topic a listed order is stored under
    by_id: bool  # listed in id order at a fixed time (a backfill resumes after the last id), else by change time

    def changed_since(self, client: Any, since: datetime, page_size: int | None) -> Iterator[dict]:
        """The orders changed at or after `since` (timezone-aware), through the store's API client."""

    def changed_at(self, order: Mapping[str, Any]) -> datetime:
        """When the order last changed, timezone-aware."""

    def dedupe_key(self, order: Mapping[str, Any]) -> str:
        """The inbox's key for this state of the order."""

    def number(self, order: Mapping[str, Any]) -> str | None:
        """The order number the store shows."""


@dataclass(frozen=True)
class Platform:
    name: str  # as stores.platform and the webhook path name it: /webhooks/<name>/<store>
    label: str  # as merchants know it
    receiver: Receiver | None  # None: the platform sends no webhooks
    orders: OrderListing
