"""The ERP contract every back end implements, and the errors it may raise.

The rest of the connector speaks only this contract, so a merchant can swap one ERP for another
in configuration. Every write is idempotent on the order's external_ref.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mappings.canonical import Customer, Order


class ErpError(Exception):
    """Base of every ERP failure; `retryable` tells the pipeline whether to try again."""

    retryable = False


class RetryableErpError(ErpError):
    """Timeouts, refused connections, 5xx, lock waits: the same write may succeed later."""

    retryable = True


class PermanentErpError(ErpError):
    """Validation failures (unknown SKU, missing customer data): a person must change something."""

    retryable = False


@dataclass(frozen=True)
class OrderResult:
    erp_ref: str  # the ERP's own id for the document
    created: bool  # False when the order already existed (a replay or an update)
    updated: bool = False
    note: str = ""  # what a person should know, e.g. "ERP already imported it; header not changed"


class ErpAdapter(Protocol):
    kind: str

    def test_connection(self) -> str:
        """Reach the ERP; return a short description, raise ErpError when it cannot be reached."""

    def upsert_customer(self, customer: Customer, external_ref: str) -> str:
        """Find the customer (normalised email, then phone) or create it; return the ERP id."""

    def push_order(self, order: Order) -> OrderResult:
        """Create the order, or update it when it already exists; idempotent on external_ref."""

    def close(self) -> None:
        """Release connections."""
