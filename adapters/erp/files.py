"""File drop (CSV): for an ERP that imports files from a folder and exports files into another.

We write one CSV per document (customer, order, payment, cancellation, credit note) into the
`outbound` folder the ERP imports from; the ERP drops stock, shipment, receipt, undelivered and refund CSVs
into `inbound` for us to read (receipts: money finance recorded; undelivered: parcels that came back, a
COD parcel refused at the door; refunds: credit notes the ERP made itself; never the payment and credit
note files we wrote). The layouts are
the contract an ERP team implements (docs/erp-files.md, "ERP by file drop (CSV)").

Rules that make it safe:
- Every file appears whole or not at all: it is written under a dot-prefixed temporary name in the
  same folder, fsynced, then renamed (`os.replace`) to its final name.
- The ERP may consume and delete what we drop, so what we wrote is kept in a ledger of our own in
  the `state` folder (one JSON file per order and per customer, written the same way). Idempotency
  and `get_order` read the ledger, never `outbound`.
- An order is editable while its file is still in `outbound`: an update rewrites it. Once the ERP
  has picked it up (the file is gone), a later change is recorded in the ledger with a note.
- Inbound files are read in name order; the cursor is the last file name read. A file is moved to
  `inbound/archive/` only when a later call passes a cursor at or past it, so a consumer that
  crashed before saving its cursor reads it again.
- A folder that is missing, unwritable or full raises RetryableErpError naming the folder (fix it and
  the write lands on the next try); data the ERP cannot take raises PermanentErpError.
Writers are serialised by an flock on `<state>/.lock`, so several workers on one host may share it.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

from adapters.clock import utcnow
from adapters.erp.base import (
    ErpCustomerView,
    ErpOrderLineView,
    ErpOrderView,
    OrderResult,
    PaymentRecord,
    PermanentErpError,
    RetryableErpError,
    customer_identity,
)
from mappings.attribution import Attribution
from mappings.canonical import (
    Customer,
    ErpRefund,
    ErpRefundLine,
    Money,
    Order,
    Receipt,
    Refund,
    Shipment,
    ShipmentLine,
    StockLevel,
    Undelivered,
)
from mappings.customers import normalise_email, normalise_name, normalise_phone, normalise_postcode
from mappings.utc import as_utc, utc_text

log = logging.getLogger(__name__)

EDITABLE = "new"
MAX_SAFE_NAME = 180  # characters of a ref kept in a file name before it is shortened with a hash
LOCK_TIMEOUT = 30.0  # seconds to wait for another worker's write
TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 3600  # a temporary file this old was left by a crash; test_connection removes it

CUSTOMER_COLUMNS = (
    "customer_id",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "external_ref",
    "accepts_marketing",
    "created_at",
    "postcode",  # last: an importer reading the earlier columns by position is not disturbed
)
ORDER_COLUMNS = (
    "external_ref",
    "order_number",
    "version",
    "source",
    "store",
    "placed_at",
    "currency",
    "customer_id",
    "customer_email",
    "customer_name",
    "customer_phone",
    "taxes_included",
    "subtotal",
    "discount_total",
    "shipping_total",
    "fee_total",
    "tax_total",
    "total",
    "payment_status",
    "payment_method",
    "shipping_method",
    "ship_to_name",
    "ship_to_company",
    "ship_to_line1",
    "ship_to_line2",
    "ship_to_city",
    "ship_to_region",
    "ship_to_postal_code",
    "ship_to_country",
    "ship_to_phone",
    "note",
    "line_count",
    "line_no",
    "source_line_id",
    "sku",
    "description",
    "quantity",
    "unit_price",
    "line_discount",
    "line_tax",
    "line_total",
    # Added later, so last: a reader that takes columns by position keeps working.
    "tip_total",
    "duty_total",
    "additional_fee_total",
    "presentment_currency",
    "presentment_total",
    # Who has the credit (docs/order-flow.md, "Channel attribution"): web, the account's owner, its share and amount.
    "channel",
    "owner",
    "owner_share",
    "owner_credit",
    # The ship-from warehouse the routing rules chose (docs/order-flow.md, "Which warehouse ships"), the order's
    # and this line's (a split order's lines differ); empty: the ERP's default.
    "warehouse",
    "line_warehouse",
)
PAYMENT_COLUMNS = ("payment_key", "order_ref", "amount", "currency", "method", "gateway", "transaction_ref", "paid_at")
CANCEL_COLUMNS = ("order_ref", "order_number", "reason", "cancelled_at")
CREDIT_NOTE_COLUMNS = (
    "credit_note_ref",
    "order_ref",
    "currency",
    "subtotal",
    "tax_total",
    "shipping_total",
    "adjustment",
    "total",
    "reason",
    "issued_at",
    "line_count",
    "line_no",
    "order_line_no",
    "sku",
    "quantity",
    "line_subtotal",
    "line_tax",
    "restock",
    # Added later, so last: fees given back (tax included), all of them then the kinds finance books apart.
    "fee_total",
    "tip_total",
    "duty_total",
    "additional_fee_total",
    "restock_warehouse",
)
STOCK_COLUMNS = ("sku", "warehouse", "on_hand", "updated_at")
# The ERP's list of the accounts that have an owner, by the customer ids of our customer files: one file it
# replaces whole (written under a temporary name, then renamed) whenever an owner changes.
OWNERS_FILE = "customer-owners.csv"
OWNER_COLUMNS = ("customer_id", "owner")
SHIPMENT_COLUMNS = (
    "shipment_ref",
    "order_ref",
    "carrier",
    "tracking_number",
    "tracking_url",
    "shipped_at",
    "warehouse",
    "line_no",
    "sku",
    "quantity",
)

# One row per credit note line, the head repeated on each; a row with no sku carries only the head (a
# refund of shipping or goodwill alone). restock: true or false.
REFUND_COLUMNS = (
    "refund_ref",
    "order_ref",
    "currency",
    "shipping",
    "total",
    "reason",
    "created_at",
    "line_no",
    "sku",
    "quantity",
    "amount",
    "restock",
    "warehouse",
)
RECEIPT_COLUMNS = ("receipt_ref", "order_ref", "amount", "currency", "method", "reference", "received_at")

UNDELIVERED_COLUMNS = ("return_ref", "order_ref", "reason", "returned_at")


def safe_name(ref: str) -> str:
    """A file-name-safe, reversible spelling of a ref, the same on every file system.

    Lower-case ASCII letters, digits, '.' and '-' stay; ':' becomes '_'; every other character
    (upper case too, for case-insensitive shares) becomes '~' and the hex of its UTF-8 bytes
    (`_` -> `~5f`, `A` -> `~41`). Past MAX_SAFE_NAME characters the name is cut and ends with '+'
    and 16 hex digits of the ref's SHA-256, so it stays unique.
    """
    out = []
    for ch in ref:
        if ch == ":":
            out.append("_")
        elif ("a" <= ch <= "z") or ("0" <= ch <= "9") or ch in ".-":
            out.append(ch)
        else:
            out.append("".join(f"~{b:02x}" for b in ch.encode("utf-8")))
    name = "".join(out)
    if len(name) > MAX_SAFE_NAME:
        name = name[: MAX_SAFE_NAME - 17] + "+" + hashlib.sha256(ref.encode("utf-8")).hexdigest()[:16]
    return name


def _dec(value: Decimal) -> str:
    return format(value, "f")


def _person_key(name: str, postcode: str) -> str | None:
    """What the person index is keyed by: the normalised name and postcode, None when either is missing."""
    name, postcode = normalise_name(name), normalise_postcode(postcode)
    return f"{name}|{postcode}" if name and postcode else None


def _now() -> str:
    return utcnow().isoformat()


def _explain(which: str, folder: Path, action: str, error: OSError) -> str:
    code = error.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        why = "is missing or is not a folder (is the share mounted?); create it or fix the path"
    elif code in (errno.EACCES, errno.EPERM):
        why = "is not writable for the connector (permission denied); give the connector's user write access"
    elif code in (errno.ENOSPC, errno.EDQUOT):
        why = "is full (no space left on the device or quota exceeded); free some space"
    elif code == errno.EROFS:
        why = "is on a read-only file system; remount it read-write"
    else:
        why = f"failed: {error.strerror or error}"
    return f"the {which} folder {folder} {why} — while trying to {action}; it will be retried"


class FileDropErp:
    kind = "files"

    def __init__(
        self,
        outbound: str | os.PathLike,
        inbound: str | os.PathLike,
        state: str | os.PathLike | None = None,
        delimiter: str = ",",
        encoding: str = "utf-8",
        lock_timeout: float = LOCK_TIMEOUT,
    ):
        if not outbound or not inbound:
            raise PermanentErpError(
                "the files ERP needs an outbound and an inbound folder: set erp.outbound "
                "and erp.inbound in the configuration"
            )
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
            raise PermanentErpError(
                f"erp.delimiter must be one character other than a quote or newline, got {delimiter!r}"
            )
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise PermanentErpError(
                f"erp.encoding {encoding!r} is not a known text encoding (use utf-8, utf-8-sig, cp1252, latin-1, ...)"
            ) from None
        self.outbound = Path(os.path.abspath(os.path.expanduser(outbound)))
        self.inbound = Path(os.path.abspath(os.path.expanduser(inbound)))
        self.state = (
            Path(os.path.abspath(os.path.expanduser(state))) if state else self.outbound.parent / ".connector-state"
        )
        self.delimiter = delimiter
        self.encoding = encoding
        self.lock_timeout = lock_timeout

    # ---- contract ---------------------------------------------------------------------------

    def test_connection(self) -> str:
        self._require_dir("outbound", self.outbound, "test the connection")
        self._require_dir("inbound", self.inbound, "test the connection")
        self._ensure_state()
        probe = f".probe-{uuid.uuid4().hex}"
        for which, folder in (("outbound", self.outbound), ("state", self.state)):
            with self._io(which, folder, "test the connection"):
                self._atomic_write(folder, probe, b"")
                os.unlink(folder / probe)
            self._sweep_temps(folder)
        with self._io("inbound", self.inbound, "test the connection"):
            os.listdir(self.inbound)
        return f"file drop: writing to {self.outbound}, reading {self.inbound}, ledger in {self.state}"

    def check_order(self, order: Order) -> None:
        """CSV files keep text of any length."""
        return None

    def find_customer(self, email: str | None, phone: str | None) -> str | None:
        for kind, value in (("email", normalise_email(email)), ("phone", normalise_phone(phone))):
            if value:
                entry = self._read_json(self._customer_index(kind, value), "look up the customer")
                if entry is not None and entry.get(kind) == value:
                    return str(entry["customer_id"])
        return None

    def create_customer(self, customer: Customer, external_ref: str) -> str:
        email, phone = customer_identity(customer)
        with self._locked():
            self._require_dir("outbound", self.outbound, "write the customer")  # no id is used up while it is down
            sequence = self._read_json(self.state / "sequence.json", "number the customer") or {}
            number = int(sequence.get("customer", 0)) + 1
            customer_id = f"C{number:06d}"
            self._write_json(self.state / "sequence.json", {**sequence, "customer": number})
            now = _now()
            name = f"customer-{customer_id}.csv"
            row = {
                "customer_id": customer_id,
                "name": customer.name,
                "first_name": customer.first_name,
                "last_name": customer.last_name,
                "email": email or "",
                "phone": phone or "",
                "external_ref": external_ref,
                "accepts_marketing": _bool(customer.accepts_marketing),
                "created_at": now,
                "postcode": customer.postcode.strip(),
            }
            self._drop(
                name, self._csv(CUSTOMER_COLUMNS, [row], f"customer {customer_id}"), f"write customer {customer_id}"
            )
            self._write_json(
                self.state / "customers" / f"{customer_id}.json",
                {
                    "customer_id": customer_id,
                    "file": name,
                    "email": email,
                    "phone": phone,
                    "name": customer.name,
                    "postcode": customer.postcode.strip(),
                    "external_refs": [external_ref],
                    "created_at": now,
                },
            )
            for kind, value in (("email", email), ("phone", phone)):
                if value and self._read_json(self._customer_index(kind, value), "index the customer") is None:
                    self._write_json(self._customer_index(kind, value), {kind: value, "customer_id": customer_id})
            self._index_person(customer.name, customer.postcode, customer_id, add=True)
            return customer_id

    def similar_customers(self, name: str, postcode: str, limit: int = 5) -> list[ErpCustomerView]:
        """From the customers this connector wrote (the ledger): a file-drop ERP answers no questions."""
        key = _person_key(name, postcode)
        if key is None:
            return []
        entry = self._read_json(self._customer_index("person", key), "look for similar customers") or {}
        found = []
        for customer_id in entry.get("customer_ids", []):
            ledger = self._read_json(self.state / "customers" / f"{customer_id}.json", "read a similar customer")
            if ledger and not ledger.get("erased"):
                found.append(
                    ErpCustomerView(
                        customer_id,
                        ledger.get("name") or "",
                        ledger.get("email"),
                        ledger.get("phone"),
                        ledger.get("postcode") or "",
                    )
                )
        return found[:limit]

    def _index_person(self, name: str, postcode: str, customer_id: str, add: bool) -> None:
        """Keep `customer_id` in (or take it out of) the index of customers with this name and postcode."""
        key = _person_key(name, postcode)
        if key is None:
            return
        index = self._customer_index("person", key)
        ids = [
            i for i in (self._read_json(index, "index the customer") or {}).get("customer_ids", []) if i != customer_id
        ]
        self._write_json(index, {"customer_ids": [*ids, customer_id] if add else ids})

    def forget_customers(self, emails: Iterable[str], phones: Iterable[str]) -> int:
        """Erase these people from our ledger (a privacy request): their index entries go, and each customer
        file keeps only its id and the CSV's name. The CSV the ERP imported is the merchant's record, not
        ours. Returns how many customer files were erased."""
        erased = 0
        with self._locked():
            found: set[str] = set()
            for kind, values in (("email", emails), ("phone", phones)):
                for value in values:
                    index = self._customer_index(kind, value)
                    entry = self._read_json(index, "look up the customer to erase")
                    if entry is not None:
                        found.add(str(entry.get("customer_id")))
                        with self._io("state", self.state, "erase the customer's index entry"):
                            index.unlink(missing_ok=True)
            for customer_id in sorted(found):
                path = self.state / "customers" / f"{customer_id}.json"
                ledger = self._read_json(path, "erase the customer")
                if ledger is not None:
                    self._index_person(ledger.get("name") or "", ledger.get("postcode") or "", customer_id, add=False)
                    self._write_json(path, {"customer_id": customer_id, "file": ledger.get("file"), "erased": _now()})
                    erased += 1
        return erased

    def customer_owner(self, customer_id: str) -> str | None:
        path = self.inbound / OWNERS_FILE
        try:
            for _, row in self._rows(path, OWNER_COLUMNS):
                if row["customer_id"] == customer_id:
                    return row["owner"] or None
        except FileNotFoundError:
            return None  # the ERP names no owners (yet)
        return None

    def push_order(self, order: Order, customer_id: str, attribution: Attribution | None = None) -> OrderResult:
        ref = order.external_ref
        name = f"order-{safe_name(ref)}.csv"
        action = f"write order {order.number}"
        with self._locked():
            ledger = self._read_order(ref, action)
            if ledger is None:
                self._drop(name, self._order_csv(order, customer_id, attribution), action)
                now = _now()
                ledger = {
                    "erp_ref": name,
                    "external_ref": ref,
                    "file": name,
                    "status": EDITABLE,
                    "created_at": now,
                    "payments": {},
                    "credit_notes": {},
                    "notes": [],
                }
                facts = _order_facts(order, customer_id, attribution)
                self._write_order({**ledger, **facts, "updated_at": now}, action)
                return OrderResult(erp_ref=name, created=True)
            erp_ref = ledger["erp_ref"]
            if datetime.fromisoformat(ledger["version"]) >= order.updated_at:
                return OrderResult(erp_ref, created=False, note="the ERP already has this version")
            status = self._refresh_status(ledger, action)
            if status != EDITABLE:
                version = utc_text(order.updated_at)
                state = (
                    f"the ERP already picked up {ledger['file']} (status imported)"
                    if status == "imported"
                    else f"the ERP order is {status}"
                )
                note = (
                    f"{state}; the change (version {version}) was recorded, not applied: "
                    "change the order in the ERP by hand if it matters"
                )
                if not any(n.get("version") == version for n in ledger["notes"]):
                    ledger["notes"].append(
                        {"at": _now(), "version": version, "total": _dec(order.totals.total.amount), "note": note}
                    )
                    self._write_order(ledger, action)
                return OrderResult(erp_ref, created=False, note=note)
            self._drop(ledger["file"], self._order_csv(order, customer_id, attribution), action)
            facts = _order_facts(order, customer_id, attribution)
            self._write_order({**ledger, **facts, "updated_at": _now()}, action)
            return OrderResult(erp_ref, created=False, updated=True)

    def record_payment(self, payment: PaymentRecord) -> str:
        action = f"record the payment of {payment.order_ref}"
        with self._locked():
            ledger = self._order_or_fail(payment.order_ref, action)
            existing = ledger["payments"].get(payment.key)
            if existing is not None:
                return existing["erp_ref"]
            name = f"payment-{safe_name(payment.key)}.csv"
            row = {
                "payment_key": payment.key,
                "order_ref": payment.order_ref,
                "amount": _dec(payment.amount.amount),
                "currency": payment.amount.currency,
                "method": payment.method,
                "gateway": payment.gateway,
                "transaction_ref": payment.transaction_ref or "",
                "paid_at": utc_text(payment.paid_at),
            }
            self._drop(name, self._csv(PAYMENT_COLUMNS, [row], f"payment {payment.key}"), action)
            ledger["payments"][payment.key] = {
                "erp_ref": name,
                "amount": _dec(payment.amount.amount),
                "currency": payment.amount.currency,
                "at": _now(),
            }
            if ledger["payment_status"] not in ("partially_refunded", "refunded"):
                # A split tender arrives as several payments: the order is paid once they cover its total.
                paid = sum((Decimal(p["amount"]) for p in ledger["payments"].values()), Decimal(0))
                ledger["payment_status"] = "paid" if paid >= Decimal(ledger["total"]) else "partially_paid"
            self._write_order(ledger, action)
            return name

    def cancel_order(self, order_ref: str, reason: str) -> bool:
        action = f"cancel {order_ref}"
        with self._locked():
            ledger = self._order_or_fail(order_ref, action)
            if ledger["status"] == "cancelled":
                return False
            now = _now()
            name = f"cancel-{safe_name(order_ref)}.csv"
            row = {
                "order_ref": order_ref,
                "order_number": ledger.get("number", ""),
                "reason": reason,
                "cancelled_at": now,
            }
            self._drop(name, self._csv(CANCEL_COLUMNS, [row], f"cancellation of {order_ref}"), action)
            ledger.update(status="cancelled", cancel_file=name, cancel_reason=reason, cancelled_at=now, updated_at=now)
            self._write_order(ledger, action)
            return True

    def create_credit_note(self, refund: Refund, order_ref: str) -> str:
        action = f"create the credit note of {order_ref}"
        with self._locked():
            ledger = self._order_or_fail(order_ref, action)
            existing = ledger["credit_notes"].get(refund.external_ref)
            if existing is not None:
                return existing["erp_ref"]
            line_nos = {line["source_line_id"]: line["line_no"] for line in ledger["lines"]}
            subtotal = sum((line.subtotal.amount for line in refund.lines), Decimal(0))
            tax = sum((line.tax.amount for line in refund.lines), Decimal(0))
            head = {
                "credit_note_ref": refund.external_ref,
                "order_ref": order_ref,
                "currency": refund.currency,
                "subtotal": _dec(subtotal),
                "tax_total": _dec(tax),
                "shipping_total": _dec(refund.shipping.amount),
                "adjustment": _dec(refund.adjustment.amount),
                "total": _dec(refund.total.amount),
                "reason": refund.reason,
                "issued_at": utc_text(refund.created_at),
                "line_count": str(len(refund.lines)),
                "fee_total": _dec(refund.fee_total.amount),
                "tip_total": _dec(refund.fees_of("tip").amount),
                "duty_total": _dec(refund.fees_of("duty").amount),
                "additional_fee_total": _dec(refund.fees_of("additional_fee").amount),
            }
            rows = [
                {
                    **head,
                    "line_no": str(n),
                    "order_line_no": str(line_nos.get(line.line_external_id, "")),
                    "sku": line.sku or "",
                    "quantity": str(line.quantity),
                    "line_subtotal": _dec(line.subtotal.amount),
                    "line_tax": _dec(line.tax.amount),
                    "restock": _bool(line.restock),
                    "restock_warehouse": line.warehouse or "",
                }
                for n, line in enumerate(refund.lines, start=1)
            ] or [head]
            name = f"creditnote-{safe_name(refund.external_ref)}.csv"
            self._drop(name, self._csv(CREDIT_NOTE_COLUMNS, rows, f"credit note {refund.external_ref}"), action)
            ledger["credit_notes"][refund.external_ref] = {
                "erp_ref": name,
                "total": _dec(refund.total.amount),
                "at": _now(),
            }
            credited = sum((Decimal(c["total"]) for c in ledger["credit_notes"].values()), Decimal(0))
            ledger["payment_status"] = "refunded" if credited >= Decimal(ledger["total"]) else "partially_refunded"
            self._write_order(ledger, action)
            return name

    def get_order(self, order_ref: str) -> ErpOrderView | None:
        ledger = self._read_order(order_ref, f"read {order_ref}")
        if ledger is None:
            return None
        status = ledger["status"]
        if status == EDITABLE and self.outbound.is_dir() and not (self.outbound / ledger["file"]).exists():
            status = "imported"
        return ErpOrderView(
            erp_ref=ledger["erp_ref"],
            external_ref=order_ref,
            status=status,
            currency=ledger["currency"],
            total=Decimal(ledger["total"]),
            payment_status=ledger["payment_status"],
            customer_id=str(ledger["customer_id"]),
            lines=tuple(
                ErpOrderLineView(
                    line["sku"],
                    Decimal(line["quantity"]),
                    Decimal(line["unit_price"]),
                    Decimal(line["line_total"]),
                    line.get("warehouse"),
                )
                for line in ledger["lines"]
            ),
            credited_total=sum((Decimal(c["total"]) for c in ledger["credit_notes"].values()), Decimal(0)),
            paid_total=sum((Decimal(p["amount"]) for p in ledger["payments"].values()), Decimal(0)),
            **_attribution_view(ledger.get("attribution")),
            warehouse=ledger.get("warehouse"),
        )

    def stock_changes(self, cursor: str | None, limit: int = 1000) -> tuple[list[StockLevel], str | None]:
        return self._inbound_files("stock", cursor, limit, self._parse_stock)

    def shipments(self, cursor: str | None, limit: int = 500) -> tuple[list[Shipment], str | None]:
        return self._inbound_files("shipment", cursor, limit, self._parse_shipments)

    def receipts(self, cursor: str | None, limit: int = 500) -> tuple[list[Receipt], str | None]:
        return self._inbound_files("receipt", cursor, limit, self._parse_receipts)

    def undelivered(self, cursor: str | None, limit: int = 500) -> tuple[list[Undelivered], str | None]:
        return self._inbound_files("undelivered", cursor, limit, self._parse_undelivered)

    def offline_refunds(self, cursor: str | None, limit: int = 500) -> tuple[list[ErpRefund], str | None]:
        return self._inbound_files("refund", cursor, limit, self._parse_refunds)

    def close(self) -> None:
        return None

    # ---- writing ----------------------------------------------------------------------------

    def _order_csv(self, order: Order, customer_id: str, attribution: Attribution | None) -> bytes:
        t = order.totals
        ship = order.shipping_address
        head = {
            **{name: value or "" for name, value in _attribution_facts(attribution, order).items()},
            "external_ref": order.external_ref,
            "order_number": order.number,
            "version": utc_text(order.updated_at),
            "source": order.source,
            "store": order.store,
            "placed_at": utc_text(order.placed_at),
            "currency": order.currency,
            "customer_id": customer_id,
            "customer_email": normalise_email(order.customer.email) or "",
            "customer_name": order.customer.name,
            "customer_phone": normalise_phone(order.customer.phone) or "",
            "taxes_included": _bool(order.taxes_included),
            "subtotal": _dec(t.subtotal.amount),
            "discount_total": _dec(t.discount_total.amount),
            "shipping_total": _dec(t.shipping_total.amount),
            "fee_total": _dec(t.fees.amount),
            "tax_total": _dec(t.tax_total.amount),
            "total": _dec(t.total.amount),
            "payment_status": order.payment.status,
            "payment_method": order.payment.method or "other",
            "shipping_method": ", ".join(s.title for s in order.shipping_lines),
            "ship_to_name": " ".join(p for p in (ship.first_name, ship.last_name) if p) if ship else "",
            "ship_to_company": ship.company if ship else "",
            "ship_to_line1": ship.line1 if ship else "",
            "ship_to_line2": ship.line2 if ship else "",
            "ship_to_city": ship.city if ship else "",
            "ship_to_region": ship.region if ship else "",
            "ship_to_postal_code": ship.postal_code if ship else "",
            "ship_to_country": ship.country_code if ship else "",
            "ship_to_phone": ship.phone if ship else "",
            "note": order.note,
            "line_count": str(len(order.lines)),
            "tip_total": _dec(order.fees_of("tip").amount),
            "duty_total": _dec(order.fees_of("duty").amount),
            "additional_fee_total": _dec(order.fees_of("additional_fee").amount),
            "presentment_currency": order.presentment_total.currency if order.presentment_total else "",
            "presentment_total": _dec(order.presentment_total.amount) if order.presentment_total else "",
            "warehouse": order.warehouse or "",
        }
        rows = [
            {
                **head,
                "line_no": str(line.line_no),
                "source_line_id": line.external_id,
                "sku": line.sku or "",
                "description": line.title + (f" - {line.variant_title}" if line.variant_title else ""),
                "quantity": str(line.quantity),
                "unit_price": _dec(line.unit_price.amount),
                "line_discount": _dec(line.discount_total.amount),
                "line_tax": _dec(line.tax_total.amount),
                "line_total": _dec(line.line_total.amount),
                "line_warehouse": line.warehouse or "",
            }
            for line in order.lines
        ] or [head]
        return self._csv(ORDER_COLUMNS, rows, f"order {order.number}")

    def _csv(self, columns: tuple[str, ...], rows: list[dict[str, str]], what: str) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.delimiter, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_one_line(row.get(c, "")) for c in columns])
        try:
            return buffer.getvalue().encode(self.encoding)
        except UnicodeEncodeError as e:
            bad = e.object[e.start : e.end]
            raise PermanentErpError(
                f"{what} contains {bad!r}, which the configured file encoding {self.encoding} cannot write: "
                "set erp.encoding to utf-8 (or an encoding the ERP reads that has it), or fix the data in the store"
            ) from None

    def _drop(self, name: str, data: bytes, action: str) -> None:
        """Put a whole file into outbound under its final name, or raise having left nothing."""
        self._require_dir("outbound", self.outbound, action)
        with self._io("outbound", self.outbound, action):
            self._atomic_write(self.outbound, name, data)

    @staticmethod
    def _atomic_write(folder: Path, name: str, data: bytes) -> None:
        temp = folder / f"{TEMP_PREFIX}{name}.{uuid.uuid4().hex[:12]}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, folder / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable where the file system allows
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _sweep_temps(self, folder: Path) -> None:
        # The file system's clock, not the project's: st_mtime is stamped by the kernel.
        cutoff = time.time() - STALE_TEMP_SECONDS
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if entry.name.startswith(TEMP_PREFIX) and entry.stat().st_mtime < cutoff:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    # ---- the ledger ---------------------------------------------------------------------------

    def _ensure_state(self) -> None:
        with self._io("state", self.state, "prepare the connector's ledger"):
            for sub in ("orders", "customers/by-email", "customers/by-phone", "customers/by-person"):
                (self.state / sub).mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure_state()
        with self._io("state", self.state, "take the connector's write lock"):
            fd = os.open(self.state / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise RetryableErpError(
                            f"another connector worker has held the lock {self.state / '.lock'} for over "
                            f"{self.lock_timeout:g}s; trying again shortly"
                        ) from None
                    time.sleep(0.01)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _read_json(self, path: Path, action: str) -> dict | None:
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as e:
            raise RetryableErpError(_explain("state", self.state, action, e)) from e
        try:
            return json.loads(text)
        except ValueError:
            raise PermanentErpError(
                f"the connector's ledger file {path} is not valid JSON (edited by hand?): "
                "restore it from a backup, then retry"
            ) from None

    def _write_json(self, path: Path, data: dict) -> None:
        with self._io("state", self.state, "update the connector's ledger"):
            self._atomic_write(path.parent, path.name, json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))

    def _order_path(self, ref: str) -> Path:
        return self.state / "orders" / f"{safe_name(ref)}.json"

    def _customer_index(self, kind: str, value: str) -> Path:
        return self.state / "customers" / f"by-{kind}" / f"{hashlib.sha256(value.encode('utf-8')).hexdigest()}.json"

    def _read_order(self, ref: str, action: str) -> dict | None:
        return self._read_json(self._order_path(ref), action)

    def _write_order(self, ledger: dict, action: str) -> None:
        self._write_json(self._order_path(ledger["external_ref"]), ledger)

    def _order_or_fail(self, ref: str, action: str) -> dict:
        ledger = self._read_order(ref, action)
        if ledger is None:
            raise PermanentErpError(f"the ERP has no order {ref}; import the order first, then retry")
        return ledger

    def _refresh_status(self, ledger: dict, action: str) -> str:
        """`new` while the order's file is still in outbound; `imported` once the ERP took it away."""
        if ledger["status"] == EDITABLE:
            self._require_dir("outbound", self.outbound, action)
            if not (self.outbound / ledger["file"]).exists():
                ledger["status"] = "imported"
                ledger["picked_up_seen_at"] = _now()
                self._write_order(ledger, action)
        return ledger["status"]

    # ---- reading what the ERP drops -----------------------------------------------------------

    def _inbound_files(
        self, prefix: str, cursor: str | None, limit: int, parse: Callable[[Path], list]
    ) -> tuple[list, str | None]:
        if cursor is not None and not re.fullmatch(rf"{prefix}-[^/\\]*\.csv", cursor):
            raise PermanentErpError(
                f"cursor {cursor!r} was not made by the files ERP back end for {prefix} files; reset the sync cursor"
            )
        action = f"read {prefix} files"
        self._require_dir("inbound", self.inbound, action)
        with self._io("inbound", self.inbound, action):
            names = sorted(
                e.name
                for e in os.scandir(self.inbound)
                if e.name.startswith(f"{prefix}-") and e.name.endswith(".csv") and e.is_file()
            )
        if cursor is not None:
            self._archive([n for n in names if n <= cursor])
            names = [n for n in names if n > cursor]
        found: list = []
        last = cursor
        for name in names:
            try:
                items = parse(self.inbound / name)
            except FileNotFoundError:
                continue  # taken away meanwhile
            except PermanentErpError:
                if found:
                    break  # return the good files before it; the next call reports this one
                raise
            if found and len(found) + len(items) > limit:
                break
            found.extend(items)
            last = name
        return found, last

    def _archive(self, names: list[str]) -> None:
        if not names:
            return
        archive = self.inbound / "archive"
        try:
            archive.mkdir(exist_ok=True)
            for name in names:
                os.replace(self.inbound / name, archive / name)
        except OSError as e:
            # Reading stays correct without archiving (the cursor skips these files); say so and go on.
            log.warning("could not archive read files: %s", _explain("inbound", self.inbound, "archive files", e))

    def _rows(self, path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
        name = path.name
        with self._io("inbound", self.inbound, f"read {name}"):
            raw = path.read_bytes()
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError as e:
            raise PermanentErpError(
                f"inbound file {name} is not valid {self.encoding} text (byte {e.start}): "
                "have the ERP write it in the configured erp.encoding, or change erp.encoding"
            ) from None
        reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=self.delimiter, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise PermanentErpError(
                    f"inbound file {name} is empty: it needs a header row "
                    f"({self.delimiter.join(required)}); remove or replace it"
                )
            columns = [h.strip().lower() for h in header]
            missing = [c for c in required if c not in columns]
            if missing:
                raise PermanentErpError(
                    f"inbound file {name} line 1: missing column(s) {', '.join(missing)}; the header row must "
                    f"name {', '.join(required)} (separated by {self.delimiter!r}); fix or replace the file"
                )
            for values in reader:
                if not values or all(not v.strip() for v in values):
                    continue
                if len(values) != len(columns):
                    raise PermanentErpError(
                        f"inbound file {name} line {reader.line_num}: {len(values)} fields where the header has "
                        f"{len(columns)}; fix or replace the file"
                    )
                yield reader.line_num, dict(zip(columns, (v.strip() for v in values), strict=False))
        except csv.Error as e:
            raise PermanentErpError(
                f"inbound file {name} line {reader.line_num}: not valid CSV ({e}); fix or replace the file"
            ) from None

    def _parse_stock(self, path: Path) -> list[StockLevel]:
        levels = []
        for line, row in self._rows(path, STOCK_COLUMNS):
            at = _Where(path.name, line)
            levels.append(
                StockLevel(
                    sku=at.text(row, "sku"),
                    warehouse=row["warehouse"],  # empty: the only one
                    on_hand=at.decimal(row, "on_hand"),
                    updated_at=at.time(row, "updated_at"),
                )
            )
        return levels

    def _parse_shipments(self, path: Path) -> list[Shipment]:
        heads: dict[str, tuple] = {}
        lines: dict[str, dict[int, ShipmentLine]] = {}
        for line, row in self._rows(path, SHIPMENT_COLUMNS):
            at = _Where(path.name, line)
            ref = at.text(row, "shipment_ref")
            head = (
                at.text(row, "order_ref"),
                row["carrier"],
                row["tracking_number"],
                row["tracking_url"],
                at.time(row, "shipped_at"),
                row["warehouse"],
            )
            if heads.setdefault(ref, head) != head:
                at.fail(
                    f"shipment {ref} has rows that disagree on order_ref, carrier, tracking, shipped_at or "
                    "warehouse; repeat the same values on every line of a shipment"
                )
            line_no = at.integer(row, "line_no")
            if line_no in lines.setdefault(ref, {}):
                at.fail(f"shipment {ref} has line_no {line_no} twice")
            lines[ref][line_no] = ShipmentLine(sku=at.text(row, "sku"), quantity=at.integer(row, "quantity"))
        return [
            Shipment(
                ref=ref,
                order_ref=order_ref,
                lines=tuple(lines[ref][n] for n in sorted(lines[ref])),
                shipped_at=shipped_at,
                carrier=carrier,
                tracking_number=tracking,
                tracking_url=url,
                warehouse=warehouse,
            )
            for ref, (order_ref, carrier, tracking, url, shipped_at, warehouse) in heads.items()
        ]

    def _parse_refunds(self, path: Path) -> list[ErpRefund]:
        heads: dict[str, tuple] = {}
        first: dict[str, int] = {}
        lines: dict[str, dict[int, ErpRefundLine]] = {}
        for line, row in self._rows(path, REFUND_COLUMNS):
            at = _Where(path.name, line)
            ref = at.text(row, "refund_ref")
            currency = at.currency(row)
            head = (
                at.text(row, "order_ref"),
                currency,
                at.decimal(row, "shipping") if row["shipping"] else Decimal(0),
                at.decimal(row, "total"),
                row["reason"],
                at.time(row, "created_at"),
            )
            if heads.setdefault(ref, head) != head:
                at.fail(f"refund {ref} has rows that disagree on its head; repeat the same values on every line")
            first.setdefault(ref, line)
            lines.setdefault(ref, {})
            if not row["sku"]:
                continue
            line_no = at.integer(row, "line_no")
            if line_no in lines[ref]:
                at.fail(f"refund {ref} has line_no {line_no} twice")
            if row["restock"].strip().lower() not in ("true", "false"):
                at.fail(f"restock {row['restock']!r} is not true or false")
            quantity = at.decimal(row, "quantity")
            if quantity != quantity.to_integral_value() or quantity < 0:
                at.fail(f"quantity {row['quantity']!r} is not a whole number of units")
            lines[ref][line_no] = ErpRefundLine(
                sku=row["sku"],
                quantity=int(quantity),
                amount=Money(at.decimal(row, "amount"), currency),
                restock=row["restock"].strip().lower() == "true",
                warehouse=row["warehouse"],
            )
        found = []
        for ref, (order_ref, currency, shipping, total, reason, created_at) in heads.items():
            try:
                found.append(
                    ErpRefund(
                        ref=ref,
                        order_ref=order_ref,
                        lines=tuple(lines[ref][n] for n in sorted(lines[ref])),
                        shipping=Money(shipping, currency),
                        total=Money(total, currency),
                        created_at=created_at,
                        reason=reason,
                    )
                )
            except ValueError as exc:
                _Where(path.name, first[ref]).fail(str(exc))
        return found

    def _parse_receipts(self, path: Path) -> list[Receipt]:
        found: dict[str, Receipt] = {}
        for line, row in self._rows(path, RECEIPT_COLUMNS):
            at = _Where(path.name, line)
            ref = at.text(row, "receipt_ref")
            if ref in found:
                at.fail(f"receipt {ref} is in the file twice; one row per receipt")
            currency = at.currency(row)
            found[ref] = Receipt(
                ref=ref,
                order_ref=at.text(row, "order_ref"),
                amount=Money(at.decimal(row, "amount"), currency),
                received_at=at.time(row, "received_at"),
                method=row["method"],
                reference=row["reference"],
            )
        return list(found.values())

    def _parse_undelivered(self, path: Path) -> list[Undelivered]:
        found: dict[str, Undelivered] = {}
        for line, row in self._rows(path, UNDELIVERED_COLUMNS):
            at = _Where(path.name, line)
            ref = at.text(row, "return_ref")
            if ref in found:
                at.fail(f"return {ref} is in the file twice; one row per returned parcel")
            found[ref] = Undelivered(ref, at.text(row, "order_ref"), row["reason"], at.time(row, "returned_at"))
        return list(found.values())

    # ---- errors -----------------------------------------------------------------------------

    def _require_dir(self, which: str, folder: Path, action: str) -> None:
        if not folder.is_dir():
            raise RetryableErpError(_explain(which, folder, action, OSError(errno.ENOENT, "missing")))

    @contextlib.contextmanager
    def _io(self, which: str, folder: Path, action: str) -> Iterator[None]:
        try:
            yield
        except OSError as e:
            if isinstance(e, FileNotFoundError) and folder.is_dir() and which == "inbound":
                raise  # a single inbound file vanished: the caller skips it
            raise RetryableErpError(_explain(which, folder, action, e)) from e


class _Where:
    """Parses one inbound CSV row's fields, failing with the file and line a person can go and fix."""

    def __init__(self, file: str, line: int):
        self.file, self.line = file, line

    def fail(self, problem: str) -> NoReturn:
        raise PermanentErpError(f"inbound file {self.file} line {self.line}: {problem}; fix or replace the file")

    def text(self, row: dict[str, str], column: str) -> str:
        if not row[column]:
            self.fail(f"{column} is empty")
        return row[column]

    def decimal(self, row: dict[str, str], column: str) -> Decimal:
        try:
            value = Decimal(self.text(row, column))
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite():
            self.fail(f"{column} {row[column]!r} is not a number (write it like 12 or 12.5, no thousands separator)")
        return value

    def integer(self, row: dict[str, str], column: str) -> int:
        value = self.decimal(row, column)
        if value != value.to_integral_value() or value < 1:
            self.fail(f"{column} {row[column]!r} is not a whole number of at least 1")
        return int(value)

    def currency(self, row: dict[str, str]) -> str:
        currency = self.text(row, "currency").upper()
        if len(currency) != 3 or not currency.isalpha():
            self.fail(f"currency {currency!r} is not an ISO 4217 code such as EUR")
        return currency

    def time(self, row: dict[str, str], column: str) -> datetime:
        try:
            value = datetime.fromisoformat(self.text(row, column))
        except ValueError:
            self.fail(f"{column} {row[column]!r} is not an ISO-8601 time (like 2026-01-31T14:05:00Z)")
        return as_utc(value)


def _one_line(value: str) -> str:
    """No field spans lines, so a line-by-line importer reads our files too (free text loses its breaks)."""
    return re.sub(r"[\r\n]+", " ", value)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _attribution_facts(attribution: Attribution | None, order: Order) -> dict[str, str | None]:
    if attribution is None:
        return {}
    return {
        "channel": attribution.channel,
        "owner": attribution.owner,
        "owner_share": _dec(attribution.owner_share),
        "owner_credit": _dec(attribution.owner_credit(order.totals.total).amount),
    }


def _attribution_view(facts: Any) -> dict[str, Any]:
    if not isinstance(facts, dict):
        return {}
    return {
        "channel": facts.get("channel") or "",
        "owner": facts.get("owner"),
        "owner_share": Decimal(facts["owner_share"]),
        "owner_credit": Decimal(facts["owner_credit"]),
    }


def _order_facts(order: Order, customer_id: str, attribution: Attribution | None = None) -> dict[str, Any]:
    """What the ledger keeps of an order version: enough for get_order and the credit notes (an update
    without an attribution keeps the one the order had)."""
    credit = _attribution_facts(attribution, order)
    return {
        **({"attribution": credit} if credit else {}),
        "number": order.number,
        "version": utc_text(order.updated_at),
        "currency": order.currency,
        "total": _dec(order.totals.total.amount),
        "payment_status": order.payment.status,
        "customer_id": customer_id,
        "warehouse": order.warehouse,
        "lines": [
            {
                "line_no": line.line_no,
                "source_line_id": line.external_id,
                "sku": line.sku,
                "quantity": str(line.quantity),
                "unit_price": _dec(line.unit_price.amount),
                "line_total": _dec(line.line_total.amount),
                "warehouse": line.warehouse,
            }
            for line in order.lines
        ],
    }
