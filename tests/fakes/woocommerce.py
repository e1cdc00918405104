"""A fake WooCommerce REST API v3 (`/wp-json/wc/v3/...`) served over real HTTP on 127.0.0.1
(docs/platforms.md#woocommerce).

`FakeWooCommerce()` serves a Flask app with werkzeug's `make_server` in a background thread (`url`,
`stop()`), like tests/fakes/rest_erp.py.

- Auth (tests/fakes/woocommerce_http.py, with paging and errors): Basic `consumer_key:consumer_secret`,
  the pair in the query string, or one-legged OAuth 1.0a in the query string (what wc-api-python
  sends over plain http), its signature checked as that library makes it (HMAC-SHA256, key `secret&`);
  `verify_oauth_signature=False` only checks the consumer key and the timestamp.
- Products (simple and variable) and variations: manage_stock / stock_quantity / stock_status
  (derived from the quantity when stock is managed) / backorders / sku. GET products (?sku=a,b also
  returns variations, as WC does; page, per_page 1..100, _fields), X-WP-Total / X-WP-TotalPages /
  Link; GET/PUT products/<id>; GET products/<id>/variations; POST products/batch and
  products/<id>/variations/batch (create + update + delete > 100 -> 413
  woocommerce_rest_request_entity_too_large; an unknown id fails only its own entry).
- Orders: GET (modified_after, status, orderby, order, paging), GET/PUT orders/<id> (status: reaching
  processing or completed sets date_paid when unset; set_paid: true completes the payment only of an
  order that needs it, pending or failed with a total above zero, as WooCommerce's update does), notes
  (POST/GET, customer_note), refunds (GET; POST in tests/fakes/woocommerce_refunds.py: line items,
  restock, the gateway's refund and its refusals; `gateways`, `gateway_error`). Times have no zone
  suffix (site time; *_gmt is UTC).
- Webhooks: CRUD (DELETE needs force=true). An API write to a product or order queues `product.updated`
  / `order.updated` for every active webhook of that topic; sending (coalescing, payload built at send
  time, signature, headers, ping, disabling) is tests/fakes/woocommerce_webhooks.py.
  `webhook_url`/`webhook_secret` in the constructor register a `product.updated` webhook up front.
- Key approval (tests/fakes/woocommerce_auth.py): GET /wc-auth/v1/authorize shows Approve/Deny; an
  approval issues a new key pair (`keys`, `approval.callbacks`), POSTs it to callback_url and, on 200,
  redirects to return_url. The REST API accepts every issued key as well as the constructor's; a `read`
  key cannot write.
- Test controls: `fail_next(n, status, retry_after)`, `batch_limit`, `add_product`, `add_products`,
  `add_variable`, `add_order`, `add_refund`, `deliver_now`, `wait_for_deliveries`; counters `hits`
  ("POST products/batch", ...), `deliveries`, `pings`.

Guesses (unverified): the per-item error codes in batch answers; that a variation batch cannot create.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from flask import Flask, Response, request

from tests.fakes.server import Failure, Served
from tests.fakes.woocommerce_auth import KeyApproval
from tests.fakes.woocommerce_http import WooError, answer, as_int, authenticate, only_fields, paged
from tests.fakes.woocommerce_refunds import GATEWAYS, create_refund
from tests.fakes.woocommerce_webhooks import WebhookDispatcher

API = "/wp-json/wc/v3"
BATCH_LIMIT = 100  # filter woocommerce_rest_batch_items_limit
ORDER_STATUSES = {
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "trash",
    "checkout-draft",
}
TOPIC_RESOURCES = {"coupon", "customer", "order", "product"}
TOPIC_EVENTS = {"created", "updated", "deleted", "restored"}


class FakeWooCommerce:
    def __init__(
        self,
        consumer_key: str = "ck_test",
        consumer_secret: str = "cs_test",
        webhook_url: str | None = None,
        webhook_secret: str = "whsec",
        webhook_delay: float = 0.0,
        verify_oauth_signature: bool = True,
        site_utc_offset_hours: int = 2,
        ping_on_create: bool = True,
    ):
        self.consumer_key, self.consumer_secret = consumer_key, consumer_secret
        self.verify_oauth_signature = verify_oauth_signature
        self.site_tz = timezone(timedelta(hours=site_utc_offset_hours))
        self.webhook_delay = webhook_delay  # seconds between an event and its delivery (Action Scheduler)
        self.ping_on_create = ping_on_create
        self.batch_limit = BATCH_LIMIT  # a host can lower it with the woocommerce_rest_batch_items_limit filter
        self.products: dict[int, dict] = {}  # products and variations share WordPress's post ids
        self.orders: dict[int, dict] = {}
        self.notes: dict[int, list[dict]] = {}
        self.refunds: dict[int, list[dict]] = {}
        self.gateways = dict(GATEWAYS)  # payment_method -> whether the gateway can refund
        self.gateway_error: str | None = None  # set: every gateway refund is declined with this message
        self.webhooks: dict[int, dict] = {}
        self.hits: Counter[str] = Counter()
        self._failures: deque[Failure] = deque()
        self._next_id = 100
        self._lock = threading.RLock()
        self.keys = {consumer_key: consumer_secret}  # consumer key -> secret: the REST API's valid keys
        self.key_permissions: dict[str, str] = {}  # issued keys' scope; the constructor's may do anything
        self.app = self._build_app()
        self.approval = KeyApproval(self.app, self.keys, self.key_permissions, self._lock)
        self._served = Served(self.app, "fake-woocommerce")
        self.url = self._served.url
        self.dispatcher = WebhookDispatcher(self.webhooks, self._resource, self._lock, self.url, webhook_delay)
        self.deliveries, self.pings = self.dispatcher.deliveries, self.dispatcher.pings
        if webhook_url:
            self._add_webhook(
                {"name": "echo", "topic": "product.updated", "delivery_url": webhook_url, "secret": webhook_secret},
                ping=False,
            )

    # ---- test controls ----------------------------------------------------------------------

    def stop(self) -> None:
        self.dispatcher.stop()
        self._served.stop()

    def fail_next(self, n: int, status: int = 429, retry_after: float | str | None = None) -> None:
        with self._lock:
            self._failures.extend(Failure(status, None if retry_after is None else str(retry_after)) for _ in range(n))

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _stamps(self, name: str, when: datetime | None = None) -> dict:
        when = (when or datetime.now(UTC)).replace(microsecond=0)
        return {
            name: when.astimezone(self.site_tz).replace(tzinfo=None).isoformat(),
            f"{name}_gmt": when.astimezone(UTC).replace(tzinfo=None).isoformat(),
        }

    def add_product(
        self,
        sku: str | None,
        stock: int | None = None,
        type: str = "simple",
        price: str = "12.00",
        name: str | None = None,
    ) -> int:
        """A product; `stock` None means WooCommerce doesn't manage its stock."""
        with self._lock:
            pid = self._id()
            self.products[pid] = {
                "id": pid,
                "name": name or f"Product {pid}",
                "slug": f"product-{pid}",
                "type": type,
                "status": "publish",
                "sku": sku or "",
                "price": price,
                "regular_price": price,
                "sale_price": "",
                "manage_stock": stock is not None,
                "stock_quantity": stock,
                "stock_status": "instock",
                "backorders": "no",
                "parent_id": 0,
                "variations": [],
                "attributes": [],
                **self._stamps("date_created"),
                **self._stamps("date_modified"),
            }
            self._derive_status(self.products[pid])
            return pid

    def add_products(self, skus: Iterable[str], stock: int | None = 0) -> list[int]:
        return [self.add_product(sku, stock) for sku in skus]

    def add_variable(
        self, sku: str | None, variation_skus: Sequence[str], stock: int | None = 0, parent_managed: Sequence[str] = ()
    ) -> tuple[int, list[int]]:
        """A variable product and its variations; SKUs in `parent_managed` report manage_stock "parent"."""
        with self._lock:
            pid = self.add_product(sku, None, type="variable")
            ids = []
            for n, vsku in enumerate(variation_skus):
                vid = self._id()
                self.products[vid] = {
                    "id": vid,
                    "name": f"Product {pid} - {n}",
                    "type": "variation",
                    "status": "publish",
                    "parent_id": pid,
                    "sku": vsku,
                    "price": "12.00",
                    "regular_price": "12.00",
                    "sale_price": "",
                    "manage_stock": "parent" if vsku in parent_managed else stock is not None,
                    "stock_quantity": stock,
                    "stock_status": "instock",
                    "backorders": "no",
                    "attributes": [{"id": 1, "name": "Size", "option": str(n)}],
                    **self._stamps("date_created"),
                    **self._stamps("date_modified"),
                }
                self._derive_status(self.products[vid])
                ids.append(vid)
            self.products[pid]["variations"] = ids
            return pid, ids

    def add_order(
        self,
        status: str = "processing",
        lines: Sequence[tuple[str, int]] = (("SKU-1", 1),),
        modified: datetime | None = None,
        doc: dict | None = None,
    ) -> int:
        with self._lock:
            oid = int(doc["id"]) if doc and doc.get("id") else self._id()
            order = dict(doc or {})
            order.update({"id": oid, "number": str(order.get("number") or oid), "status": order.get("status", status)})
            order.setdefault("currency", "EUR")
            order.setdefault(
                "line_items",
                [
                    {
                        "id": self._id(),
                        "name": f"Item {sku}",
                        "sku": sku,
                        "quantity": qty,
                        "product_id": 0,
                        "variation_id": 0,
                        "subtotal": "12.00",
                        "total": "12.00",
                        "price": 12,
                    }
                    for sku, qty in lines
                ],
            )
            order.setdefault("total", "12.00")
            order.setdefault("customer_note", "")
            order.setdefault("date_completed", None)
            order.setdefault("date_completed_gmt", None)
            order.update(self._stamps("date_created", modified))
            order.update(self._stamps("date_modified", modified))
            self.orders[oid] = order
            self.notes.setdefault(oid, [])
            self.refunds.setdefault(oid, [])
            return oid

    def add_refund(
        self, order_id: int, amount: str = "5.00", reason: str = "", modified: datetime | None = None
    ) -> int:
        """A manual refund of money only, made in the store's admin; the order lists it and is modified (now, or
        at `modified`)."""
        with self._lock:
            rid = self._id()
            self.refunds[order_id].append(
                {
                    "id": rid,
                    "reason": reason,
                    "amount": amount,
                    "refunded_by": 1,
                    "refunded_payment": False,
                    "line_items": [],
                    **self._stamps("date_created"),
                }
            )
            order = self.orders[order_id]
            order.setdefault("refunds", []).append({"id": rid, "reason": reason, "total": f"-{amount}"})
            order.update(self._stamps("date_modified", modified))
            return rid

    def stock_of(self, product_id: int) -> int | None:
        return self.products[product_id]["stock_quantity"]

    def deliver_now(self) -> None:
        """Make every queued delivery due now (tests use a long webhook_delay to coalesce writes, then this)."""
        self.dispatcher.deliver_now()

    def wait_for_deliveries(self, timeout: float = 5) -> None:
        self.dispatcher.wait(timeout)

    def _resource(self, topic: str, resource_id: int) -> dict | None:
        return (self.products if topic.startswith("product") else self.orders).get(resource_id)

    # ---- the HTTP side ----------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("fake_woocommerce")
        routes: list[tuple[str, str, Callable[..., tuple]]] = [
            ("products", "GET", self._list_products),
            ("products/<int:pid>", "GET", self._get_product),
            ("products/<int:pid>", "PUT", self._put_product),
            ("products/batch", "POST", self._batch_products),
            ("products/<int:pid>/variations", "GET", self._list_variations),
            ("products/<int:pid>/variations/batch", "POST", self._batch_variations),
            ("orders", "GET", self._list_orders),
            ("orders/<int:oid>", "GET", self._get_order),
            ("orders/<int:oid>", "PUT", self._put_order),
            ("orders/<int:oid>/notes", "GET", self._list_notes),
            ("orders/<int:oid>/notes", "POST", self._add_note),
            ("orders/<int:oid>/refunds", "GET", self._list_refunds),
            ("orders/<int:oid>/refunds", "POST", self._create_refund),
            ("orders/<int:oid>/refunds/<int:rid>", "GET", self._get_refund),
            ("webhooks", "GET", self._list_webhooks),
            ("webhooks", "POST", self._create_webhook),
            ("webhooks/<int:wid>", "GET", self._get_webhook),
            ("webhooks/<int:wid>", "PUT", self._put_webhook),
            ("webhooks/<int:wid>", "DELETE", self._delete_webhook),
        ]
        for rule, method, view in routes:
            name = f"{method} {rule.replace('<int:', '<')}"
            app.add_url_rule(f"{API}/{rule}", endpoint=name, view_func=self._endpoint(view, name), methods=[method])
        return app

    def _endpoint(self, view: Callable[..., tuple], name: str) -> Callable[..., Response]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Response:
            with self._lock:
                self.hits[name] += 1
                failure = self._failures.popleft() if self._failures else None
            if failure is not None:
                response = answer(
                    failure.status,
                    {
                        "code": "fake_injected",
                        "message": f"injected {failure.status}",
                        "data": {"status": failure.status},
                    },
                )
                if failure.retry_after is not None:
                    response.headers["Retry-After"] = failure.retry_after
                return response
            touched: set[tuple[str, int]] = set()
            try:
                key = authenticate(self.keys, self.verify_oauth_signature)
                if request.method != "GET" and self.key_permissions.get(key) == "read":
                    raise WooError(
                        401,
                        "woocommerce_rest_authentication_error",
                        "The API key provided does not have write permissions.",
                    )
                body = None
                if request.method in ("POST", "PUT"):
                    body = request.get_json(silent=True)
                    if body is None and request.content_length:
                        raise WooError(400, "rest_invalid_json", "Invalid JSON body passed.")
                    body = body or {}
                with self._lock:
                    status, payload, *headers = view(
                        **kwargs, **({"body": body} if body is not None else {}), touched=touched
                    )
                    for resource, rid in touched:  # "each resource is sent only once per webhook" per request
                        self.dispatcher.enqueue(f"{resource}.updated", rid)
            except WooError as exc:
                return answer(exc.status, exc.body())
            response = answer(status, only_fields(payload))
            response.headers.update(headers[0] if headers else {})
            return response

        return wrapper

    # ---- products ---------------------------------------------------------------------------

    def _product(self, pid: int, kind: str | None = None) -> dict:
        product = self.products.get(pid)
        if product is None or (kind == "product" and product["type"] == "variation"):
            raise WooError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return product

    def _list_products(self, touched: set) -> tuple:
        args = request.args
        items = [p for p in self.products.values() if p["type"] != "variation"]
        if args.get("sku"):
            skus = set(args["sku"].split(","))  # with a SKU filter WC searches variations too
            items = [p for p in self.products.values() if p["sku"] in skus]
        if args.get("type"):
            items = [p for p in items if p["type"] == args["type"]]
        if args.get("include"):
            wanted = {int(i) for i in args["include"].split(",")}
            items = [p for p in items if p["id"] in wanted]
        items.sort(key=lambda p: (p["date_created_gmt"], p["id"]), reverse=args.get("order", "desc") == "desc")
        return paged(items)

    def _get_product(self, pid: int, touched: set) -> tuple:
        return 200, self._product(pid)

    def _list_variations(self, pid: int, touched: set) -> tuple:
        parent = self._product(pid, "product")
        items = [self.products[v] for v in parent["variations"]]
        items.sort(key=lambda p: p["id"], reverse=request.args.get("order", "desc") == "desc")
        return paged(items)

    def _put_product(self, pid: int, body: dict, touched: set) -> tuple:
        product = self._product(pid)
        self._update(product, body)
        touched.add(("product", pid))
        return 200, product

    def _derive_status(self, product: dict) -> None:
        if product["manage_stock"] is True and product["stock_quantity"] is not None:
            if product["stock_quantity"] > 0:
                product["stock_status"] = "instock"
            else:
                product["stock_status"] = "outofstock" if product["backorders"] == "no" else "onbackorder"
        elif product["manage_stock"] is False:
            product["stock_quantity"] = None

    def _update(self, product: dict, changes: dict) -> None:
        sku = changes.get("sku")
        if sku and any(p["sku"] == sku and p["id"] != product["id"] for p in self.products.values()):
            raise WooError(400, "product_invalid_sku", "Invalid or duplicated SKU.")
        if "stock_quantity" in changes and changes["stock_quantity"] is not None:
            changes = {**changes, "stock_quantity": as_int(changes["stock_quantity"], "stock_quantity")}
        if "manage_stock" in changes and not isinstance(changes["manage_stock"], bool):
            raise WooError(400, "rest_invalid_param", "Invalid parameter(s): manage_stock")
        if changes.get("stock_status", "instock") not in ("instock", "outofstock", "onbackorder"):
            raise WooError(400, "rest_invalid_param", "Invalid parameter(s): stock_status")
        for name in ("name", "sku", "regular_price", "manage_stock", "stock_quantity", "stock_status", "backorders"):
            if name in changes:
                product[name] = changes[name]
        if "regular_price" in changes:
            product["price"] = changes["regular_price"]
        self._derive_status(product)
        product.update(self._stamps("date_modified"))

    def _batch(
        self, body: dict, touched: set, lookup: Callable[[Any], dict], create: Callable[[dict], dict], invalid_code: str
    ) -> tuple:
        actions = {name: body.get(name) or [] for name in ("create", "update", "delete") if name in body}
        if sum(len(v) for v in actions.values()) > self.batch_limit:
            raise WooError(
                413,
                "woocommerce_rest_request_entity_too_large",
                f"Unable to accept more than {self.batch_limit} items for this request.",
            )
        out: dict[str, list] = {}
        for action, entries in actions.items():
            out[action] = []
            for entry in entries:
                try:
                    if action == "create":
                        product = create(entry)
                    elif action == "update":
                        product = lookup(entry.get("id"))
                        self._update(product, entry)
                    else:
                        product = lookup(entry)
                        self.products.pop(product["id"])
                    if action != "delete":
                        touched.add(("product", product["id"]))
                    out[action].append(product)
                except WooError as exc:
                    if exc.status == 404:
                        exc = WooError(400, invalid_code, "Invalid ID.")
                    ident = entry.get("id") if isinstance(entry, dict) else entry
                    out[action].append({"id": ident or 0, "error": exc.body()})
        return 200, out

    def _batch_products(self, body: dict, touched: set) -> tuple:
        def lookup(ident: Any) -> dict:
            return self._product(as_int(ident, "id"), "product")

        def create(entry: dict) -> dict:
            pid = self.add_product(entry.get("sku"), None, entry.get("type", "simple"), name=entry.get("name"))
            self._update(self.products[pid], entry)
            return self.products[pid]

        return self._batch(body, touched, lookup, create, "woocommerce_rest_product_invalid_id")

    def _batch_variations(self, pid: int, body: dict, touched: set) -> tuple:
        parent = self._product(pid, "product")
        if parent["type"] != "variable":
            raise WooError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")

        def lookup(ident: Any) -> dict:
            vid = as_int(ident, "id")
            if vid not in parent["variations"]:
                raise WooError(404, "woocommerce_rest_product_variation_invalid_id", "Invalid ID.")
            return self.products[vid]

        def create(entry: dict) -> dict:
            raise WooError(400, "fake_not_supported", "This fake does not create variations.")

        return self._batch(body, touched, lookup, create, "woocommerce_rest_product_variation_invalid_id")

    # ---- orders -----------------------------------------------------------------------------

    def _order(self, oid: int) -> dict:
        if oid not in self.orders:
            raise WooError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return self.orders[oid]

    def _list_orders(self, touched: set) -> tuple:
        args = request.args
        items = list(self.orders.values())
        if args.get("status") and args["status"] != "any":
            wanted = set(args["status"].split(","))
            items = [o for o in items if o["status"] in wanted]
        if args.get("modified_after"):
            field = "date_modified_gmt"
            bound = self._time_arg(args["modified_after"], args.get("dates_are_gmt") in ("true", "1"))
            items = [o for o in items if datetime.fromisoformat(o[field]).replace(tzinfo=UTC) > bound]
        orderby = {"date": "date_created_gmt", "id": "id", "modified": "date_modified_gmt"}.get(
            args.get("orderby", "date"), "date_created_gmt"
        )
        items.sort(key=lambda o: (o[orderby], o["id"]), reverse=args.get("order", "desc") == "desc")
        return paged(items)

    def _time_arg(self, value: str, gmt: bool) -> datetime:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise WooError(400, "rest_invalid_param", "Invalid parameter(s): modified_after") from None
        if parsed.tzinfo is None:  # no offset: site time unless dates_are_gmt
            parsed = parsed.replace(tzinfo=UTC if gmt else self.site_tz)
        return parsed.astimezone(UTC)

    def _get_order(self, oid: int, touched: set) -> tuple:
        return 200, self._order(oid)

    def _put_order(self, oid: int, body: dict, touched: set) -> tuple:
        order = self._order(oid)
        needed_payment = order["status"] in ("pending", "failed") and float(order["total"]) > 0
        if "status" in body:
            status = str(body["status"]).removeprefix("wc-")
            if status not in ORDER_STATUSES:
                raise WooError(400, "rest_invalid_param", "Invalid parameter(s): status")
            if status != order["status"]:
                order["status"] = status
                if status == "completed":
                    order.update(self._stamps("date_completed"))
                if status in ("processing", "completed") and not order.get("date_paid_gmt"):
                    order.update(self._stamps("date_paid"))  # WC_Order::maybe_set_date_paid on the transition
        if "customer_note" in body:
            order["customer_note"] = body["customer_note"]
        if body.get("set_paid") is True and needed_payment:  # an update completes only an order needing payment
            order["status"] = "processing"
            order.update(self._stamps("date_paid"))
            if body.get("transaction_id"):
                order["transaction_id"] = str(body["transaction_id"])
        order.update(self._stamps("date_modified"))
        touched.add(("order", oid))
        return 200, order

    def _list_notes(self, oid: int, touched: set) -> tuple:
        self._order(oid)
        kind = request.args.get("type", "any")
        notes = [n for n in self.notes[oid] if kind == "any" or n["customer_note"] == (kind == "customer")]
        return 200, sorted(notes, key=lambda n: n["id"], reverse=True)

    def _add_note(self, oid: int, body: dict, touched: set) -> tuple:
        self._order(oid)
        if not body.get("note"):
            raise WooError(400, "rest_missing_callback_param", "Missing parameter(s): note", params=["note"])
        note = {
            "id": self._id(),
            "author": "WooCommerce",
            "note": str(body["note"]),
            "customer_note": bool(body.get("customer_note", False)),
            **self._stamps("date_created"),
        }
        self.notes[oid].append(note)
        return 201, note

    def _list_refunds(self, oid: int, touched: set) -> tuple:
        self._order(oid)
        return paged(list(reversed(self.refunds[oid])))

    def _create_refund(self, oid: int, body: dict, touched: set) -> tuple:
        return create_refund(self, oid, body, touched)

    def _get_refund(self, oid: int, rid: int, touched: set) -> tuple:
        self._order(oid)
        for refund in self.refunds[oid]:
            if refund["id"] == rid:
                return 200, refund
        raise WooError(404, "woocommerce_rest_invalid_id", "Invalid ID.")

    # ---- webhooks ---------------------------------------------------------------------------

    def _webhook(self, wid: int) -> dict:
        if wid not in self.webhooks:
            raise WooError(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
        return self.webhooks[wid]

    def _add_webhook(self, body: dict, ping: bool = True) -> dict:
        topic = str(body.get("topic", ""))
        resource, _, event = topic.partition(".")
        if not (resource == "action" and event) and not (resource in TOPIC_RESOURCES and event in TOPIC_EVENTS):
            raise WooError(
                400, "woocommerce_rest_webhook_invalid_topic", "Webhook topic is required and must be valid."
            )
        url = str(body.get("delivery_url", ""))
        if not url.startswith(("http://", "https://")):
            raise WooError(
                400,
                "woocommerce_rest_webhook_invalid_delivery_url",
                "Webhook delivery URL must be a valid URL starting with http:// or https://.",
            )
        with self._lock:
            wid = self._id()
            hook = {
                "id": wid,
                "name": body.get("name") or f"Webhook {wid}",
                "status": body.get("status", "active"),
                "topic": topic,
                "resource": resource,
                "event": event,
                "hooks": [],
                "delivery_url": url,
                "secret": body.get("secret") or hashlib.md5(b"1|admin").hexdigest(),
                "failure_count": 0,
                **self._stamps("date_created"),
                **self._stamps("date_modified"),
            }
            self.webhooks[wid] = hook
        if ping and self.ping_on_create and hook["status"] == "active":
            self.dispatcher.ping(hook)
        return hook

    @staticmethod
    def _webhook_json(hook: dict) -> dict:
        return {k: v for k, v in hook.items() if k != "failure_count"}

    def _list_webhooks(self, touched: set) -> tuple:
        status = request.args.get("status", "all")
        items = [self._webhook_json(h) for h in self.webhooks.values() if status in ("all", h["status"])]
        return paged(sorted(items, key=lambda h: h["id"], reverse=True))

    def _create_webhook(self, body: dict, touched: set) -> tuple:
        return 201, self._webhook_json(self._add_webhook(body))

    def _get_webhook(self, wid: int, touched: set) -> tuple:
        return 200, self._webhook_json(self._webhook(wid))

    def _put_webhook(self, wid: int, body: dict, touched: set) -> tuple:
        hook = self._webhook(wid)
        for name in ("name", "status", "delivery_url", "secret"):
            if name in body:
                hook[name] = body[name]
        if body.get("status") == "active":
            hook["failure_count"] = 0
        return 200, self._webhook_json(hook)

    def _delete_webhook(self, wid: int, touched: set) -> tuple:
        hook = self._webhook(wid)
        if request.args.get("force") not in ("true", "1"):
            raise WooError(501, "woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.")
        del self.webhooks[wid]
        return 200, self._webhook_json(hook)
