"""The platform contract: what a storefront platform gives the core (one `Platform` per folder under
platforms/, listed in platforms.registry).

Here:
- how a webhook delivery is checked and identified at the door (`Receiver`; a platform that sends no
  webhooks, its orders polled, has none);
- what each topic means and how its payload is handled (`topics`: a kind the core understands and a
  handler that turns the payload into canonical documents and hands them to the core through `Core`);
- how an order payload becomes the canonical order (`to_order`), which store statuses make an ERP order;
- how orders changed since a time are listed from the store's API (`OrderListing`): reconciliation,
  backfill, and the poll of a platform without webhooks;
- who a stored payload names (`Named`, for privacy requests).
Beside it, one module a seam: stock (platforms.stock), shipments (platforms.shipping), the back office's
requests (platforms.operations), webhook subscriptions and "test connection" (platforms.webhooks), store
settings and their form (platforms.forms), expiring tokens (platforms.tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mappings.canonical import Order, Refund, Transaction
from platforms.forms import StoreForm
from platforms.operations import Operations
from platforms.shipping import Shipper
from platforms.stock import StockWriter
from platforms.tokens import Tokens
from platforms.webhooks import Connection, Subscriptions

Reply = tuple[int, str]  # an HTTP status and the message the sender sees


@dataclass(frozen=True)
class Delivery:
    """A delivery as the inbox keeps it: its topic, what makes a re-delivery of it the same event, and the
    headers worth keeping."""

    topic: str
    dedupe_key: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Named:
    """The people a payload or a privacy request names, as the store wrote them (the core normalises them):
    found by the fields that hold people, never by searching the raw body (ann@ must not match joann@)."""

    accounts: tuple[object, ...] = ()  # the store's customer ids
    emails: tuple[object, ...] = ()
    phones: tuple[object, ...] = ()
    orders: tuple[object, ...] = ()  # the store's order ids


class Receiver(Protocol):
    """The door's rules for one platform's webhooks. `environ` holds the request headers the WSGI way
    (HTTP_X_SHOPIFY_TOPIC, CONTENT_TYPE), as both front doors give them."""

    secret_headers: tuple[str, ...]  # kept headers a replay could use: masked wherever they are shown
    topic_header: str  # the kept header that names the topic (what a redacted event keeps; "": none)

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


# What a topic is to the core (the console, privacy requests): the platform's topics map onto these.
ORDER = "order"  # a version of an order (created, updated, paid, cancelled...)
REFUND = "refund"
ORDER_EDIT = "order_edit"  # what an edit changed (the edited order comes as an ORDER too)
RETURN = "return"  # a return on its way back (the money comes as a REFUND)
ORDER_DELETED = "order_deleted"
STOCK = "stock"  # a stock figure the store reports
PRIVACY = "privacy"  # a privacy request of the platform's
UNINSTALL = "uninstall"

# Read from the store only when due: the order's payments (None: the store tells none), its fraud risk
# (none | low | medium | high | pending; None when it has none).
TransactionSource = Callable[[], tuple[Transaction, ...]]
RiskSource = Callable[[], str | None]


class Core(Protocol):
    """What the connector's core does for a platform's event handler, bound to one store and one event."""

    store: str  # the store's slug, as canonical documents name it
    settings: Mapping[str, Any]  # the store's settings
    has_api: bool  # the store holds API credentials (a store may send webhooks without them)

    def client(self) -> Any:
        """The store's API client (built once per process and store settings)."""

    def take_order(
        self, order: Order, status: str, transactions: TransactionSource | None = None, risk: RiskSource | None = None
    ) -> dict:
        """Bring the ERP in line with this version of the order (`status`: the store's own word for it)."""

    def take_refund(self, refund: Refund) -> dict:
        """The refund's credit note in the ERP, once."""

    def credited(self, order: Order, refund_id: str) -> bool:
        """Whether the ERP has the credit note of this store refund of the order already."""

    def order_currency(self, order_id: str) -> str | None:
        """The currency the ERP took the order in (None: it has not taken it yet)."""

    def warehouses_of(self, location_ids: set[str]) -> dict[str, str | None]:
        """The ERP warehouse each store location restocks into (the `location` mapping; None: the default)."""

    def erp_ref_of(self, order_id: str) -> str | None: ...

    def order_as_taken(self, order_id: str) -> tuple[str | None, dict]:
        """(the ERP ref, the canonical order as the ERP last took it, as JSON)."""

    def cancel_deleted(self, order_id: str) -> dict:
        """An order deleted in the store is cancelled in the ERP, if it got there."""

    def stock_of_item(self, item_id: str, location: str, quantity: int) -> dict:
        """The store reports `quantity` of the stock item (its inventory item id) at `location`."""

    def stock_of_product(self, product_id: str, sku: str, managed: bool, quantity: object) -> dict:
        """The store reports a product's stock (WooCommerce style: one figure per product, its management
        switch with it)."""

    def privacy(self, request: str, payload: dict, person: Named) -> dict:
        """A privacy request: "data_request", "customers_redact" (about `person`) or "shop_redact"."""

    def uninstalled(self, payload: dict) -> dict: ...


Handler = Callable[[Core, dict], dict]


class ClientBuilder(Protocol):
    def __call__(
        self,
        slug: str,
        settings: Mapping[str, Any],
        secrets: Mapping[str, str],
        patience: Mapping[str, Any],
        tokens: Callable[[], Any],
    ) -> Any:
        """The store's API client; `patience` its timeout and retries (a job waits, a person does not);
        `tokens` makes the store's token keeper, for a platform whose tokens expire. StorefrontError
        (not retryable) when the store lacks what a client needs, saying what to add."""


@dataclass(frozen=True)
class Topic:
    kind: str  # ORDER, REFUND, ...
    handle: Handler


@dataclass(frozen=True)
class Platform:
    name: str  # as stores.platform and the webhook path name it: /webhooks/<name>/<store>
    label: str  # as merchants know it
    receiver: Receiver | None  # None: the platform sends no webhooks
    orders: OrderListing
    topics: Mapping[str, Topic]  # every topic the core acts on; any other is recorded as ignored
    to_order: Callable[[object, str], Order]  # an ORDER topic's payload, for a store (its slug), as canonical
    import_statuses: tuple[str, ...] | None  # the store statuses that make an ERP order (None: every order)
    has_api: Callable[[Mapping[str, Any], Mapping[str, str]], bool]  # settings, secrets: API credentials held?
    check: Callable[[str, dict, str | None], None]  # a topic's payload shape (MappingError); its shop domain
    client: ClientBuilder  # the store's API client
    connection_settings: tuple[str, ...]  # the settings a client is built from: another value, another client
    stock: StockWriter  # how the store's items are found and their stock written
    ship: Shipper  # how an ERP shipment is shown in the store
    operations: Operations  # what the back office asks of a store order: mark paid, cancel, refund
    subscriptions: Subscriptions | None  # its webhooks (None: its orders are polled)
    test_connection: Callable[[Any, Mapping[str, Any]], Connection]  # a cheap authenticated read (client, settings)
    form: StoreForm  # its stores' own settings and secrets, and their form on /config
    named_in: Callable[[str, dict], Named]  # who a stored payload of this topic names (privacy requests)
    # Whether our credentials still open the store (False: the app was uninstalled); None: it cannot tell.
    installed: Callable[[Any], bool] | None = None
    scopes: Mapping[str, tuple[str, ...]] | None = None  # the access scopes each feature needs (None: no scopes)
    tokens: Tokens | None = None  # issues and renews expiring API tokens (None: a store's token never expires)
    issued_secrets: tuple[str, ...] = ()  # secrets the platform issues and renews (a new one is no new client)

    def kind(self, topic: str) -> str | None:
        found = self.topics.get(topic)
        return found.kind if found is not None else None
