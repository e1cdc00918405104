"""A fake REST ERP that implements docs/erp-rest.md's "ERP over REST/JSON" contract in memory.

`FakeRestErp()` serves a Flask app with werkzeug's `make_server` on a free 127.0.0.1 port in a
background thread (`url`, `stop()`). It keeps customers, products (known SKUs; an empty set
accepts any SKU unless `strict_skus`), orders (`new` until the test marks them `imported`),
payments, credit notes, stock rows, shipments, receipts, undelivered parcels and the ERP's own refunds;
it checks the bearer token, replays the stored answer of a successful write whose `Idempotency-Key` it
has seen (with `Idempotent-Replayed: true`), answers 422 `{"message": "unknown SKU X"}` for an unknown
SKU and 400 for an amount sent as a JSON number. Test controls: `fail_next(n, status, retry_after,
after_processing)`, `fail_randomly(rate)` (that share of requests fail with 503, half of them after
being carried out), `down` (503 for everything, with `down_retry_after`), `delay`, `set_status`,
`set_stock`, `add_shipment`, `add_receipt`, `add_undelivered`, `add_refund`; and what it saw: `hits`
(requests by path), `log` (method, path, Idempotency-Key, Authorization), `injected` (failures
answered) and `max_in_flight` (most requests handled at once).
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Flask, Response, jsonify, request

from mappings.canonical import ErpRefund, Receipt, Shipment, StockLevel, Undelivered
from mappings.erp_rest import erp_refund_document, receipt_document, rest_time, shipment_document, undelivered_document
from tests.fakes.server import Served

PAID_LOCKED = ("partially_refunded", "refunded")


class _ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    idempotency_key: str | None
    authorization: str | None


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    after_processing: bool


def _now() -> datetime:
    return datetime.now(UTC)


def _decimal(value: Any, where: str) -> Decimal:
    if not isinstance(value, str):
        raise _ApiError(400, f"{where} must be a decimal string, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _ApiError(400, f"{where} must be a decimal string, got {value!r}") from None
    if not number.is_finite():
        raise _ApiError(400, f"{where} must be a finite decimal, got {value!r}")
    return number


def _time(value: Any, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _ApiError(400, f"{where} must be an ISO-8601 time, got {value!r}") from None
    if parsed.tzinfo is None:
        raise _ApiError(400, f"{where} must carry a time zone, got {value!r}")
    return parsed.astimezone(UTC)


def _warehouse(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise _ApiError(400, f"{name} must be a warehouse code or null")


def _required(doc: dict, names: Iterable[str], where: str) -> None:
    for name in names:
        if doc.get(name) is None:
            raise _ApiError(400, f"{where}.{name} is required")


def _no_floats(value: Any, where: str = "") -> None:
    if isinstance(value, float):
        raise _ApiError(400, f"{where or 'body'} is a JSON number: amounts must be decimal strings")
    if isinstance(value, dict):
        for k, v in value.items():
            _no_floats(v, f"{where}.{k}" if where else k)
    elif isinstance(value, list):
        for n, v in enumerate(value):
            _no_floats(v, f"{where}[{n}]")


def _text(value: Decimal) -> str:
    return format(value, "f")


class FakeRestErp:
    def __init__(self, token: str | None = "erp-test-token", products: Iterable[str] = (), strict_skus: bool = False):
        self.token = token
        self.products: set[str] = set(products)
        self.strict_skus = strict_skus  # True: an empty product set knows no SKU at all
        self.customers: dict[str, dict] = {}
        self.orders: dict[str, dict] = {}
        self.payments: dict[str, dict] = {}
        self.credit_notes: dict[str, dict] = {}
        self.stock: dict[tuple[str, str], dict] = {}
        self.shipments_by_ref: dict[str, dict] = {}
        self.receipts_by_ref: dict[str, dict] = {}
        self.undelivered_by_ref: dict[str, dict] = {}
        self.refunds_by_ref: dict[str, dict] = {}  # credit notes the ERP made itself (not credit_notes, ours)
        self.idempotent: dict[str, tuple[str, str, int, Any]] = {}  # key -> method, path, status, body
        self.hits: Counter[str] = Counter()
        self.log: list[Logged] = []
        self.down = False  # everything answers 503 (with Retry-After: down_retry_after)
        self.down_retry_after: str | None = "1"
        self.delay = 0.0  # seconds every request waits before it is handled (timeouts)
        self._failures: deque[_Failure] = deque()
        self.failure_rate = 0.0
        self._random = random.Random(0)
        self.injected = 0
        self.in_flight = self.max_in_flight = 0
        self._seq = 0
        self._ids: Counter[str] = Counter()
        self._lock = threading.RLock()
        self.app = self._build_app()
        self._served = Served(self.app, "fake-rest-erp")
        self.url = self._served.url

    # ---- test controls ----------------------------------------------------------------------

    def stop(self) -> None:
        self._served.stop()

    def fail_next(
        self, n: int, status: int = 503, retry_after: int | str | None = None, after_processing: bool = False
    ) -> None:
        """The next n requests answer `status` (with Retry-After when given). With after_processing
        the request is carried out first and only its answer is lost, as when a proxy times out."""
        with self._lock:
            for _ in range(n):
                self._failures.append(
                    _Failure(status, None if retry_after is None else str(retry_after), after_processing)
                )

    def fail_randomly(self, rate: float, seed: int = 0) -> None:
        """From now on each request fails with 503 with probability `rate`; half of those failures are
        carried out first and lose only their answer (the hard case for exactly-once)."""
        with self._lock:
            self.failure_rate, self._random = rate, random.Random(seed)

    def add_products(self, skus: Iterable[str]) -> None:
        with self._lock:
            self.products.update(skus)

    def set_status(self, order_ref: str, status: str) -> None:
        """The ERP side moves the order on (`imported`, `confirmed`): we may no longer edit it."""
        with self._lock:
            self.orders[order_ref]["status"] = status
            self.orders[order_ref]["updated_at"] = rest_time(_now())

    def set_owner(self, customer_id: str, owner: str | None) -> None:
        """The ERP side gives the account an owner (a sales rep, an agent, a region)."""
        with self._lock:
            self.customers[customer_id]["owner"] = owner

    def set_stock(
        self, sku: str, warehouse: str, on_hand: Decimal | int | str, updated_at: datetime | None = None
    ) -> None:
        with self._lock:
            self._seq += 1
            self.stock[(sku, warehouse)] = {
                "sku": sku,
                "warehouse": warehouse,
                "on_hand": Decimal(str(on_hand)),
                "updated_at": updated_at or _now(),
                "seq": self._seq,
            }

    def seed_stock(self, levels: Iterable[StockLevel]) -> None:
        for level in levels:
            self.set_stock(level.sku, level.warehouse, level.on_hand)

    def add_shipment(self, shipment: Shipment, updated_at: datetime | None = None) -> None:
        with self._lock:
            self._seq += 1
            self.shipments_by_ref[shipment.ref] = {
                "doc": shipment_document(shipment, updated_at or _now()),
                "seq": self._seq,
            }

    def add_receipt(self, receipt: Receipt, updated_at: datetime | None = None) -> None:
        """Finance recorded money against an order (a row of its own, never one of the payments we POSTed)."""
        with self._lock:
            self._seq += 1
            self.receipts_by_ref[receipt.ref] = {
                "doc": receipt_document(receipt, updated_at or _now()),
                "seq": self._seq,
            }

    def add_undelivered(self, parcel: Undelivered, updated_at: datetime | None = None) -> None:
        """The warehouse recorded the order's parcel returned undelivered (a COD parcel refused at the door)."""
        with self._lock:
            self._seq += 1
            doc = undelivered_document(parcel, updated_at or _now())
            self.undelivered_by_ref[parcel.ref] = {"doc": doc, "seq": self._seq}

    def add_refund(self, refund: ErpRefund, updated_at: datetime | None = None) -> None:
        """The ERP credits an order itself (a return at the counter): GET /refunds, never POSTed by us."""
        with self._lock:
            self._seq += 1
            self.refunds_by_ref[refund.ref] = {
                "doc": erp_refund_document(refund, updated_at or _now()),
                "seq": self._seq,
            }

    def requests_to(self, path: str, method: str | None = None) -> list[Logged]:
        return [entry for entry in self.log if entry.path == path and (method is None or entry.method == method)]

    # ---- the HTTP side ----------------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        self._ids[prefix] += 1
        return f"{prefix}{self._ids[prefix]}"

    def _endpoint(self, view: Callable[..., tuple[int, Any]]) -> Callable[..., Response]:
        """Everything around a handler: down, injected failures, delay, auth, idempotency, errors."""

        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Response:
            with self._lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                response = handle(**kwargs)
            finally:
                with self._lock:
                    self.in_flight -= 1
            return response

        def handle(**kwargs: Any) -> Response:
            key = request.headers.get("Idempotency-Key")
            with self._lock:
                self.hits[request.path] += 1
                self.log.append(Logged(request.method, request.path, key, request.headers.get("Authorization")))
                failure = self._failures.popleft() if self._failures else None
                if failure is None and self.failure_rate and self._random.random() < self.failure_rate:
                    failure = _Failure(503, "1", after_processing=self._random.random() < 0.5)
                self.injected += failure is not None
                down, down_retry_after = self.down, self.down_retry_after
                delay = self.delay
            if down:
                return self._answer(503, {"message": "the ERP is down for maintenance"}, retry_after=down_retry_after)
            if failure is not None and not failure.after_processing:
                return self._answer(
                    failure.status, {"message": f"injected failure {failure.status}"}, retry_after=failure.retry_after
                )
            if delay:
                time.sleep(delay)
            if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
                return self._answer(401, {"message": "invalid or missing bearer token"})
            with self._lock:
                if key is not None and key in self.idempotent:
                    method, path, status, body = self.idempotent[key]
                    if (method, path) != (request.method, request.path):
                        return self._answer(
                            422, {"message": f"Idempotency-Key {key} was already used for {method} {path}"}
                        )
                    response = self._answer(status, body)
                    response.headers["Idempotent-Replayed"] = "true"
                    return response
                try:
                    if request.method in ("POST", "PUT"):
                        body = request.get_json(silent=True)
                        if not isinstance(body, dict):
                            raise _ApiError(400, "the body must be a JSON object")
                        _no_floats(body)
                        kwargs["body"] = body
                    status, payload = view(**kwargs)
                except _ApiError as exc:
                    return self._answer(exc.status, {"message": exc.message, **exc.extra})
                if key is not None and 200 <= status < 300 and request.method in ("POST", "PUT"):
                    self.idempotent[key] = (request.method, request.path, status, payload)
            if failure is not None:  # carried out, but the answer is lost
                return self._answer(
                    failure.status, {"message": f"injected failure {failure.status}"}, retry_after=failure.retry_after
                )
            return self._answer(status, payload)

        return wrapper

    @staticmethod
    def _answer(status: int, payload: Any, retry_after: str | None = None) -> Response:
        response = jsonify(payload)
        response.status_code = status
        if retry_after is not None:
            response.headers["Retry-After"] = retry_after
        return response

    def _build_app(self) -> Flask:
        app = Flask("fake_rest_erp")
        route = app.route
        e = self._endpoint
        route("/health", methods=["GET"])(e(self._health))
        route("/customers", methods=["GET"], endpoint="find_customers")(e(self._find_customers))
        route("/customers", methods=["POST"], endpoint="create_customer")(e(self._create_customer))
        route("/customers/<path:customer_id>", methods=["GET"], endpoint="get_customer")(e(self._get_customer))
        route("/orders", methods=["POST"])(e(self._create_order))
        route("/orders/<path:ref>", methods=["GET"], endpoint="get_order")(e(self._get_order))
        route("/orders/<path:ref>", methods=["PUT"], endpoint="put_order")(e(self._put_order))
        route("/orders/<path:ref>/payments", methods=["POST"])(e(self._payment))
        route("/orders/<path:ref>/cancel", methods=["POST"])(e(self._cancel))
        route("/orders/<path:ref>/credit-notes", methods=["POST"])(e(self._credit_note))
        route("/stock", methods=["GET"])(e(self._stock))
        route("/shipments", methods=["GET"])(e(self._shipments))
        route("/receipts", methods=["GET"])(e(self._receipts))
        route("/undelivered", methods=["GET"])(e(self._undelivered))
        route("/refunds", methods=["GET"])(e(self._refunds))
        return app

    # ---- handlers (called under the lock) ---------------------------------------------------

    def _health(self) -> tuple[int, Any]:
        return 200, {"status": "ok", "name": "Fake REST ERP"}

    def _find_customers(self) -> tuple[int, Any]:
        email, phone = request.args.get("email"), request.args.get("phone")
        name, postcode = request.args.get("name"), request.args.get("postcode")
        # As a real ERP might: names compared loosely (case), postcodes as stored.
        found = [
            c
            for c in self.customers.values()
            if (email and c.get("email") == email)
            or (phone and c.get("phone") == phone)
            or (name and postcode and (c.get("name") or "").lower() == name.lower() and c.get("postcode") == postcode)
        ]
        return 200, {"customers": found}

    def _create_customer(self, body: dict) -> tuple[int, Any]:
        if not (body.get("email") or body.get("phone") or body.get("name")):
            raise _ApiError(422, "a customer needs an email, a phone or a name")
        customer = {
            "id": self._next_id("C"),
            "external_ref": body.get("external_ref"),
            "name": body.get("name") or "",
            "email": body.get("email"),
            "phone": body.get("phone"),
            "postcode": body.get("postcode"),
        }
        self.customers[customer["id"]] = customer
        return 201, {"id": customer["id"]}

    def _get_customer(self, customer_id: str) -> tuple[int, Any]:
        customer = self.customers.get(customer_id)
        if customer is None:
            raise _ApiError(404, f"no customer {customer_id}")
        return 200, {"owner": None, **customer}

    def _validated_order(self, body: dict) -> dict:
        _required(
            body,
            (
                "external_ref",
                "customer_id",
                "currency",
                "source_updated_at",
                "placed_at",
                "totals",
                "lines",
                "payment_status",
            ),
            "order",
        )
        if str(body["customer_id"]) not in self.customers:
            raise _ApiError(422, f"unknown customer {body['customer_id']}")
        totals = body["totals"]
        if not isinstance(totals, dict):
            raise _ApiError(400, "order.totals must be an object")
        for name in ("subtotal", "discount_total", "shipping_total", "tax_total", "total"):
            _decimal(totals.get(name), f"order.totals.{name}")
        _time(body["placed_at"], "order.placed_at")
        _time(body["source_updated_at"], "order.source_updated_at")
        if not isinstance(body["lines"], list) or not body["lines"]:
            raise _ApiError(400, "order.lines must be a non-empty list")
        for n, line in enumerate(body["lines"]):
            where = f"order.lines[{n}]"
            if not isinstance(line, dict):
                raise _ApiError(400, f"{where} must be an object")
            for name in ("quantity", "unit_price", "discount_total", "tax_total", "line_total"):
                _decimal(line.get(name), f"{where}.{name}")
            sku = line.get("sku")
            if sku is not None and (self.products or self.strict_skus) and sku not in self.products:
                raise _ApiError(422, f"unknown SKU {sku}")
            _warehouse(line.get("warehouse"), f"{where}.warehouse")
        _warehouse(body.get("warehouse"), "order.warehouse")
        credit = body.get("attribution")
        if credit is not None:
            if not isinstance(credit, dict) or credit.get("channel") != "web":
                raise _ApiError(400, "order.attribution must be an object whose channel is web")
            for name in ("owner_share", "owner_credit"):
                _decimal(credit.get(name), f"order.attribution.{name}")
        return body

    def _create_order(self, body: dict) -> tuple[int, Any]:
        doc = self._validated_order(body)
        ref = doc["external_ref"]
        if ref in self.orders:
            raise _ApiError(409, f"order {ref} already exists", code="exists", id=self.orders[ref]["id"])
        now = rest_time(_now())
        self.orders[ref] = {
            **doc,
            "id": self._next_id("SO"),
            "status": "new",
            "cancel_reason": None,
            "created_at": now,
            "updated_at": now,
        }
        return 201, {"id": self.orders[ref]["id"], "status": "new"}

    def _order(self, ref: str) -> dict:
        order = self.orders.get(ref)
        if order is None:
            raise _ApiError(404, f"no order {ref}")
        return order

    def _get_order(self, ref: str) -> tuple[int, Any]:
        order = self._order(ref)
        paid = sum(
            (_decimal(p["amount"], "amount") for p in self.payments.values() if p["order_ref"] == ref), Decimal(0)
        )
        credited = sum(
            (_decimal(c["total"], "total") for c in self.credit_notes.values() if c["order_ref"] == ref), Decimal(0)
        )
        return 200, {**order, "paid_total": _text(paid), "credited_total": _text(credited)}

    def _put_order(self, ref: str, body: dict) -> tuple[int, Any]:
        order = self._order(ref)
        if body.get("external_ref") != ref:
            raise _ApiError(400, f"order.external_ref {body.get('external_ref')!r} does not match the path {ref!r}")
        doc = self._validated_order(body)
        if order["status"] != "new":
            raise _ApiError(
                409,
                f"order {ref} is {order['status']}; it can no longer be changed",
                code="not_editable",
                status=order["status"],
            )
        if _time(doc["source_updated_at"], "source_updated_at") <= _time(order["source_updated_at"], "stored"):
            raise _ApiError(409, f"order {ref} already has this version or a newer one", code="stale")
        self.orders[ref] = {
            **doc,
            "id": order["id"],
            "status": order["status"],
            "cancel_reason": None,
            "created_at": order["created_at"],
            "updated_at": rest_time(_now()),
        }
        return 200, {"id": order["id"], "status": order["status"]}

    def _payment(self, ref: str, body: dict) -> tuple[int, Any]:
        order = self._order(ref)
        _required(body, ("key", "amount", "currency", "method", "paid_at"), "payment")
        _decimal(body["amount"], "payment.amount")
        _time(body["paid_at"], "payment.paid_at")
        existing = self.payments.get(body["key"])
        if existing is not None:
            return 200, {"id": existing["id"]}
        payment = {**body, "order_ref": ref, "id": self._next_id("PAY")}
        self.payments[body["key"]] = payment
        if order["payment_status"] not in PAID_LOCKED:  # paid once the payments cover the total
            paid = sum((Decimal(p["amount"]) for p in self.payments.values() if p["order_ref"] == ref), Decimal(0))
            order["payment_status"] = "paid" if paid >= Decimal(order["totals"]["total"]) else "partially_paid"
        return 201, {"id": payment["id"]}

    def _cancel(self, ref: str, body: dict) -> tuple[int, Any]:
        order = self._order(ref)
        if order["status"] == "cancelled":
            return 200, {"cancelled": False, "status": "cancelled"}
        order.update(status="cancelled", cancel_reason=str(body.get("reason") or ""), updated_at=rest_time(_now()))
        return 200, {"cancelled": True, "status": "cancelled"}

    def _credit_note(self, ref: str, body: dict) -> tuple[int, Any]:
        order = self._order(ref)
        _required(body, ("external_ref", "currency", "total", "issued_at", "lines"), "credit_note")
        parts = [
            _decimal(body.get(name), f"credit_note.{name}")
            for name in ("subtotal", "tax_total", "shipping_total", "fee_total", "adjustment")
        ]
        if sum(parts, Decimal(0)) != _decimal(body.get("total"), "credit_note.total"):
            raise _ApiError(
                422, "credit_note.total is not subtotal + tax_total + shipping_total + fee_total + adjustment"
            )
        for n, line in enumerate(body["lines"]):
            for name in ("quantity", "subtotal", "tax_total"):
                _decimal(line.get(name), f"credit_note.lines[{n}].{name}")
        existing = self.credit_notes.get(body["external_ref"])
        if existing is not None:
            return 200, {"id": existing["id"], "payment_status": order["payment_status"]}
        line_nos = {line.get("source_line_id"): line.get("line_no") for line in order["lines"]}
        note = {
            **body,
            "order_ref": ref,
            "id": self._next_id("CN"),
            "lines": [{**line, "order_line_no": line_nos.get(line.get("source_line_id"))} for line in body["lines"]],
        }
        self.credit_notes[body["external_ref"]] = note
        credited = sum((Decimal(c["total"]) for c in self.credit_notes.values() if c["order_ref"] == ref), Decimal(0))
        order["payment_status"] = "refunded" if credited >= Decimal(order["totals"]["total"]) else "partially_refunded"
        return 201, {"id": note["id"], "payment_status": order["payment_status"]}

    def _paging(self) -> tuple[int, int]:
        after, limit = request.args.get("after", "0"), request.args.get("limit", "100")
        if not after.isdigit():
            raise _ApiError(400, f"after={after!r} is not a cursor this ERP returned")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            raise _ApiError(400, "limit must be between 1 and 1000")
        return int(after), int(limit)

    def _stock(self) -> tuple[int, Any]:
        after, limit = self._paging()
        rows = sorted((r for r in self.stock.values() if r["seq"] > after), key=lambda r: r["seq"])[:limit]
        items = [
            {
                "sku": r["sku"],
                "warehouse": r["warehouse"],
                "on_hand": _text(r["on_hand"]),
                "updated_at": rest_time(r["updated_at"]),
            }
            for r in rows
        ]
        return 200, {"items": items, "next": str(rows[-1]["seq"]) if rows else None}

    def _shipments(self) -> tuple[int, Any]:
        return self._documents(self.shipments_by_ref)

    def _receipts(self) -> tuple[int, Any]:
        return self._documents(self.receipts_by_ref)

    def _undelivered(self) -> tuple[int, Any]:
        return self._documents(self.undelivered_by_ref)

    def _refunds(self) -> tuple[int, Any]:
        return self._documents(self.refunds_by_ref)

    def _documents(self, by_ref: dict[str, dict]) -> tuple[int, Any]:
        after, limit = self._paging()
        rows = sorted((r for r in by_ref.values() if r["seq"] > after), key=lambda r: r["seq"])[:limit]
        return 200, {"items": [r["doc"] for r in rows], "next": str(rows[-1]["seq"]) if rows else None}
