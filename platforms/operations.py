"""The platform contract's store-side order operations: what the back office asks a store to do to an order.

Three ERP feeds end in a store call: a receipt marks the order paid (connector.sync.receipts), a parcel refused
at the door cancels it (connector.sync.undelivered), a credit note the ERP made itself refunds it
(connector.sync.erp_refunds). The core records each ERP document once, claims it for each attempt and keeps
the outcome; the platform's `Operations` reads the store's order and acts, through a core object bound to
one store and one document. Each operation first recognises what an earlier attempt whose answer was lost
did, so the store acts once; and before the store is told, the core binds what the store will echo back
(a paid, cancelled or refund webhook) as the ERP's own, so the ERP books nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

Outcome = tuple[str, str]  # (done | partial, the note a person reads)


class StoreProblem(Exception):
    """What the store cannot take as it is: a person must act (the message says what)."""


class FeedCore(Protocol):
    """One ERP document on its way to one store."""

    settings: Mapping[str, Any]  # the store's settings
    notify_customer: bool  # the store setting: whether the store emails the buyer about what we do
    order_id: str  # the store's order id
    ref: str  # the ERP document's ref (receipt, return, credit note)
    document: Mapping[str, Any]  # the ERP document as the core keeps it
    currency: str  # the document's currency

    def client(self) -> Any: ...

    def store_skus(self, erp_sku: str) -> set[str]:
        """The store SKUs that sell this ERP SKU (the SKU mapping)."""

    def sku_map(self) -> Mapping[str, str]:
        """The SKU mapping: store SKU → ERP SKU."""

    def locations_for(self, warehouse: str | None) -> list[str]:
        """The store locations that sell from this warehouse, mapped ones first (None: every location)."""


class ReceiptCore(FeedCore, Protocol):
    def covered(self, currency: str) -> Decimal:
        """What the ERP's receipts of this order add up to, this one included (StoreProblem when some are in
        another currency)."""

    def bind(self) -> None:
        """The order's money is the ERP's: the store's paid webhook that follows books no payment."""

    def already_paid(self, shown: str) -> Outcome:
        """The outcome when the store shows the order paid (`shown`: how it says so)."""


class ParcelCore(FeedCore, Protocol):
    note: str  # the staff note: why the order is cancelled

    def receipts_told(self) -> list[str]:
        """Finance's receipts of this order already told to the store (a paid order is no COD refusal)."""

    def bound(self) -> bool:
        """An earlier attempt bound this cancellation (its answer was lost)."""

    def bind(self) -> None:
        """The ERP closed the order itself: the store's cancelled webhook that follows cancels nothing."""


class RefundCore(FeedCore, Protocol):
    def bind(self, store_refund_id: str) -> None:
        """This store refund is the ERP's credit note: the store's refund webhook credits nothing."""


class Operations(Protocol):
    def mark_paid(self, core: ReceiptCore) -> Outcome:
        """Mark the order paid once the ERP's receipts cover what the store asks (else "partial")."""

    def cancel_refused(self, core: ParcelCore) -> Outcome:
        """Cancel the unpaid order whose parcel came back, restocking it, with the staff note."""

    def refund(self, core: RefundCore) -> tuple[str, str]:
        """Make the ERP's credit note a store refund, once: (the store refund's id, the note)."""


def cancelled_already(core: ParcelCore) -> Outcome:
    if core.bound():
        return "done", "the store shows the order cancelled: cancelled (an earlier try's answer was lost)"
    return "done", "the store already shows the order cancelled: nothing to cancel"


def unpaid(core: ParcelCore, paid_shown: str) -> None:
    """A paid order is no COD parcel refused at the door: a person finds out what happened."""
    receipts = core.receipts_told()
    if paid_shown or receipts:
        why = f"the store shows it {paid_shown}" if paid_shown else f"finance's receipts {', '.join(receipts)}"
        raise StoreProblem(
            f"the order is paid ({why}), so this is no COD parcel refused at the door: find out what happened to "
            "the money and the parcel, then refund and cancel the order in the store by hand"
        )
