"""A fake Magento 2 REST API (`/rest/V1/...`, or `/rest/<store code>/V1/...`) over real HTTP on 127.0.0.1,
built from the public REST reference and magento/magento2 (platforms/magento/api.py's notes).

- Auth: `Authorization: Bearer <token>`; anything else is 401 "The consumer isn't authorized to access
  %resources." (what Magento answers a guest, and a bearer integration token the store does not allow).
- searchCriteria: filter_groups ANDed, the filters inside a group ORed, condition_type eq (default), neq,
  gt, gteq, lt, lteq, in, nin, like; sortOrders in order; pageSize / currentPage. A currentPage past the
  end answers the last page again (`past_end="last"`, Magento up to 2.3) or nothing (`"empty"`, 2.4+).
  Answers are `{items, search_criteria, total_count}`.
- Orders: GET orders (search), GET orders/<id> (404 when unknown), POST orders/<id>/cancel (false once
  invoiced in full, shipped, closed or cancelled), POST orders/<id>/comments.
- Shipments: POST order/<id>/ship (items, tracks, comment, notify; quantities checked against what is
  left to ship; a configurable's child ships with its parent), GET shipments (comments null, as Magento
  leaves them: magento/magento2#4318), GET shipment/<id>/comments.
- Credit memos: GET creditmemos (search); `add_creditmemo` makes one (the order's refunded totals move).
- MSI: GET inventory/sources, GET inventory/source-items (search), POST inventory/source-items
  {sourceItems} (an unknown source fails the whole request with "Validation Failed" and its errors).
- Test controls: `add_order` (tests/fakes/magento_orders.py works out the amounts), `touch` (a new
  updated_at, same second or the next), `fail_next(n, status)`, `after_list` (called once after the next
  order listing, to change the store while a client pages), counters `hits` and `pages_served`.
Times: the fake's own UTC clock (`now`), moving one second per change unless told otherwise.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from tests.fakes.magento_orders import Line, build_creditmemo, build_order
from tests.fakes.server import Failure, Served

TIME = "%Y-%m-%d %H:%M:%S"
ROUTE = re.compile(r"^/rest(?:/(?P<store>[a-z0-9_]+))?/V1/(?P<path>.+?)/?$")
NOT_FOUND = "The entity that was requested doesn't exist. Verify the entity and try again."


class MagentoError(Exception):
    def __init__(self, status: int, message: str, parameters: object = None, errors: list | None = None):
        super().__init__(message)
        self.status, self.message, self.parameters, self.errors = status, message, parameters, errors

    def body(self) -> dict:
        body: dict[str, Any] = {"message": self.message}
        if self.parameters is not None:
            body["parameters"] = self.parameters
        if self.errors:
            body["errors"] = self.errors
        return body


# ---- searchCriteria ---------------------------------------------------------------------------------


def criteria(args: MultiDict) -> dict:
    """searchCriteria[...][...] query parameters as a nested dict."""
    tree: dict = {}
    for key, value in args.items(multi=True):
        if not key.startswith("searchCriteria["):
            continue
        parts = re.findall(r"\[([^\]]*)\]", key)
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return tree


def _ordered(node: dict) -> list:
    return [node[k] for k in sorted(node, key=lambda k: int(k) if k.isdigit() else 0)]


def _compare(left: object, right: str) -> int:
    try:
        a, b = Decimal(str(left)), Decimal(right)
    except (InvalidOperation, ValueError):
        a2, b2 = str(left), right
        return (a2 > b2) - (a2 < b2)
    return (a > b) - (a < b)


def _matches(item: dict, field: str, value: str, condition: str) -> bool:
    have = item.get(field)
    if condition in ("in", "nin"):
        inside = any(have is not None and _compare(have, v.strip()) == 0 for v in value.split(","))
        return inside if condition == "in" else not inside
    if condition == "like":
        pattern = re.escape(value).replace("%", ".*")
        return have is not None and re.fullmatch(pattern, str(have)) is not None
    if condition == "null":
        return have is None
    if condition == "notnull":
        return have is not None
    if have is None:
        return False
    c = _compare(have, value)
    tests = {"eq": c == 0, "neq": c != 0, "gt": c > 0, "gteq": c >= 0, "lt": c < 0, "lteq": c <= 0}
    if condition not in tests:
        raise MagentoError(400, 'Invalid condition type "%1".', [condition])
    return tests[condition]


def search(rows: Iterable[dict], args: MultiDict, past_end: str) -> dict:
    tree = criteria(args)
    groups = [list(_ordered(g.get("filters", {}))) for g in _ordered(tree.get("filter_groups", {}))]
    found = [
        row
        for row in rows
        if all(
            any(_matches(row, f.get("field", ""), f.get("value", ""), f.get("condition_type") or "eq") for f in group)
            for group in groups
            if group
        )
    ]
    orders = _ordered(tree.get("sortOrders", tree.get("sort_orders", {})))
    for order in reversed(orders):
        name = str(order.get("field", ""))
        found.sort(key=_by(name), reverse=str(order.get("direction", "ASC")).upper() == "DESC")
    total = len(found)
    size_text = tree.get("pageSize", tree.get("page_size"))
    page_text = tree.get("currentPage", tree.get("current_page"))
    size = int(size_text) if size_text else None
    page = max(1, int(page_text)) if page_text else 1
    if size:
        last = max(1, math.ceil(total / size))
        if page > last:
            page = last if past_end == "last" else page
        found = found[(page - 1) * size : page * size]
    echo: dict[str, Any] = {"filter_groups": [{"filters": g} for g in groups]}
    if size:
        echo.update(page_size=size, current_page=page)
    return {"items": found, "search_criteria": echo, "total_count": total}


def _by(name: str) -> Callable[[dict], tuple[int, Any]]:
    return lambda row: _sort_key(row.get(name))


def _sort_key(value: object) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    try:
        return (1, Decimal(str(value)))
    except InvalidOperation:
        return (2, str(value))


# ---- the store --------------------------------------------------------------------------------------


class FakeMagento:
    def __init__(self, token: str = "integration-token", past_end: str = "last", start: datetime | None = None):
        self.token = token
        self.past_end = past_end
        self.now = (start or datetime(2026, 11, 20, 9, 0, 0, tzinfo=UTC)).replace(microsecond=0)
        self.orders: dict[int, dict] = {}
        self.creditmemos: dict[int, dict] = {}
        self.shipments: dict[int, dict] = {}
        self.shipment_comments: dict[int, list[dict]] = {}
        self.sources: dict[str, dict] = {
            "default": {"source_code": "default", "name": "Default Source", "enabled": True, "country_id": "DE"}
        }
        self.source_items: dict[tuple[str, str], dict] = {}
        self.hits: Counter[str] = Counter()
        self.pages_served: list[tuple[str, int, int]] = []  # (route, currentPage asked, items answered)
        self.store_codes: list[str | None] = []
        self.emails: list[tuple[str, int]] = []  # (kind, entity id) Magento would have e-mailed
        self.after_list: Callable[[], None] | None = None
        self._failures: deque[Failure] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._served = Served(self._app, "fake-magento")
        self.url = self._served.url

    # ---- test controls ------------------------------------------------------------------------

    def stop(self) -> None:
        self._served.stop()

    def fail_next(self, n: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend(Failure(status, None) for _ in range(n))

    def tick(self, seconds: int = 1) -> str:
        self.now += timedelta(seconds=seconds)
        return self.now.strftime(TIME)

    def add_order(self, lines: list[Line], **options: Any) -> dict:
        """A new order (tests/fakes/magento_orders.build_order's options), placed now."""
        with self._lock:
            entity_id = next(self._ids) + 100
            first_item = 10 * entity_id
            order = build_order(entity_id, lines, created_at=self.tick(), next_item_id=first_item, **options)
            self.orders[entity_id] = order
            return order

    def touch(self, entity_id: int, same_second: bool = False, **changes: Any) -> dict:
        """The order changed (its `changes` applied): updated_at moves on, or stays in the same second."""
        with self._lock:
            order = self.orders[entity_id]
            order.update(changes)
            order["updated_at"] = self.now.strftime(TIME) if same_second else self.tick()
            return order

    def add_creditmemo(self, entity_id: int, refunded: dict[int, int], **options: Any) -> dict:
        """A credit memo of {order item id: qty} (tests/fakes/magento_orders.build_creditmemo's options);
        the order's refunded totals and quantities move, and it closes once refunded in full."""
        with self._lock:
            order = self.orders[entity_id]
            memo = build_creditmemo(next(self._ids) + 5000, order, refunded, created_at=self.tick(), **options)
            self.creditmemos[memo["entity_id"]] = memo
            for key in ("total_refunded", "base_total_refunded"):
                base = key.startswith("base_")
                order[key] = float(
                    Decimal(str(order[key])) + Decimal(str(memo["base_grand_total" if base else "grand_total"]))
                )
            for row in memo["items"]:
                item = next(i for i in order["items"] if i["item_id"] == row["order_item_id"])
                item["qty_refunded"] += row["qty"]
            if Decimal(str(order["base_total_refunded"])) >= Decimal(str(order["base_grand_total"])):
                order["state"] = order["status"] = "closed"
            order["updated_at"] = self.now.strftime(TIME)
            return memo

    def set_paid(self, entity_id: int) -> dict:
        """The merchant invoiced the order (an offline payment received)."""
        with self._lock:
            order = self.orders[entity_id]
            for name in ("total_paid", "total_invoiced"):
                order[name], order[f"base_{name}"] = order["grand_total"], order["base_grand_total"]
            order["total_due"] = order["base_total_due"] = 0
            order["state"] = order["status"] = "processing"
            return self.touch(entity_id)

    # ---- HTTP ---------------------------------------------------------------------------------

    def _app(self, environ: dict, start_response: Any) -> Any:
        return self._answer(Request(environ))(environ, start_response)

    def _answer(self, request: Request) -> Response:
        try:
            with self._lock:
                if self._failures:
                    failure = self._failures.popleft()
                    raise MagentoError(failure.status, "Internal Error. Details are available in Magento log file.")
                if request.headers.get("Authorization") != f"Bearer {self.token}":
                    raise MagentoError(
                        401,
                        "The consumer isn't authorized to access %resources.",
                        {"resources": "Magento_Sales::actions_view"},
                    )
                match = ROUTE.match(request.path)
                if match is None:
                    return Response("<html>404 Not Found</html>", status=404, content_type="text/html")
                self.store_codes.append(match["store"])
                path = match["path"]
                body = request.get_json(silent=True) if request.method == "POST" else None
                answer = self._dispatch(request.method, path, request.args, body)
            if path == "orders" and request.method == "GET" and self.after_list is not None:
                hook, self.after_list = self.after_list, None
                hook()
            return Response(json.dumps(answer), status=200, content_type="application/json")
        except MagentoError as exc:
            return Response(json.dumps(exc.body()), status=exc.status, content_type="application/json")

    def _dispatch(self, method: str, path: str, args: MultiDict, body: Any) -> Any:
        route = "/".join("<id>" if p.isdigit() else p for p in path.split("/"))
        self.hits[f"{method} {route}"] += 1
        ident = next((int(p) for p in path.split("/") if p.isdigit()), 0)
        handlers: dict[str, Callable[[], Any]] = {
            "GET orders": lambda: self._search("orders", self.orders.values(), args),
            "GET orders/<id>": lambda: self._order(ident),
            "POST orders/<id>/cancel": lambda: self._cancel(ident),
            "POST orders/<id>/comments": lambda: self._comment(ident, body),
            "POST order/<id>/ship": lambda: self._ship(ident, body),
            "GET shipments": lambda: self._search("shipments", self._shipment_rows(), args),
            "GET shipment/<id>/comments": lambda: self._shipment_comments(ident),
            "GET creditmemos": lambda: self._search("creditmemos", self.creditmemos.values(), args),
            "GET inventory/sources": lambda: self._search("sources", self.sources.values(), args),
            "GET inventory/source-items": lambda: self._search("source-items", self.source_items.values(), args),
            "POST inventory/source-items": lambda: self._save_source_items(body),
        }
        handler = handlers.get(f"{method} {route}")
        if handler is None:
            raise MagentoError(404, "Request does not match any route.")
        return handler()

    def _search(self, name: str, rows: Iterable[dict], args: MultiDict) -> dict:
        answer = search([json.loads(json.dumps(r)) for r in rows], args, self.past_end)
        page = int(criteria(args).get("currentPage") or 1)
        self.pages_served.append((name, page, len(answer["items"])))
        return answer

    def _order(self, entity_id: int) -> dict:
        if entity_id not in self.orders:
            raise MagentoError(404, NOT_FOUND)
        return self.orders[entity_id]

    def _cancel(self, entity_id: int) -> bool:
        order = self._order(entity_id)
        shipped = any(i["qty_shipped"] for i in order["items"])
        if order["state"] in ("canceled", "complete", "closed") or order["base_total_paid"] or shipped:
            return False
        order["state"] = order["status"] = "canceled"
        self.touch(entity_id)
        return True

    def _comment(self, entity_id: int, body: Any) -> bool:
        order = self._order(entity_id)
        history = (body or {}).get("statusHistory") if isinstance(body, dict) else None
        if not isinstance(history, dict) or not history.get("comment"):
            raise MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "statusHistory"})
        order["status_histories"].append({**history, "created_at": self.tick(), "entity_name": "order"})
        order["updated_at"] = self.now.strftime(TIME)
        return True

    def _ship(self, entity_id: int, body: Any) -> str:
        order = self._order(entity_id)
        body = body if isinstance(body, dict) else {}
        if order["state"] in ("canceled", "closed", "holded"):
            raise MagentoError(
                400, "Shipment Document Validation Error(s):\nThe order does not allow a shipment to be created."
            )
        items = {i["item_id"]: i for i in order["items"]}
        asked = body.get("items") or [
            {"order_item_id": i["item_id"], "qty": i["qty_ordered"] - i["qty_shipped"]}
            for i in order["items"]
            if not i.get("parent_item_id") and not i["is_virtual"]
        ]
        rows: list[tuple[dict, int]] = []
        for entry in asked:
            item = items.get(int(entry.get("order_item_id") or 0))
            qty = Decimal(str(entry.get("qty") or 0))
            if item is None:
                raise MagentoError(
                    400,
                    "Shipment Document Validation Error(s):\nThe order item %1 is not found.",
                    [entry.get("order_item_id")],
                )
            left = item["qty_ordered"] - item["qty_shipped"] - item["qty_refunded"] - item["qty_canceled"]
            if qty <= 0 or qty > left:
                raise MagentoError(
                    400,
                    "Shipment Document Validation Error(s):\nYou can't create a shipment of %1 of %2: %3 left to ship.",
                    [str(qty), item["sku"], str(left)],
                )
            rows.append((item, int(qty)))
        shipment_id = next(self._ids) + 9000
        at = self.tick()
        for item, count in rows:
            item["qty_shipped"] += count
            for child in order["items"]:
                if child.get("parent_item_id") == item["item_id"]:
                    child["qty_shipped"] += count
        self.shipments[shipment_id] = {
            "entity_id": shipment_id,
            "increment_id": f"{shipment_id:09d}",
            "order_id": entity_id,
            "created_at": at,
            "updated_at": at,
            "total_qty": sum(q for _, q in rows),
            "items": [
                {"order_item_id": i["item_id"], "qty": q, "sku": i["sku"], "name": i["name"], "parent_id": shipment_id}
                for i, q in rows
            ],
            "tracks": [
                {
                    "parent_id": shipment_id,
                    "order_id": entity_id,
                    "track_number": t.get("track_number"),
                    "title": t.get("title"),
                    "carrier_code": t.get("carrier_code"),
                    "created_at": at,
                }
                for t in body.get("tracks") or []
            ],
            "packages": [],
        }
        comment = body.get("comment") or {}
        self.shipment_comments[shipment_id] = (
            [
                {
                    "entity_id": next(self._ids),
                    "parent_id": shipment_id,
                    "comment": comment["comment"],
                    "is_customer_notified": 1 if body.get("appendComment") else 0,
                    "is_visible_on_front": int(comment.get("is_visible_on_front") or 0),
                    "created_at": at,
                }
            ]
            if comment.get("comment")
            else []
        )
        if body.get("notify"):
            self.emails.append(("shipment", shipment_id))
        everything = all(
            i["qty_shipped"] + i["qty_refunded"] + i["qty_canceled"] >= i["qty_ordered"]
            for i in order["items"]
            if not i["is_virtual"]
        )
        paid = Decimal(str(order["base_total_paid"])) >= Decimal(str(order["base_grand_total"]))
        order["state"] = order["status"] = "complete" if everything and paid else "processing"
        order["updated_at"] = at
        return str(shipment_id)  # ShipOrderInterface returns the id; Magento writes it as a JSON string

    def _shipment_rows(self) -> list[dict]:
        return [{**s, "comments": None} for s in self.shipments.values()]  # not loaded by the list (#4318)

    def _shipment_comments(self, shipment_id: int) -> dict:
        if shipment_id not in self.shipments:
            raise MagentoError(404, NOT_FOUND)
        comments = self.shipment_comments.get(shipment_id, [])
        return {"items": comments, "search_criteria": {"filter_groups": []}, "total_count": len(comments)}

    def _save_source_items(self, body: Any) -> list:
        rows = (body or {}).get("sourceItems") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            raise MagentoError(400, "Input data is empty")
        errors: list[dict[str, Any]] = [
            {"message": 'Source with code "%1" does not exist.', "parameters": [r.get("source_code")]}
            for r in rows
            if r.get("source_code") not in self.sources
        ]
        errors += [
            {"message": '"%field" can not be empty.', "parameters": {"field": "sku"}} for r in rows if not r.get("sku")
        ]
        if errors:
            raise MagentoError(400, "Validation Failed", errors=errors)
        for r in rows:
            self.source_items[(r["sku"], r["source_code"])] = {
                "sku": r["sku"],
                "source_code": r["source_code"],
                "quantity": float(r.get("quantity") or 0),
                "status": int(r.get("status") or 0),
            }
        return []
