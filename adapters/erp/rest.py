"""An ERP reached over REST/JSON: the contract an ERP team implements is in docs/erp-rest.md
("ERP over REST/JSON"); the JSON documents are built in `mappings.erp_rest`.

Every write carries an `Idempotency-Key` header (the order's external_ref, the payment key, the
refund ref, `<ref>:cancel`, `<ref>:v<source updated_at>` for an update, `customer:<ref>`), so the
retries below — on 429, 5xx and answers cut off midway, inside one call — can never book a
document twice. Whatever still fails after `max_tries` (or after ~30 s of waiting) becomes a
RetryableErpError for the pipeline's own, longer backoff; a 4xx is a PermanentErpError carrying the
ERP's message, because a person has to change something before it can succeed. An ERP that does not
answer (connect or read timeout, connection refused) is not tried again inside the call: that is
ErpUnreachable at once, which stops the drain's batch instead of making every event wait its turn.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

import requests
import urllib3

from adapters.backoff import backoff
from adapters.clock import utcnow
from adapters.erp.base import (
    ErpCustomerView,
    ErpOrderLineView,
    ErpOrderView,
    ErpUnreachable,
    OrderResult,
    PaymentRecord,
    PermanentErpError,
    RetryableErpError,
    customer_identity,
)
from mappings.attribution import Attribution
from mappings.canonical import Customer, ErpRefund, Order, Receipt, Refund, Shipment, StockLevel, Undelivered
from mappings.customers import normalise_email, normalise_phone, same_person_maybe
from mappings.erp_rest import (
    DocumentError,
    cancel_document,
    credit_note_document,
    customer_document,
    erp_refund_from_document,
    field,
    order_document,
    parse_decimal,
    parse_time,
    payment_document,
    receipt_from_document,
    rest_time,
    shipment_from_document,
    stock_level_from_document,
    undelivered_from_document,
)
from mappings.utc import as_utc

DEFAULT_PATHS = {
    "health": "/health",  # GET
    "customers": "/customers",  # GET ?email=&phone=, POST
    "customer": "/customers/{ref}",  # GET (the account's owner); {ref} is the ERP's customer id
    "orders": "/orders",  # POST
    "order": "/orders/{ref}",  # GET, PUT
    "payments": "/orders/{ref}/payments",  # POST
    "cancel": "/orders/{ref}/cancel",  # POST
    "credit_notes": "/orders/{ref}/credit-notes",  # POST
    "stock": "/stock",  # GET ?after=&limit=
    "shipments": "/shipments",  # GET ?after=&limit=
    "receipts": "/receipts",  # GET ?after=&limit=
    "undelivered": "/undelivered",  # GET ?after=&limit=
    "refunds": "/refunds",  # GET ?after=&limit=: credit notes the ERP made itself
}
NEEDS_REF = {"customer", "order", "payments", "cancel", "credit_notes"}
AUTH_TYPES = ("bearer", "basic", "api_key", "none")
EDITABLE = "new"
REPLAYED_HEADER = "Idempotent-Replayed"
RETRY_STATUSES = (408, 429)  # and every 5xx

T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    status: int
    data: Any
    replayed: bool  # the ERP replayed the stored answer of an earlier call with this Idempotency-Key


class RestErp:
    kind = "rest"

    def __init__(
        self,
        base_url: str,
        *,
        paths: dict[str, str] | None = None,
        auth_type: str = "bearer",
        auth_header: str | None = None,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        timeout_seconds: float = 10,
        connect_timeout_seconds: float = 5,
        max_tries: int = 3,
        retry_base_seconds: float = 0.25,
        max_wait_seconds: float = 30,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not base_url or not re.match(r"^https?://", base_url):
            raise PermanentErpError(
                f"the rest ERP connection's base_url {base_url!r} is not an http(s) URL: set erp.base_url on /config"
            )
        self.base_url = base_url.rstrip("/")
        self.paths = dict(DEFAULT_PATHS)
        for name, template in (paths or {}).items():
            if name not in DEFAULT_PATHS:
                raise PermanentErpError(f"unknown ERP path {name!r} in erp.paths; known: {', '.join(DEFAULT_PATHS)}")
            if name in NEEDS_REF and "{ref}" not in template:
                raise PermanentErpError(f"erp.paths.{name} must contain {{ref}} (the order's reference): {template!r}")
            self.paths[name] = template if template.startswith("/") else "/" + template
        self.timeout = float(timeout_seconds)
        self.connect_timeout = float(connect_timeout_seconds)
        self.max_tries = max(1, int(max_tries))
        self.retry_base = float(retry_base_seconds)
        self.max_wait = float(max_wait_seconds)
        self._sleep = sleep  # how the waits between tries are spent (tests give a fake clock's)
        self.auth_type = (auth_type or "none").lower()
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "storefront-connector"})
        self._authenticate(auth_header, token, username, password, api_key)

    # ---- contract ---------------------------------------------------------------------------

    def test_connection(self) -> str:
        reply = self._send("GET", "health", "test the connection")
        name = reply.data.get("name") if isinstance(reply.data, dict) else None
        return f"REST ERP reachable at {self.base_url}" + (f" ({name})" if name else "")

    def check_order(self, order: Order) -> None:
        """The REST contract sets no length limits: the ERP's own 4xx names what it refuses."""
        return None

    def find_customer(self, email: str | None, phone: str | None) -> str | None:
        email, phone = normalise_email(email), normalise_phone(phone)
        if not (email or phone):
            return None
        params = {k: v for k, v in (("email", email), ("phone", phone)) if v}
        found = self._customers(params, "look up the customer")
        # Match on the field ourselves: an ERP that ignored the query must not hand us a stranger.
        for name, value, norm in (("email", email, normalise_email), ("phone", phone, normalise_phone)):
            if value:
                for item in found:
                    if isinstance(item, dict) and item.get("id") is not None and norm(item.get(name)) == value:
                        return str(item["id"])
        return None

    def similar_customers(self, name: str, postcode: str, limit: int = 5) -> list[ErpCustomerView]:
        if not (name.strip() and postcode.strip()):
            return []
        found = self._customers({"name": name.strip(), "postcode": postcode.strip()}, "look for similar customers")
        # Compared ourselves, as find_customer does: an ERP that ignored the query must not hand us strangers.
        views = [
            ErpCustomerView(
                str(item["id"]),
                str(item.get("name") or ""),
                normalise_email(item.get("email")),
                normalise_phone(item.get("phone")),
                str(item.get("postcode") or ""),
            )
            for item in found
            if isinstance(item, dict)
            and item.get("id") is not None
            and same_person_maybe(str(item.get("name") or ""), str(item.get("postcode") or ""), name, postcode)
        ]
        return views[:limit]

    def _customers(self, params: dict[str, str], action: str) -> list:
        """GET /customers with these query parameters: the list the ERP answers."""
        reply = self._send("GET", "customers", action, params=params)
        found = self._parse(action, lambda: field(reply.data, "customers", "response"))
        if not isinstance(found, list):
            raise PermanentErpError(
                f"the ERP's answer to {action} does not follow the REST contract: "
                "customers is not a list (see docs/erp-rest.md)"
            )
        return found

    def create_customer(self, customer: Customer, external_ref: str) -> str:
        customer_identity(customer)
        doc = customer_document(customer, external_ref)
        action = "create the customer"
        reply = self._send("POST", "customers", action, body=doc, key=f"customer:{external_ref}")
        return self._id(reply, action)

    def customer_owner(self, customer_id: str) -> str | None:
        action = f"read the owner of customer {customer_id}"
        # 404/405: an ERP that serves no single customer (an older contract) has no owners to tell.
        reply = self._send("GET", "customer", action, ref=customer_id, accept=(404, 405))
        if reply.status in (404, 405):
            return None
        owner = reply.data.get("owner") if isinstance(reply.data, dict) else None
        if owner is not None and not isinstance(owner, str):
            raise PermanentErpError(
                f"the ERP's answer to {action} does not follow the REST contract: "
                "customer.owner is not text or null (see docs/erp-rest.md)"
            )
        return (owner or "").strip() or None

    def push_order(self, order: Order, customer_id: str, attribution: Attribution | None = None) -> OrderResult:
        ref, action = order.external_ref, f"write order {order.number}"
        doc = order_document(order, customer_id, attribution)
        for _ in range(2):
            existing = self._get_order_doc(ref, action)
            if existing is not None:
                return self._update_order(order, doc, existing, action)
            reply = self._send("POST", "orders", action, body=doc, key=ref, accept=(409,))
            if reply.status != 409:
                return OrderResult(erp_ref=self._id(reply, action), created=not reply.replayed)
            # 409: another writer created it between our read and our create; read it again.
        raise RetryableErpError(
            f"the ERP reported a conflict while trying to {action} ({_message(reply.data)}) "
            "but does not return the order; trying again later"
        )

    def record_payment(self, payment: PaymentRecord) -> str:
        action = f"record the payment of {payment.order_ref}"
        reply = self._send(
            "POST", "payments", action, ref=payment.order_ref, body=payment_document(payment), key=payment.key
        )
        return self._id(reply, action)

    def cancel_order(self, order_ref: str, reason: str) -> bool:
        action = f"cancel {order_ref}"
        reply = self._send(
            "POST", "cancel", action, ref=order_ref, body=cancel_document(reason), key=f"{order_ref}:cancel"
        )
        cancelled = self._parse(action, lambda: field(reply.data, "cancelled", "response"))
        return bool(cancelled) and not reply.replayed

    def create_credit_note(self, refund: Refund, order_ref: str) -> str:
        action = f"create the credit note of {order_ref}"
        reply = self._send(
            "POST",
            "credit_notes",
            action,
            ref=order_ref,
            body=credit_note_document(refund, order_ref),
            key=refund.external_ref,
        )
        return self._id(reply, action)

    def get_order(self, order_ref: str) -> ErpOrderView | None:
        action = f"read {order_ref}"
        doc = self._get_order_doc(order_ref, action)
        return None if doc is None else self._parse(action, lambda: _order_view(doc, order_ref))

    def stock_changes(self, cursor: str | None, limit: int = 1000) -> tuple[list[StockLevel], str | None]:
        return self._page("stock", "read stock changes", cursor, limit, stock_level_from_document)

    def shipments(self, cursor: str | None, limit: int = 500) -> tuple[list[Shipment], str | None]:
        return self._page("shipments", "read shipments", cursor, limit, shipment_from_document)

    def receipts(self, cursor: str | None, limit: int = 500) -> tuple[list[Receipt], str | None]:
        return self._page("receipts", "read receipts", cursor, limit, receipt_from_document)

    def undelivered(self, cursor: str | None, limit: int = 500) -> tuple[list[Undelivered], str | None]:
        return self._page("undelivered", "read undelivered parcels", cursor, limit, undelivered_from_document)

    def offline_refunds(self, cursor: str | None, limit: int = 500) -> tuple[list[ErpRefund], str | None]:
        return self._page("refunds", "read the ERP's own refunds", cursor, limit, erp_refund_from_document)

    def close(self) -> None:
        self.session.close()

    # ---- internals --------------------------------------------------------------------------

    def _authenticate(
        self, header: str | None, token: str | None, username: str | None, password: str | None, api_key: str | None
    ) -> None:
        kind = self.auth_type
        if kind not in AUTH_TYPES:
            raise PermanentErpError(f"unknown ERP auth type {kind!r}: use one of {', '.join(AUTH_TYPES)} on /config")
        missing = {
            "bearer": [] if token else ["token"],
            "basic": [n for n, v in (("username", username), ("password", password)) if not v],
            "api_key": [] if api_key else ["api_key"],
            "none": [],
        }[kind]
        if missing:
            raise PermanentErpError(
                f"the rest ERP connection uses {kind} auth but has no "
                f"{' or '.join(missing)}: set {' and '.join('erp.' + m for m in missing)} "
                "on /config"
            )
        if kind == "bearer":
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif kind == "basic":
            self.session.auth = (username or "", password or "")
        elif kind == "api_key":
            self.session.headers[header or "X-API-Key"] = api_key or ""

    def _url(self, name: str, ref: str | None) -> str:
        path = self.paths[name]
        if ref is not None:
            path = path.replace("{ref}", quote(ref, safe=""))
        return self.base_url + path

    def _send(
        self,
        method: str,
        name: str,
        action: str,
        *,
        ref: str | None = None,
        params: dict | None = None,
        body: dict | None = None,
        key: str | None = None,
        accept: tuple[int, ...] = (),
    ) -> Reply:
        """One call, retried on 429/5xx/timeouts/refused connections; raises the contract's errors."""
        url = self._url(name, ref)
        headers = {"Idempotency-Key": key} if key is not None else {}
        waited, problem = 0.0, ""
        for attempt in range(1, self.max_tries + 1):
            retry_after: float | None = None
            try:
                resp = self.session.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=(self.connect_timeout, self.timeout),
                    allow_redirects=False,
                )
            except requests.ConnectTimeout as exc:
                raise self._silent(f"did not accept a connection within {self.connect_timeout:g}s", action) from exc
            except requests.Timeout as exc:
                raise self._silent(f"did not answer within {self.timeout:g}s", action) from exc
            except requests.ConnectionError as exc:
                if not _cut_mid_answer(exc):
                    raise ErpUnreachable(
                        f"cannot reach the ERP at {self.base_url}: {_short(exc)} while trying to "
                        f"{action}; the connector will try again later"
                    ) from exc
                problem = f"the ERP's answer from {self.base_url} broke off: {_short(exc)}"
            except (
                requests.exceptions.InvalidURL,
                requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema,
                requests.exceptions.InvalidHeader,
            ) as exc:
                raise PermanentErpError(
                    f"cannot call the ERP to {action}: {_short(exc)}; "
                    "check erp.base_url, erp.paths and the credentials on /config"
                ) from exc
            except requests.RequestException as exc:  # a connection cut mid-answer and the like
                problem = f"the ERP's answer from {self.base_url} broke off: {_short(exc)}"
            else:
                status = resp.status_code
                if status in RETRY_STATUSES or status >= 500:
                    problem = f"the ERP answered HTTP {status}" + _detail(_json(resp))
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
                else:
                    replayed = attempt == 1 and resp.headers.get(REPLAYED_HEADER, "").lower() == "true"
                    return self._reply(method, url, action, resp, accept, replayed)
            if attempt == self.max_tries:
                break
            delay = retry_after if retry_after is not None else backoff(attempt, self.retry_base)
            if waited + delay > self.max_wait:
                if retry_after is not None:
                    problem += f" and asked to wait {delay:g}s, beyond this call's {self.max_wait:g}s budget"
                break
            self._sleep(delay)
            waited += delay
        raise RetryableErpError(
            f"{problem} while trying to {action} ({attempt} "
            f"{'try' if attempt == 1 else 'tries'}); the connector will try again later"
        )

    def _silent(self, what: str, action: str) -> ErpUnreachable:
        # Not tried again inside the call: an ERP that is down or swamped would hold the event (and
        # the store's other events behind it) for every try; the pipeline's backoff waits instead.
        return ErpUnreachable(
            f"the ERP at {self.base_url} {what} while trying to {action}; the connector will try again later"
        )

    def _reply(
        self, method: str, url: str, action: str, resp: requests.Response, accept: tuple[int, ...], replayed: bool
    ) -> Reply:
        status, data = resp.status_code, _json(resp)
        if 200 <= status < 300:
            if data is _NOT_JSON:
                raise PermanentErpError(
                    f"the ERP answered {action} with something that is not JSON "
                    f"({resp.headers.get('Content-Type', 'no content type')}); "
                    "check erp.base_url and erp.paths on /config"
                )
            return Reply(status, data, replayed)
        if status in accept:
            return Reply(status, data if data is not _NOT_JSON else {}, replayed)
        if status in (401, 403):
            raise PermanentErpError(
                f"the ERP refused our credentials (HTTP {status}) while trying to {action}: check the ERP "
                f"{self.auth_type} credentials on /config" + _detail(data)
            )
        if 300 <= status < 400:
            raise PermanentErpError(
                f"the ERP redirected {method} {url} to {resp.headers.get('Location', '?')} (HTTP {status}) while "
                f"trying to {action}: set erp.base_url on /config to the address it redirects to"
            )
        hint = {
            404: "check that the order reached the ERP, and erp.base_url / erp.paths on /config",
            409: "the ERP's copy conflicts with this change; resolve it in the ERP, then retry",
        }.get(status, "fix the data in the store or the ERP, then retry")
        raise PermanentErpError(
            f"the ERP refused to {action}: {_message(data) or resp.reason} "
            f"(HTTP {status} on {method} {resp.request.path_url}); {hint}"
        )

    def _id(self, reply: Reply, action: str) -> str:
        return str(self._parse(action, lambda: field(reply.data, "id", "response")))

    def _parse(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except DocumentError as exc:
            raise PermanentErpError(
                f"the ERP's answer to {action} does not follow the REST contract: {exc} (see docs/erp-rest.md)"
            ) from None

    def _get_order_doc(self, ref: str, action: str) -> dict | None:
        reply = self._send("GET", "order", action, ref=ref, accept=(404,))
        if reply.status == 404:
            return None
        if not isinstance(reply.data, dict):
            raise PermanentErpError(
                f"the ERP's answer to {action} does not follow the REST contract: "
                "the order is not a JSON object (see docs/erp-rest.md)"
            )
        return reply.data

    def _update_order(self, order: Order, doc: dict, existing: dict, action: str) -> OrderResult:
        ref = order.external_ref
        erp_ref = str(self._parse(action, lambda: field(existing, "id", "order")))
        stored = self._parse(
            action, lambda: parse_time(field(existing, "source_updated_at", "order"), "order.source_updated_at")
        )
        status = str(existing.get("status") or "")
        if stored >= order.updated_at:
            return OrderResult(erp_ref, created=False, note="the ERP already has this version")
        if status != EDITABLE:
            return _not_applied(erp_ref, status)
        reply = self._send(
            "PUT", "order", action, ref=ref, body=doc, key=f"{ref}:v{rest_time(order.updated_at)}", accept=(409,)
        )
        if reply.status == 409:
            data = reply.data if isinstance(reply.data, dict) else {}
            if data.get("code") == "stale":
                return OrderResult(erp_ref, created=False, note="the ERP already has this version")
            return _not_applied(erp_ref, str(data.get("status") or "not editable"))
        if reply.replayed:
            return OrderResult(erp_ref, created=False, note="the ERP already has this version")
        return OrderResult(erp_ref, created=False, updated=True)

    def _page(
        self, name: str, action: str, cursor: str | None, limit: int, parse: Callable[[Any, str], T]
    ) -> tuple[list[T], str | None]:
        params: dict[str, Any] = {"limit": int(limit)}
        if cursor:
            params["after"] = cursor
        reply = self._send("GET", name, action, params=params)

        def items() -> tuple[list[T], str | None]:
            raw = field(reply.data, "items", "response")
            if not isinstance(raw, list):
                raise DocumentError("response.items is not a list")
            found = [parse(item, f"items[{n}]") for n, item in enumerate(raw)]
            if not found:
                return found, cursor
            nxt = reply.data.get("next")
            if not nxt:
                raise DocumentError("response.next is missing although items came back")
            return found, str(nxt)

        return self._parse(action, items)


def _not_applied(erp_ref: str, status: str) -> OrderResult:
    return OrderResult(erp_ref, created=False, note=f"the ERP order is {status}; the change was recorded, not applied")


def _order_view(doc: dict, ref: str) -> ErpOrderView:
    totals = field(doc, "totals", "order")
    lines = field(doc, "lines", "order")
    if not isinstance(lines, list):
        raise DocumentError("order.lines is not a list")
    dec = parse_decimal
    return ErpOrderView(
        erp_ref=str(field(doc, "id", "order")),
        external_ref=str(doc.get("external_ref") or ref),
        status=str(field(doc, "status", "order")),
        currency=str(field(doc, "currency", "order")),
        total=dec(field(totals, "total", "order.totals"), "order.totals.total"),
        payment_status=str(field(doc, "payment_status", "order")),
        customer_id=str(field(doc, "customer_id", "order")),
        lines=tuple(
            ErpOrderLineView(
                sku=line.get("sku") if isinstance(line, dict) else None,
                quantity=dec(field(line, "quantity", f"order.lines[{n}]"), f"order.lines[{n}].quantity"),
                unit_price=dec(field(line, "unit_price", f"order.lines[{n}]"), f"order.lines[{n}].unit_price"),
                line_total=dec(field(line, "line_total", f"order.lines[{n}]"), f"order.lines[{n}].line_total"),
                warehouse=_text_or_none(line.get("warehouse"), f"order.lines[{n}].warehouse"),
            )
            for n, line in enumerate(lines)
        ),
        credited_total=dec(doc.get("credited_total", "0"), "order.credited_total"),
        paid_total=dec(doc.get("paid_total", "0"), "order.paid_total"),
        **_attribution_view(doc.get("attribution")),
        warehouse=_text_or_none(doc.get("warehouse"), "order.warehouse"),
    )


def _text_or_none(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise DocumentError(f"{name} is not text or null")
    return value or None


def _attribution_view(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        return {}
    share, credit = doc.get("owner_share"), doc.get("owner_credit")
    return {
        "channel": str(doc.get("channel") or ""),
        "owner": doc.get("owner"),
        "owner_share": None if share is None else parse_decimal(share, "order.attribution.owner_share"),
        "owner_credit": None if credit is None else parse_decimal(credit, "order.attribution.owner_credit"),
    }


_NOT_JSON = object()


def _json(resp: requests.Response) -> Any:
    if not resp.content:
        return {}
    try:
        return resp.json()
    except ValueError:
        return _NOT_JSON


def _message(data: Any) -> str:
    """The ERP's own words: {"message": …}, {"error": …}, {"error": {"message": …}}, {"detail": …}, {"errors": […]}."""
    if not isinstance(data, dict):
        return ""
    for name in ("message", "error", "detail", "title"):
        value = data.get(name)
        if isinstance(value, dict):
            value = value.get("message")
        if isinstance(value, str) and value.strip():
            return value.strip()[:500]
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[:5])[:500]
    return ""


def _detail(data: Any) -> str:
    message = _message(data)
    return f" ({message})" if message else ""


def _retry_after(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (as_utc(when) - utcnow()).total_seconds())


def _cut_mid_answer(exc: requests.ConnectionError) -> bool:
    """Whether the connection was made and then broke (the ERP may have the request), rather than
    never made (refused, no such host)."""
    reason = exc.args[0] if exc.args else None
    return not isinstance(getattr(reason, "reason", reason), urllib3.exceptions.NewConnectionError)


def _short(exc: Exception) -> str:
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    return errno.group(0) if errno else text[:200]


__all__ = ["DEFAULT_PATHS", "RestErp"]
