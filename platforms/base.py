"""The platform contract: what a storefront platform gives the core.

It grows one seam at a time (issue 17). Today: how a webhook delivery is checked and identified at the
door (`Receiver`). A platform that sends no webhooks (orders polled) has no receiver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

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


@dataclass(frozen=True)
class Platform:
    name: str  # as stores.platform and the webhook path name it: /webhooks/<name>/<store>
    label: str  # as merchants know it
    receiver: Receiver | None  # None: the platform sends no webhooks
