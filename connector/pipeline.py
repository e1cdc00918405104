"""From a stored inbox event to the ERP: claim, map, write, bind, and record what happened.

One function, `process_event`, safe to run any number of times and from any number of workers:
the claim is a conditional UPDATE, so an event is processed by one worker at a time, and the ERP
write is idempotent on the order's external ref, so a replay after a crash changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update

from adapters.backoff import backoff
from adapters.clock import utcnow
from adapters.erp import ErpError, ErpUnreachable, RetryableErpError
from adapters.storefront import StorefrontError
from connector import compliance, disconnect, erp_health
from connector.clients import shopify_client, woo_client
from connector.db import rowcount
from connector.holds import RiskSource
from connector.lifecycle import (
    TransactionSource,
    apply_order,
    apply_refund,
    cancel_deleted,
    credited,
    erp_ref_of,
    merchant_tables,
    order_as_taken,
    order_currency,
)
from connector.locations import restock_warehouses
from connector.models import EventAttempt, InboxEvent, Store
from connector.reported import shopify_inventory_level, woo_product_updated
from connector.runtime import Runtime, StoreInfo
from connector.tokens import uses_app_credentials
from mappings import cardnumbers, payloads, topics
from mappings.approval import risk_level
from mappings.canonical import Order, Transaction
from mappings.canonical_json import order_to_json, refund_to_json
from mappings.errors import MappingError
from mappings.merchant import apply_tables
from mappings.shopify import order_edit_summary, order_from_shopify
from mappings.shopify_refunds import refund_from_shopify
from mappings.shopify_returns import return_from_shopify
from mappings.shopify_transactions import transactions_from_shopify
from mappings.topics import SHOPIFY_ORDER_TOPICS, SHOPIFY_RETURN_TOPICS, WOO_ORDER_TOPICS
from mappings.woocommerce import order_from_woocommerce, refund_from_woocommerce

log = logging.getLogger(__name__)


class PayloadError(Exception):
    """The stored body cannot be read at all (permanent)."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: str  # succeeded | ignored | held | retry | failed | not_claimed
    error: str | None = None
    retry_at: datetime | None = None  # a retry: when, as stored in the event's next_attempt_at
    erp_silent: bool = False  # the ERP did not answer: the next events would wait for it just the same


def process_event(rt: Runtime, event_id: int) -> Outcome:
    claimed = _claim(rt, event_id)
    if claimed is None:
        return Outcome("not_claimed")
    event, store = claimed
    started = utcnow()
    result, silent = None, False
    try:
        status, result = _handle(rt, event, store)
        error, retryable = None, False
    except (MappingError, PayloadError, compliance.NeedsConfirmation) as exc:
        status, error, retryable = "failed", str(exc), False
    except (ErpError, StorefrontError) as exc:
        status, error, retryable = "failed", str(exc), exc.retryable
        silent = isinstance(exc, ErpUnreachable)
    except Exception as exc:  # a bug or an unforeseen failure: retry, then park with its name
        log.exception("event %s: unexpected error", event_id)
        status, retryable = "failed", True
        error = f"internal error {type(exc).__name__}: {exc} (report it to the connector's developers)"
    outcome = _finish(rt, event, started, status, error, retryable, result)
    if silent:
        erp_health.silent(rt, str(error))
        return dataclasses.replace(outcome, erp_silent=True)
    if outcome.status == "succeeded":
        erp_health.answered(rt)
    return outcome


def _claim(rt: Runtime, event_id: int) -> tuple[InboxEvent, StoreInfo] | None:
    """The event and its store when this worker got the event, else None. A pending event is taken once
    its next_attempt_at has come (a person's retry clears it). The session is let go of before the work
    starts: no transaction stays open while the ERP is called."""
    now = utcnow()
    claimable = or_(
        and_(
            InboxEvent.status == "pending",
            or_(InboxEvent.next_attempt_at.is_(None), InboxEvent.next_attempt_at <= now),
        ),
        and_(InboxEvent.status == "processing", InboxEvent.locked_until < now),  # its worker died
    )
    with rt.sessions.begin() as session:
        event = session.scalars(
            update(InboxEvent)
            .where(InboxEvent.id == event_id, claimable)
            .values(
                status="processing",
                locked_until=now + timedelta(seconds=rt.settings.lease_seconds),
                attempts=InboxEvent.attempts + 1,
            )
            .returning(InboxEvent)
        ).first()
        if event is None:
            return None
        store = rt.per_batch(("store", event.store_id), lambda: rt.store_info(session.get_one(Store, event.store_id)))
    return event, store


def _handle(rt: Runtime, event: InboxEvent, store: StoreInfo) -> tuple[str, dict]:
    handler = _HANDLERS.get((event.platform, event.topic))
    if handler is None:
        return "ignored", {"note": f"no action is defined for {event.platform} topic {event.topic}"}
    try:
        payload = payloads.read(event.body)
    except payloads.UnreadablePayload as exc:
        raise PayloadError(str(exc)) from None
    # Only the body is signed: a body valid for another topic is refused here, before anything acts on it.
    topics.check(event.platform, event.topic, payload, store.settings.get("shop_domain"))
    result = handler(rt, store, payload, event.id)
    if result.pop("ignored", False):  # e.g. the echo of our own stock write
        return "ignored", result
    if result.pop("held", False):  # awaiting a person's approval on the console: out of the queue till then
        return "held", result
    return "succeeded", result


def _shopify_order(rt: Runtime, store: StoreInfo, payload: dict, event_id: int) -> dict:
    order = apply_tables(order_from_shopify(payload, store.slug), merchant_tables(rt, store.id))
    return {
        "order": order_to_json(order),
        **apply_order(
            rt,
            store,
            order,
            str(payload.get("financial_status")),
            event_id,
            shopify_transactions(store, order),
            shopify_risk(store, order),
        ),
    }


def _admin_api(store: StoreInfo) -> bool:
    """Whether we hold Admin API credentials for the store (a store may send webhooks without them)."""
    return bool(store.secrets.get("access_token") or uses_app_credentials(store.settings, store.secrets))


def shopify_risk(store: StoreInfo, order: Order) -> RiskSource | None:
    """How to read the order's fraud risk for the approval rules (its webhook carries none); None for a
    store without Admin API credentials."""
    if not _admin_api(store):
        return None
    return lambda: risk_level(shopify_client(store).order_risk(order.external_id))


def shopify_transactions(store: StoreInfo, order: Order) -> TransactionSource | None:
    """How to read the order's transactions (its webhook carries none); None for a store without Admin
    API credentials, whose orders keep one payment for their total."""
    if not _admin_api(store):
        return None

    def read() -> tuple[Transaction, ...]:
        try:
            body = shopify_client(store).order_transactions(order.external_id)
        except StorefrontError as exc:
            raise StorefrontError(
                f"could not read the transactions of order {order.number} from Shopify to book its payments "
                f"({exc}); the order is in the ERP, its payments follow once Shopify answers",
                exc.retryable,
            ) from None
        return transactions_from_shopify(body, order.currency, order.number)

    return read


def _shopify_refund(rt: Runtime, store: StoreInfo, payload: dict, event_id: int) -> dict:
    currency = order_currency(rt, store.id, str(payload.get("order_id")))
    if currency is None:
        raise RetryableErpError(
            f"refund of order {payload.get('order_id')} arrived before its order reached the ERP; waiting for the order"
        )
    refund = refund_from_shopify(payload, store.slug, currency)
    locations = {line.location_id for line in refund.lines if line.location_id}
    if locations:  # the units go back to a store location: which warehouse?
        warehouse = restock_warehouses(rt, store, locations)
        refund = dataclasses.replace(
            refund,
            lines=tuple(
                dataclasses.replace(line, warehouse=warehouse.get(line.location_id or "")) for line in refund.lines
            ),
        )
    return {"refund": refund_to_json(refund), **apply_refund(rt, store, refund, event_id)}


def _shopify_order_edit(rt: Runtime, store: StoreInfo, payload: dict, event_id: int) -> dict:
    """Recorded for people to see: Shopify sends the edited order itself as orders/updated with every edit,
    and that is what the ERP follows (or records, once the ERP has taken the order over)."""
    order_id, changes = order_edit_summary(payload)
    return {
        "erp_ref": erp_ref_of(rt, store.id, order_id),
        "edits": changes or "no line changes",
        "note": f"order {order_id} was edited in the store; the ERP follows from the order's own update",
    }


def _shopify_return(rt: Runtime, store: StoreInfo, payload: dict, event_id: int) -> dict:
    """Recorded against its order for people to see: a return moves no money or stock until it is
    processed, and that comes as a refund (its credit note, the units restocked where the store says)."""
    notice = return_from_shopify(payload)
    erp_ref, order = order_as_taken(rt, store.id, notice.order_id)
    skus = {
        str(line.get("external_id")): str(line.get("sku") or line.get("title") or "")
        for line in order.get("lines") or []
        if isinstance(line, dict)
    }
    after = {
        "requested": "the ERP is told nothing until the return is processed into a refund",
        "open": "the goods are on their way back; the credit note follows from the refund",
        "closed": "done in the store; a refund, if any, reached the ERP as a credit note",
        "declined": "nothing comes back",
        "canceled": "nothing comes back",
    }[notice.status]
    return {
        "erp_ref": erp_ref,
        "order_number": order.get("number") or None,
        "return": notice.describe(skus),
        "note": f"order {notice.order_id}: return {notice.status}; {after}",
    }


def _woo_order(rt: Runtime, store: StoreInfo, payload: dict, event_id: int) -> dict:
    order = apply_tables(order_from_woocommerce(payload, store.slug), merchant_tables(rt, store.id))
    result = {"order": order_to_json(order), **apply_order(rt, store, order, str(payload.get("status")), event_id)}
    # WooCommerce tells of refunds only by id and total inside the order: fetch each new one.
    refund_ids = [str(r.get("id")) for r in payload.get("refunds") or [] if isinstance(r, dict)]
    if refund_ids and "erp_ref" in result:
        client = None
        for refund_id in refund_ids:
            if credited(rt, store.id, order, refund_id):
                continue
            client = client or woo_client(store)
            refund = refund_from_woocommerce(
                # Read by the worker, not through the inbox: its free text (the reason) is masked here.
                cardnumbers.mask_payload(client.get_refund(order.external_id, refund_id))[0],
                payload,
                store.slug,
                restock=store.settings.get("restock_refunds") == "always",
            )
            result.setdefault("refunds", []).append(apply_refund(rt, store, refund, event_id))
    return result


def _woo_deleted(rt: Runtime, store: StoreInfo, payload: dict, event_id: int) -> dict:
    return cancel_deleted(rt, store, str(payload.get("id")), event_id)


_HANDLERS = {
    **{("shopify", topic): _shopify_order for topic in SHOPIFY_ORDER_TOPICS},
    ("shopify", "refunds/create"): _shopify_refund,
    ("shopify", "orders/edited"): _shopify_order_edit,
    **{("shopify", topic): _shopify_return for topic in SHOPIFY_RETURN_TOPICS},
    ("shopify", "inventory_levels/update"): shopify_inventory_level,
    **{("woocommerce", topic): _woo_order for topic in WOO_ORDER_TOPICS},
    ("woocommerce", "order.deleted"): _woo_deleted,
    ("shopify", "customers/data_request"): compliance.data_request,
    ("shopify", "customers/redact"): compliance.customers_redact,
    ("shopify", "shop/redact"): compliance.shop_redact,
    ("shopify", "app/uninstalled"): disconnect.app_uninstalled,
    ("woocommerce", "product.updated"): woo_product_updated,
}


def _finish(
    rt: Runtime,
    event: InboxEvent,
    started: datetime,
    status: str,
    error: str | None,
    retryable: bool,
    result: dict | None,
) -> Outcome:
    finished = utcnow()
    retry_at = None
    event_id, lease = event.id, event.locked_until  # the lease our claim set
    spent = event.attempts - event.attempts_before_retry
    if status == "failed" and retryable and spent < rt.settings.max_attempts:
        status = "retry"
        wait = backoff(spent, rt.settings.retry_base_seconds, rt.settings.retry_cap_seconds)
        retry_at = _whole_second_after(finished + timedelta(seconds=wait))
    elif status == "failed" and retryable:
        error = f"gave up after {spent} attempts: {error}. Fix the cause, then retry the event"
    if error is not None:  # a message may quote the payload or an ERP's text: no NULs, no card numbers
        error = cardnumbers.mask(payloads.printable(error))
    changes: dict = {"locked_until": None, "last_error": error}  # None once it succeeded: attempts keep the history
    if result is not None:
        changes["result"] = result
        if isinstance(result.get("order"), dict):
            changes["order_number"] = str(result["order"].get("number"))[:64]
        elif result.get("order_number"):  # an event about an order that does not carry it (a return)
            changes["order_number"] = str(result["order_number"])[:64]
    if status == "retry":
        changes.update(status="pending", next_attempt_at=retry_at)
    else:
        changes.update(status=status, next_attempt_at=None, processed_at=finished)
    with rt.sessions.begin() as session:
        # Only while our lease holds: past it, another worker may have claimed the event, and its
        # outcome is the one that counts (the ERP writes of both were idempotent).
        kept = (
            rowcount(
                session.execute(
                    update(InboxEvent)
                    .where(InboxEvent.id == event_id, InboxEvent.locked_until == lease)
                    .values(**changes)
                )
            )
            == 1
        )
        if kept:
            session.add(
                EventAttempt(
                    event_id=event_id,
                    number=event.attempts,
                    started_at=started,
                    finished_at=finished,
                    outcome=status,
                    error=error,
                )
            )
    if not kept:
        log.warning(
            "event %s: its lease ran out during this attempt and another worker took it over; "
            "this attempt's outcome (%s) is not recorded",
            event_id,
            status,
            extra={"event": event_id, "store": event.store_id, "topic": event.topic},
        )
        return Outcome("not_claimed")
    log.info(
        "event %s %s (attempt %s)%s",
        event_id,
        status,
        event.attempts,
        f": {error}" if error else "",
        extra={
            "event": event_id,
            "store": event.store_id,
            "topic": event.topic,
            "order": changes.get("order_number", event.order_number),
        },
    )
    return Outcome(status, error, retry_at)


def _whole_second_after(moment: datetime) -> datetime:
    """`moment` rounded up to a whole second: RQ keeps a job's time in whole seconds (cutting off the rest), so
    the job queued for the stored time then never runs before it, when the event would not be taken yet."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)
