"""The ERP contract every back end implements, and the errors it may raise.

The rest of the connector speaks only this contract, so a merchant can swap one ERP for another
in configuration. Every write is idempotent on the order's external_ref.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from mappings.attribution import Attribution
from mappings.canonical import Customer, ErpRefund, Money, Order, Receipt, Refund, Shipment, StockLevel, Undelivered
from mappings.customers import normalise_email, normalise_phone


class ErpError(Exception):
    """Base of every ERP failure; `retryable` tells the pipeline whether to try again."""

    retryable = False


class RetryableErpError(ErpError):
    """Timeouts, refused connections, 5xx, lock waits: the same write may succeed later."""

    retryable = True


class ErpUnreachable(RetryableErpError):
    """The ERP did not answer (connect or call timed out, connection refused). Unlike a lock wait on one
    record, it says every call now would wait the same: a drain stops its batch at the first one."""


class PermanentErpError(ErpError):
    """Validation failures (unknown SKU, missing customer data): a person must change something."""

    retryable = False


def customer_identity(customer: Customer) -> tuple[str | None, str | None]:
    """The customer's normalised email and phone; a permanent error when nothing identifies them."""
    email, phone = normalise_email(customer.email), normalise_phone(customer.phone)
    if not (email or phone or customer.name):
        raise PermanentErpError(
            "the order has no customer email, phone or name: the ERP needs at least one "
            "to book it; fix the order in the store, then retry"
        )
    return email, phone


@dataclass(frozen=True)
class OrderResult:
    erp_ref: str  # the ERP's own id for the document
    created: bool  # False when the order already existed (a replay or an update)
    updated: bool = False
    note: str = ""  # what a person should know, e.g. "ERP already imported it; header not changed"
    payments: tuple[str, ...] = ()  # the ERP refs of the payments booked with the order (PaysWithOrder)


@dataclass(frozen=True)
class PaymentRecord:
    key: str  # idempotency key: one payment per key
    order_ref: str  # the order's external_ref
    amount: Money
    method: str  # card, paypal, cod, bank_transfer, manual, gift_card, other
    gateway: str
    transaction_ref: str | None
    paid_at: datetime


@dataclass(frozen=True)
class ErpCustomerView:
    """A customer the ERP holds, as a person deciding "is this the same customer?" needs to see it."""

    id: str
    name: str
    email: str | None
    phone: str | None
    postcode: str


@dataclass(frozen=True)
class ErpOrderLineView:
    sku: str | None
    quantity: Decimal
    unit_price: Decimal
    line_total: Decimal
    warehouse: str | None = None  # the warehouse it ships from (None: the order's, or the ERP's default)


@dataclass(frozen=True)
class ErpOrderView:
    """The ERP's side of an order, read back (for the console and the contract tests)."""

    erp_ref: str
    external_ref: str
    status: str  # new | imported | confirmed | cancelled (back ends map their own states onto these)
    currency: str
    total: Decimal
    payment_status: str
    customer_id: str
    lines: tuple[ErpOrderLineView, ...]
    credited_total: Decimal  # sum of its credit notes
    paid_total: Decimal  # sum of its recorded payments
    # Who has the credit for it (mappings.attribution): "" and None for an order written without one.
    channel: str = ""
    owner: str | None = None
    owner_share: Decimal | None = None
    owner_credit: Decimal | None = None
    warehouse: str | None = None  # the ship-from warehouse the connector routed it to (None: the ERP's default)


class PaysWithOrder(Protocol):
    """A back end that books an order's payments in the order's own transaction (the SQL staging tables): it says
    so with `books_payments_with_order = True`, and its push_order takes them."""

    books_payments_with_order: bool

    def push_order(
        self,
        order: Order,
        customer_id: str,
        attribution: Attribution | None = None,
        payments: Sequence[PaymentRecord] = (),
    ) -> OrderResult: ...


class ErpAdapter(Protocol):
    """What every ERP back end does. Ids going in and out are strings; writes are idempotent."""

    kind: str

    def test_connection(self) -> str:
        """Reach the ERP; return a short description, raise ErpError when it cannot be reached."""

    def check_order(self, order: Order) -> None:
        """Raise PermanentErpError naming the first field of the order (customer and payment included)
        that this back end cannot keep as it is. Called before any write, so a refused order writes nothing."""

    def find_customer(self, email: str | None, phone: str | None) -> str | None:
        """The ERP id of the customer with this normalised email, else this normalised phone."""

    def create_customer(self, customer: Customer, external_ref: str) -> str:
        """Create a customer record (matching policy is the connector's business); return its id."""

    def similar_customers(self, name: str, postcode: str, limit: int = 5) -> list[ErpCustomerView]:
        """Customers with this name at this postcode (compared as mappings.customers.same_person_maybe
        does), oldest first: the weak matches a person decides on. [] where the ERP keeps no postcodes."""

    def customer_owner(self, customer_id: str) -> str | None:
        """The owner the ERP gives this customer account (a sales rep, agent or region), or None."""

    def push_order(self, order: Order, customer_id: str, attribution: Attribution | None = None) -> OrderResult:
        """Create the order, or update it while the ERP still allows; idempotent on external_ref. With an
        attribution, the order carries its channel, owner and the owner's share and credit."""

    def record_payment(self, payment: PaymentRecord) -> str:
        """Book a payment against the order; idempotent on payment.key; marks the order paid."""

    def cancel_order(self, order_ref: str, reason: str) -> bool:
        """Cancel the order with the reason; False when it already was."""

    def create_credit_note(self, refund: Refund, order_ref: str) -> str:
        """A credit note / return with the refunded lines; idempotent on refund.external_ref."""

    def get_order(self, order_ref: str) -> ErpOrderView | None:
        """What the ERP holds for this order, or None."""

    def stock_changes(self, cursor: str | None, limit: int = 1000) -> tuple[list[StockLevel], str | None]:
        """Stock levels changed after `cursor` (None: from the start), oldest first, and the cursor to
        pass next time (unchanged when nothing changed). Cursors are opaque strings."""

    def shipments(self, cursor: str | None, limit: int = 500) -> tuple[list[Shipment], str | None]:
        """Shipments created or changed after `cursor`, oldest first, with the next cursor."""

    def receipts(self, cursor: str | None, limit: int = 500) -> tuple[list[Receipt], str | None]:
        """Money finance recorded in the ERP against orders (never the payments the connector wrote from
        the store), recorded or changed after `cursor`, oldest first, with the next cursor."""

    def undelivered(self, cursor: str | None, limit: int = 500) -> tuple[list[Undelivered], str | None]:
        """Parcels of orders that came back undelivered (a COD parcel refused at the door: the ERP took the
        goods back and closed its order), recorded or changed after `cursor`, oldest first, with the next
        cursor."""

    def offline_refunds(self, cursor: str | None, limit: int = 500) -> tuple[list[ErpRefund], str | None]:
        """Credit notes the ERP made itself against orders (a return taken at the counter, a goodwill
        refund; never those `create_credit_note` wrote from a store refund), made or changed after
        `cursor`, oldest first, with the next cursor."""

    def close(self) -> None:
        """Release connections."""
