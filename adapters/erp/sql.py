"""The SQL staging ERP: orders, payments and credit notes written into staging tables, stock,
shipments, receipts and the ERP's own refunds read from them (the tables themselves: adapters.erp.sql_contract).

The classic way a legacy ERP takes web orders. Works on any database SQLAlchemy reaches; every write
is one transaction, idempotent on `erp_orders.external_ref`. `create_tables()` builds the tables for
a demo or a test.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    case,
    exc,
    func,
    inspect,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, Row

from adapters.clock import utcnow
from adapters.erp.base import (
    ErpCustomerView,
    ErpError,
    ErpOrderLineView,
    ErpOrderView,
    ErpUnreachable,
    OrderResult,
    PaymentRecord,
    PermanentErpError,
    RetryableErpError,
    customer_identity,
)
from adapters.erp.sql_contract import (
    EDITABLE,
    OPTIONAL_CREDIT_NOTE_COLUMNS,
    OPTIONAL_CREDIT_NOTE_LINE_COLUMNS,
    OPTIONAL_CUSTOMER_COLUMNS,
    OPTIONAL_ORDER_COLUMNS,
    OPTIONAL_ORDER_LINE_COLUMNS,
    erp_credit_note_lines,
    erp_credit_notes,
    erp_customers,
    erp_order_lines,
    erp_orders,
    erp_payments,
    erp_products,
    erp_receipts,
    erp_refund_lines,
    erp_refunds,
    erp_shipment_lines,
    erp_shipments,
    erp_stock,
    erp_undelivered,
    metadata,
)
from adapters.prepared import Prepared, Sent, atomic
from adapters.sqlengine import make_engine
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
from mappings.customers import normalise_email, normalise_name, normalise_phone, normalise_postcode, same_person_maybe
from mappings.utc import as_utc


def _join_cursor(*parts: str) -> str:
    return "|".join(parts)


def _after(table: Table, cursor: str | None, limit: int) -> Select:
    """A page of an ERP-written table (shipments, receipts, undelivered parcels, refunds) after the cursor
    "<updated_at>|<id>"."""
    key = (table.c.updated_at, table.c.id)
    query = select(table).order_by(*key).limit(limit)
    if cursor:
        at, last_id = _split_cursor(cursor, 2)
        query = query.where(tuple_(*key) > tuple_(literal(_parse_time(at)), literal(int(last_id))))
    return query


def _next_cursor(rows: Sequence[Row], cursor: str | None) -> str | None:
    if not rows:
        return cursor
    return _join_cursor(as_utc(rows[-1].updated_at).isoformat(), str(rows[-1].id))


def _erp_refund(row: Any, lines: list[Any]) -> ErpRefund:
    """An erp_refunds row and its lines as the contract's ErpRefund, or a permanent error naming the row."""
    currency = (row.currency or "").strip().upper()
    try:
        return ErpRefund(
            ref=row.refund_ref,
            order_ref=row.order_external_ref,
            lines=tuple(
                ErpRefundLine(
                    ln.sku,
                    _whole(ln.quantity, f"erp_refund_lines row {row.refund_ref}/{ln.line_no}"),
                    Money(Decimal(ln.amount), currency),
                    bool(ln.restock),
                    ln.warehouse or "",
                )
                for ln in lines
            ),
            shipping=Money(Decimal(row.shipping or 0), currency),
            total=Money(Decimal(row.total), currency),
            created_at=as_utc(row.created_at),
            reason=row.reason or "",
        )
    except ValueError as exc:
        raise PermanentErpError(f"erp_refunds row {row.refund_ref}: {exc}; have the ERP fix the row") from None


def _whole(quantity: Decimal, where: str) -> int:
    if quantity != quantity.to_integral_value() or quantity < 0:
        raise ValueError(f"{where}: quantity {quantity} is not a whole number of units")
    return int(quantity)


def _split_cursor(cursor: str, parts: int) -> list[str]:
    values = cursor.split("|")
    if len(values) != parts:
        raise PermanentErpError(f"cursor {cursor!r} was not made by this ERP back end; reset the sync cursor")
    return values


def _parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise PermanentErpError(f"cursor time {value!r} is not a timestamp; reset the sync cursor") from None


def _finder(by: list[ColumnElement[bool]]) -> Prepared:
    """The first customer with the email, else the first with the phone (`by`: the ones looked for)."""
    return Prepared(
        select(erp_customers.c.id).where(or_(*by)).order_by(case((by[0], 0), else_=1), erp_customers.c.id).limit(1)
    )


# The statements every order runs, built once (building one costs more Python than sending it) and sent by the
# driver on PostgreSQL (adapters.prepared: SQLAlchemy's execution was 45% of a drained order's CPU; issue 18).
_BY_EMAIL = erp_customers.c.email == bindparam("email")
_BY_PHONE = erp_customers.c.phone == bindparam("phone")
_FIND_CUSTOMER = {  # by (an email given, a phone given)
    (True, True): _finder([_BY_EMAIL, _BY_PHONE]),
    (True, False): _finder([_BY_EMAIL]),
    (False, True): _finder([_BY_PHONE]),
}
_OWNER = Prepared(select(erp_customers.c.owner).where(erp_customers.c.id == bindparam("customer_id")))
_INSERT_CUSTOMER = Prepared(erp_customers.insert())
_SKU = erp_products.c.sku
# The order's SKUs the item master has, and its first SKU, which shows whether it has any at all.
_KNOWN_SKUS = Prepared(
    select(_SKU).where(
        or_(_SKU.in_(bindparam("skus", expanding=True)), _SKU == select(func.min(_SKU)).scalar_subquery())
    )
)
_ORDER_VERSION = Prepared(
    select(erp_orders.c.id, erp_orders.c.status, erp_orders.c.source_updated_at)
    .where(erp_orders.c.external_ref == bindparam("order_ref"))
    .with_for_update()
)
_INSERT_ORDER = Prepared(erp_orders.insert())
_INSERT_LINES = Prepared(erp_order_lines.insert())
_INSERT_PAYMENT = Prepared(erp_payments.insert())
_C = erp_customers.c
# Narrowed in SQL by the postcode as spelt without spaces or dashes and by the last word of the name; compared
# exactly in Python (spacing and case in either may differ). The characters dropped are written into the SQL, not
# bound, so that even a prepared statement's generic plan matches the contract's index on that expression.
_POSTCODE_KEY = func.upper(
    func.replace(
        func.replace(_C.postcode, literal_column("' '"), literal_column("''")),
        literal_column("'-'"),
        literal_column("''"),
    )
)
_SIMILAR = Prepared(
    select(_C.id, _C.name, _C.email, _C.phone, _C.postcode)
    .where(_POSTCODE_KEY == bindparam("postcode_key"))
    .where(func.lower(_C.name).contains(bindparam("fragment"), escape="/"))
    .order_by(_C.id)
    .limit(500)
)
_P = erp_payments.c
# The order (locked: its payments are written one at a time), this payment if it is in already, and what was
# paid before it, in one read.
_ORDER_PAYMENTS = Prepared(
    select(
        erp_orders.c.total,
        select(_P.id).where(_P.payment_ref == bindparam("payment_ref")).scalar_subquery().label("existing"),
        select(func.coalesce(func.sum(_P.amount), 0))
        .where(_P.order_external_ref == bindparam("order_ref"))
        .scalar_subquery()
        .label("paid"),
    )
    .where(erp_orders.c.external_ref == bindparam("order_ref"))
    .with_for_update()
)
_REFUNDED = ("partially_refunded", "refunded")  # payment statuses a payment booked later leaves as they are
_PAYMENT_STATUS = Prepared(
    erp_orders.update()
    .where(erp_orders.c.external_ref == bindparam("order_ref"))
    .where(erp_orders.c.payment_status.notin_(_REFUNDED))
    .values(payment_status=bindparam("new_status"), updated_at=bindparam("changed_at"))
)


class SqlStagingErp:
    kind = "sql"
    books_payments_with_order = True  # push_order takes the order's payments into its transaction

    def __init__(
        self,
        url: str | None = None,
        engine: Engine | None = None,
        lock_timeout: float = 10,
        connect_timeout: float = 5,
        statement_timeout: float = 30,
    ):
        self.engine = (
            engine
            if engine is not None
            else make_engine(
                url or "",
                sqlite_timeout=lock_timeout,
                connect_timeout=connect_timeout,
                statement_timeout=statement_timeout,
            )
        )
        # Lookups and one-statement writes on the hot path, outside a transaction: no BEGIN and no COMMIT/ROLLBACK.
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._held = threading.local()  # this thread's connections while `holding`
        self.timeouts = (connect_timeout, statement_timeout)
        self._absent: dict[str, frozenset[str]] = {}  # per table, the optional columns this ERP's table lacks

    # ---- contract ---------------------------------------------------------------------------

    def test_connection(self) -> str:
        with self._errors("test the connection"), self.engine.connect() as conn:
            conn.execute(select(erp_orders.c.id).limit(1))
        return f"staging tables reachable on {self.engine.url.render_as_string(hide_password=True)}"

    def check_order(self, order: Order) -> None:
        now = utcnow()
        rows = [
            (erp_customers, "customer", _customer_row(order.customer, order.external_ref, now)),
            (erp_orders, "order", _header(order, 0, now)),
            *((erp_order_lines, f"line {line['line_no']}", line) for line in _lines(order)),
            (erp_payments, "payment", _payment_row(order)),
        ]
        for table, what, row in rows:
            _check_lengths(table, what, row)

    def find_customer(self, email: str | None, phone: str | None) -> str | None:
        if not (email or phone):
            return None
        # One read: the first customer with the email, else the first with the phone.
        with self._errors("look up the customer"), self._connection() as conn:
            found = _FIND_CUSTOMER[bool(email), bool(phone)].scalar(
                conn, {"email": email or None, "phone": phone or None}
            )
        return str(found) if found is not None else None

    def create_customer(self, customer: Customer, external_ref: str) -> str:
        customer_identity(customer)
        row = _customer_row(customer, external_ref, utcnow())
        with self._errors("create the customer"), self._connection() as conn:  # one INSERT
            return str(_INSERT_CUSTOMER.inserted_key(conn, self._fitted(conn, erp_customers, row)))

    def similar_customers(self, name: str, postcode: str, limit: int = 5) -> list[ErpCustomerView]:
        if not (normalise_name(name) and normalise_postcode(postcode)):
            return []
        with self._errors("look for customers with this name and postcode"), self._connection() as conn:
            if "postcode" in self._fitted_absent(conn, erp_customers):
                return []  # an ERP on the earlier contract keeps no postcodes: nothing to compare
            rows = _SIMILAR.all(
                conn, {"postcode_key": normalise_postcode(postcode), "fragment": _like_escaped(normalise_name(name))}
            )
        found = [
            ErpCustomerView(str(r.id), r.name or "", r.email, r.phone, r.postcode or "")
            for r in rows
            if same_person_maybe(r.name, r.postcode, name, postcode)
        ]
        return found[:limit]

    def customer_owner(self, customer_id: str) -> str | None:
        with self._errors("read the customer's owner"), self._connection() as conn:
            if "owner" in self._fitted_absent(conn, erp_customers):
                return None  # an ERP that implemented the contract before owners: no account has one
            owner = _OWNER.scalar(conn, {"customer_id": int(customer_id)})
        return (owner or "").strip() or None

    def push_order(
        self,
        order: Order,
        customer_id: str,
        attribution: Attribution | None = None,
        payments: Sequence[PaymentRecord] = (),
    ) -> OrderResult:
        """The contract's push_order, and record_payment of each of `payments` in the same transaction
        (books_payments_with_order): a new paid order is one commit, its payments inserted with it (a transaction
        and five round trips fewer; issue 18). Each payment stays idempotent on its key; their ERP refs come back
        in OrderResult.payments, in order."""
        try:
            return self._push_order(order, int(customer_id), attribution, payments)
        except exc.IntegrityError:
            # Another worker inserted the same external_ref between our read and our insert:
            # the order exists now, so the second pass takes the update path.
            return self._push_order(order, int(customer_id), attribution, payments)

    def record_payment(self, payment: PaymentRecord) -> str:
        with self._errors(f"record the payment of {payment.order_ref}"), self._transaction() as conn:
            return _book_payment(conn, payment, utcnow())

    def cancel_order(self, order_ref: str, reason: str) -> bool:
        now = utcnow()
        with self._errors(f"cancel {order_ref}"), self.engine.begin() as conn:
            row = self._order_row(conn, order_ref)
            if row.status == "cancelled":
                return False
            conn.execute(
                erp_orders.update()
                .where(erp_orders.c.id == row.id)
                .values(status="cancelled", cancel_reason=reason[:255], cancelled_at=now, updated_at=now)
            )
            return True

    def create_credit_note(self, refund: Refund, order_ref: str) -> str:
        now = utcnow()
        with self._errors(f"create the credit note of {order_ref}"), self.engine.begin() as conn:
            order = self._order_row(conn, order_ref)
            existing = conn.execute(
                select(erp_credit_notes.c.id).where(erp_credit_notes.c.external_ref == refund.external_ref)
            ).scalar()
            if existing is not None:
                return str(existing)
            line_nos = dict(
                conn.execute(
                    select(erp_order_lines.c.source_line_id, erp_order_lines.c.line_no).where(
                        erp_order_lines.c.external_ref == order_ref
                    )
                ).all()
            )
            subtotal = sum((line.subtotal.amount for line in refund.lines), Decimal(0))
            tax = sum((line.tax.amount for line in refund.lines), Decimal(0))
            new_id = _inserted_id(
                conn.execute(
                    erp_credit_notes.insert().values(
                        self._fitted(
                            conn,
                            erp_credit_notes,
                            {
                                "external_ref": refund.external_ref,
                                "order_external_ref": order_ref,
                                "currency": refund.currency,
                                "subtotal": subtotal,
                                "tax_total": tax,
                                "shipping_total": refund.shipping.amount,
                                "adjustment": refund.adjustment.amount,
                                "total": refund.total.amount,
                                "reason": refund.reason[:255],
                                "issued_at": as_utc(refund.created_at),
                                "created_at": now,
                                "fee_total": refund.fee_total.amount,
                                "tip_total": refund.fees_of("tip").amount,
                                "duty_total": refund.fees_of("duty").amount,
                                "additional_fee_total": refund.fees_of("additional_fee").amount,
                            },
                        )
                    )
                )
            )
            if refund.lines:
                conn.execute(
                    erp_credit_note_lines.insert(),
                    [
                        self._fitted(
                            conn,
                            erp_credit_note_lines,
                            {
                                "credit_note_ref": refund.external_ref,
                                "line_no": n,
                                "order_line_no": line_nos.get(line.line_external_id),
                                "sku": line.sku,
                                "quantity": Decimal(line.quantity),
                                "subtotal": line.subtotal.amount,
                                "tax_total": line.tax.amount,
                                "restock": line.restock,
                                "warehouse": line.warehouse,
                            },
                        )
                        for n, line in enumerate(refund.lines, start=1)
                    ],
                )
            credited = conn.execute(
                select(func.coalesce(func.sum(erp_credit_notes.c.total), 0)).where(
                    erp_credit_notes.c.order_external_ref == order_ref
                )
            ).scalar_one()
            status = "refunded" if Decimal(credited) >= Decimal(order.total) else "partially_refunded"
            conn.execute(
                erp_orders.update().where(erp_orders.c.id == order.id).values(payment_status=status, updated_at=now)
            )
            return str(new_id)

    def preview_order(self, order: Order) -> dict:
        """The rows push_order would write (amounts as strings), without touching the database."""
        header = _header(order, 0, utcnow())
        return {"erp_orders": _printable(header), "erp_order_lines": [_printable(line) for line in _lines(order)]}

    def get_order(self, order_ref: str) -> ErpOrderView | None:
        with self._errors(f"read {order_ref}"), self.engine.connect() as conn:
            absent = self._fitted_absent(conn, erp_orders)
            present = [column for column in erp_orders.c if column.name not in absent]
            row = conn.execute(select(*present).where(erp_orders.c.external_ref == order_ref)).first()
            if row is None:
                return None
            absent_in_lines = self._fitted_absent(conn, erp_order_lines)
            lines = conn.execute(
                select(*(column for column in erp_order_lines.c if column.name not in absent_in_lines))
                .where(erp_order_lines.c.external_ref == order_ref)
                .order_by(erp_order_lines.c.line_no)
            ).all()
            credited = conn.execute(
                select(func.coalesce(func.sum(erp_credit_notes.c.total), 0)).where(
                    erp_credit_notes.c.order_external_ref == order_ref
                )
            ).scalar_one()
            paid = conn.execute(
                select(func.coalesce(func.sum(erp_payments.c.amount), 0)).where(
                    erp_payments.c.order_external_ref == order_ref
                )
            ).scalar_one()
        return ErpOrderView(
            erp_ref=str(row.id),
            external_ref=order_ref,
            status=row.status,
            currency=row.currency,
            total=Decimal(row.total),
            payment_status=row.payment_status,
            customer_id=str(row.customer_id),
            lines=tuple(
                ErpOrderLineView(
                    ln.sku,
                    Decimal(ln.quantity),
                    Decimal(ln.unit_price),
                    Decimal(ln.line_total),
                    getattr(ln, "warehouse", None),
                )
                for ln in lines
            ),
            credited_total=Decimal(credited),
            paid_total=Decimal(paid),
            channel=getattr(row, "channel", None) or "",
            owner=getattr(row, "owner", None),
            owner_share=_decimal_or_none(getattr(row, "owner_share", None)),
            owner_credit=_decimal_or_none(getattr(row, "owner_credit", None)),
            warehouse=getattr(row, "warehouse", None),
        )

    def stock_changes(self, cursor: str | None, limit: int = 1000) -> tuple[list[StockLevel], str | None]:
        key = (erp_stock.c.updated_at, erp_stock.c.sku, erp_stock.c.warehouse)
        query = select(erp_stock).order_by(*key).limit(limit)
        if cursor:
            at, sku, warehouse = _split_cursor(cursor, 3)
            query = query.where(tuple_(*key) > tuple_(literal(_parse_time(at)), literal(sku), literal(warehouse)))
        with self._errors("read stock changes"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        levels = [StockLevel(r.sku, r.warehouse, Decimal(r.on_hand), as_utc(r.updated_at)) for r in rows]
        if not rows:
            return levels, cursor
        last = rows[-1]
        return levels, _join_cursor(as_utc(last.updated_at).isoformat(), last.sku, last.warehouse)

    def shipments(self, cursor: str | None, limit: int = 500) -> tuple[list[Shipment], str | None]:
        query = _after(erp_shipments, cursor, limit)
        with self._errors("read shipments"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
            refs = [r.shipment_ref for r in rows]
            lines: dict[str, list[ShipmentLine]] = {}
            if refs:
                for ln in conn.execute(
                    select(erp_shipment_lines)
                    .where(erp_shipment_lines.c.shipment_ref.in_(refs))
                    .order_by(erp_shipment_lines.c.shipment_ref, erp_shipment_lines.c.line_no)
                ):
                    lines.setdefault(ln.shipment_ref, []).append(ShipmentLine(ln.sku, int(ln.quantity)))
        found = [
            Shipment(
                ref=r.shipment_ref,
                order_ref=r.order_external_ref,
                lines=tuple(lines.get(r.shipment_ref, ())),
                shipped_at=as_utc(r.shipped_at),
                carrier=r.carrier or "",
                tracking_number=r.tracking_number or "",
                tracking_url=r.tracking_url or "",
                warehouse=r.warehouse or "",
            )
            for r in rows
        ]
        return found, _next_cursor(rows, cursor)

    def receipts(self, cursor: str | None, limit: int = 500) -> tuple[list[Receipt], str | None]:
        rows, after = self._rows_after(erp_receipts, cursor, limit, "read receipts")
        found = []
        for r in rows:
            try:
                amount = Money(Decimal(r.amount), (r.currency or "").strip().upper())
            except ValueError:
                raise PermanentErpError(
                    f"erp_receipts row {r.receipt_ref}: currency {r.currency!r} is not an ISO 4217 code; "
                    "have the ERP fix the row"
                ) from None
            found.append(
                Receipt(
                    ref=r.receipt_ref,
                    order_ref=r.order_external_ref,
                    amount=amount,
                    received_at=as_utc(r.received_at),
                    method=r.method or "",
                    reference=r.reference or "",
                )
            )
        return found, after

    def undelivered(self, cursor: str | None, limit: int = 500) -> tuple[list[Undelivered], str | None]:
        rows, after = self._rows_after(erp_undelivered, cursor, limit, "read undelivered parcels")
        found = [Undelivered(r.return_ref, r.order_external_ref, r.reason or "", as_utc(r.returned_at)) for r in rows]
        return found, after

    def _rows_after(self, table: Table, cursor: str | None, limit: int, action: str) -> tuple[list[Row], str | None]:
        """A page of a table the ERP writes, in (updated_at, id) order after the cursor, and the next cursor."""
        with self._errors(action), self.engine.connect() as conn:
            rows = list(conn.execute(_after(table, cursor, limit)).all())
        return rows, _next_cursor(rows, cursor)

    def offline_refunds(self, cursor: str | None, limit: int = 500) -> tuple[list[ErpRefund], str | None]:
        query = _after(erp_refunds, cursor, limit)
        with self._errors("read the ERP's own refunds"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
            lines: dict[str, list] = {}
            if rows:
                for ln in conn.execute(
                    select(erp_refund_lines)
                    .where(erp_refund_lines.c.refund_ref.in_([r.refund_ref for r in rows]))
                    .order_by(erp_refund_lines.c.refund_ref, erp_refund_lines.c.line_no)
                ):
                    lines.setdefault(ln.refund_ref, []).append(ln)
        found = [_erp_refund(r, lines.get(r.refund_ref, [])) for r in rows]
        return found, _next_cursor(rows, cursor)

    def close(self) -> None:
        self.engine.dispose()

    def create_tables(self) -> None:
        metadata.create_all(self.engine)

    # ---- internals --------------------------------------------------------------------------

    def _order_row(self, conn: Connection, order_ref: str) -> Row[*tuple[Any, ...]]:
        row = conn.execute(
            select(erp_orders.c.id, erp_orders.c.status, erp_orders.c.total)
            .where(erp_orders.c.external_ref == order_ref)
            .with_for_update()
        ).first()
        if row is None:
            raise PermanentErpError(f"the ERP has no order {order_ref}; import the order first, then retry")
        return row

    def _push_order(
        self, order: Order, customer_id: int, attribution: Attribution | None, payments: Sequence[PaymentRecord]
    ) -> OrderResult:
        now = utcnow()
        with self._errors(f"write order {order.number}"):
            if erp_orders.name not in self._absent or erp_order_lines.name not in self._absent:
                with self._connection() as conn:  # the tables' optional columns, looked up once, not in the block
                    for table in (erp_orders, erp_order_lines):
                        self._fitted_absent(conn, table)
            header = self._fitted_known(erp_orders, _header(order, customer_id, now, attribution))
            lines = [self._fitted_known(erp_order_lines, line) for line in _lines(order)]
            # A new order: both reads, then the order, its lines and its payments, sent together and committed as one
            # transaction (on PostgreSQL two round trips where there were seven; adapters.prepared.atomic).
            with self._atomic() as conn:
                existing = _ORDER_VERSION.send(conn, {"order_ref": order.external_ref})
                skus = sorted({line.sku for line in order.lines if line.sku})
                known = _KNOWN_SKUS.send(conn, {"skus": skus}) if skus else None
                if existing.first() is None:
                    _refuse_unknown(skus, known)
                    rows = [_payment_row_of(payment, now) for payment in payments]
                    if rows:  # what record_payment would set once they are in: paid when they cover the total
                        paid = sum((row["amount"] for row in rows), Decimal(0))
                        status = _payment_status(header["payment_status"], paid, Decimal(header["total"]))
                        header = {**header, "payment_status": status}
                    # Values as execute parameters, not .values(): no statement rebuilt and re-keyed per order.
                    new_id = _INSERT_ORDER.send_key(conn, {**header, "status": EDITABLE, "created_at": now})
                    _INSERT_LINES.many(conn, lines)
                    booked = [_INSERT_PAYMENT.send_key(conn, row) for row in rows]
            if existing.first() is None:
                refs = tuple(str(payment.scalar()) for payment in booked)
                return OrderResult(erp_ref=str(new_id.scalar()), created=True, payments=refs)
            # An order the ERP has (an edit, a replay): read again, locked, in a transaction of its own.
            with self._transaction() as conn:
                again = _ORDER_VERSION.first(conn, {"order_ref": order.external_ref})
                if again is None:  # deleted in the ERP since the read above
                    raise RetryableErpError(f"the ERP order {order.external_ref} went away while being written")
                _check_skus(conn, order)
                result = self._update_order(conn, order, again, header)
                refs = tuple(_book_payment(conn, payment, now) for payment in payments)
                return dataclasses.replace(result, payments=refs)

    def _update_order(self, conn: Connection, order: Order, existing: Any, header: dict) -> OrderResult:
        erp_ref = str(existing.id)
        if as_utc(existing.source_updated_at) >= order.updated_at:
            return OrderResult(erp_ref, created=False, note="the ERP already has this version")
        if existing.status != EDITABLE:  # imported or cancelled: the ERP owns it now
            return OrderResult(
                erp_ref,
                created=False,
                note=f"the ERP order is {existing.status}; the change was recorded, not applied",
            )
        conn.execute(erp_orders.update().where(erp_orders.c.id == existing.id), header)
        conn.execute(erp_order_lines.delete().where(erp_order_lines.c.external_ref == order.external_ref))
        conn.execute(erp_order_lines.insert(), [self._fitted(conn, erp_order_lines, ln) for ln in _lines(order)])
        return OrderResult(erp_ref, created=False, updated=True)

    def _fitted_absent(self, conn: Connection, table: Table) -> frozenset[str]:
        """The optional columns this ERP's table lacks (looked up once per table)."""
        absent = self._absent.get(table.name)
        if absent is None:
            present = {c["name"] for c in inspect(conn).get_columns(table.name)}
            optional = {
                erp_customers.name: OPTIONAL_CUSTOMER_COLUMNS,
                erp_orders.name: OPTIONAL_ORDER_COLUMNS,
                erp_order_lines.name: OPTIONAL_ORDER_LINE_COLUMNS,
                erp_credit_notes.name: OPTIONAL_CREDIT_NOTE_COLUMNS,
                erp_credit_note_lines.name: OPTIONAL_CREDIT_NOTE_LINE_COLUMNS,
            }[table.name]
            absent = self._absent[table.name] = frozenset(optional) - present
        return absent

    def _fitted(self, conn: Connection, table: Table, row: dict) -> dict:
        """The row without the optional columns this ERP's table lacks (looked up once per table): an ERP
        that implemented an earlier contract keeps taking orders and credit notes."""
        self._fitted_absent(conn, table)
        return self._fitted_known(table, row)

    def _fitted_known(self, table: Table, row: dict) -> dict:
        """`_fitted` for a table whose columns were looked up already."""
        absent = self._absent[table.name]
        return {k: v for k, v in row.items() if k not in absent} if absent else row

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Within this block this thread's statements share two connections (one autocommit, one for
        transactions), taken from the pool at their first use and given back at the end: a drain holds them for a
        batch of orders, where a checkout and check-in per statement was a tenth of an order's CPU (issue 18)."""
        if getattr(self._held, "conns", None) is not None:
            yield
            return
        self._held.conns = {}
        try:
            yield
        finally:
            conns, self._held.conns = self._held.conns, None
            for conn in conns.values():
                conn.close()

    @contextmanager
    def _connection(self, autocommit: bool = True) -> Iterator[Connection]:
        """An autocommit connection, or one to begin a transaction on: this thread's held one while `holding`."""
        engine = self._autocommit if autocommit else self.engine
        held = getattr(self._held, "conns", None)
        if held is None:
            with engine.connect() as conn:
                yield conn
            return
        conn = held.get(autocommit)
        if conn is None or conn.closed or conn.invalidated:  # one an error broke is replaced
            conn = held[autocommit] = engine.connect()
        try:
            yield conn
        except (exc.DBAPIError, ErpError):
            # The database refused a statement, or this adapter refused the write (an unknown SKU; a transaction is
            # rolled back by then): the connection is as good as before (or marked invalidated).
            raise
        except BaseException:
            held.pop(autocommit, None)  # interrupted mid-statement: not handed on
            conn.close()
            raise

    def _atomic(self) -> AbstractContextManager[Connection]:
        """Statements that commit together at the block's end: on PostgreSQL this thread's autocommit connection in
        pipeline mode, without a BEGIN and a COMMIT (adapters.prepared.atomic); elsewhere a transaction."""
        return atomic(self.engine, self._connection, self._transaction)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._connection(autocommit=False) as conn, conn.begin():
            yield conn

    def _errors(self, action: str) -> _ErrorTranslation:
        return _ErrorTranslation(action, self.engine.url, self.timeouts)


# What a person calls a column, where its name alone would not say (the rest: its name in words).
_FIELD_NAMES = {
    "number": "order number (Shopify name)",
    "sku": "SKU",
    "source_line_id": "store line id",
    "external_ref": "order reference",
    "transaction_ref": "transaction reference",
}
# Values a person may see in full in the reason; personal data (email, phone, name) is only measured.
_SHOWN = {
    "number",
    "sku",
    "source_line_id",
    "external_ref",
    "transaction_ref",
    "currency",
    "method",
    "payment_method",
    "payment_status",
    "store",
    "source",
}


def _check_lengths(table: Table, what: str, row: dict) -> None:
    """Refuse a value longer than its staging column: PostgreSQL would refuse it mid-write, SQLite keep it."""
    for column in table.columns:
        limit, value = getattr(column.type, "length", None), row.get(column.name)
        if limit is None or not isinstance(value, str) or len(value) <= limit:
            continue
        name = f"{what} {_FIELD_NAMES.get(column.name, column.name.replace('_', ' '))}"
        shown = f" {value[:24]!r}…" if column.name in _SHOWN else ""
        raise PermanentErpError(
            f"{name}{shown} is {len(value)} characters, but the ERP staging column {table.name}.{column.name} "
            f"holds at most {limit}: shorten it in the store (or map the SKU on /config#skus), then retry; "
            "nothing was written to the ERP"
        )


def _customer_row(customer: Customer, external_ref: str, now: datetime) -> dict:
    return {
        "email": normalise_email(customer.email),
        "name": customer.name,
        "phone": normalise_phone(customer.phone),
        "external_ids": external_ref,
        "created_at": now,
        "updated_at": now,
        "postcode": customer.postcode.strip()[:32] or None,
    }


def _payment_row(order: Order) -> dict:
    """The erp_payments columns record_payment fills from the order (for the length check)."""
    return {
        "payment_ref": f"{order.external_ref}:payment",
        "order_external_ref": order.external_ref,
        "currency": order.currency,
        "method": order.payment.method or "other",
        "transaction_ref": order.payment.transaction_ref,
    }


def _payment_row_of(payment: PaymentRecord, now: datetime) -> dict:
    return {
        "payment_ref": payment.key,
        "order_external_ref": payment.order_ref,
        "amount": payment.amount.amount,
        "currency": payment.amount.currency,
        "method": payment.method,
        "gateway": payment.gateway[:128],
        "transaction_ref": payment.transaction_ref,
        "paid_at": as_utc(payment.paid_at),
        "created_at": now,
    }


def _payment_status(current: str, paid: Decimal, total: Decimal) -> str:
    """An order's payment status once `paid` is booked against it: a split tender is paid once its payments cover
    the total. A refund's status stays (the refund came after the payments)."""
    if current in _REFUNDED:
        return current
    return "paid" if paid >= total else "partially_paid"


def _book_payment(conn: Connection, payment: PaymentRecord, now: datetime) -> str:
    """Book one payment against an order the ERP has, in the caller's transaction; its ERP ref. Idempotent on
    payment.key: a payment booked before is found, not booked again."""
    order = _ORDER_PAYMENTS.first(conn, {"payment_ref": payment.key, "order_ref": payment.order_ref})
    if order is None:
        raise PermanentErpError(f"the ERP has no order {payment.order_ref}; import the order first, then retry")
    if order.existing is not None:
        return str(order.existing)
    new_id = _INSERT_PAYMENT.inserted_key(conn, _payment_row_of(payment, now))
    status = _payment_status("", Decimal(order.paid) + payment.amount.amount, Decimal(order.total))
    _PAYMENT_STATUS.run(conn, {"order_ref": payment.order_ref, "new_status": status, "changed_at": now})
    return str(new_id)


def _printable(row: dict) -> dict:
    return {k: (str(v) if isinstance(v, (Decimal, datetime)) else v) for k, v in row.items()}


def _check_skus(conn: Connection, order: Order) -> None:
    skus = sorted({line.sku for line in order.lines if line.sku})
    _refuse_unknown(skus, _KNOWN_SKUS.send(conn, {"skus": skus}) if skus else None)  # one read


def _refuse_unknown(skus: list[str], known: Sent | None) -> None:
    """PermanentErpError when the item master lacks one of `skus`; `known`: what _KNOWN_SKUS read of them."""
    found = {row[0] for row in known.all()} if known is not None else set()
    if not found:  # no item master (or no SKU): any SKU goes
        return
    unknown = sorted(set(skus) - found)
    if unknown:
        raise PermanentErpError(
            f"unknown SKU {', '.join(unknown)}: the ERP's item master (erp_products) has no such item; "
            "map it to an ERP item on /config#skus (or add it to the ERP), then retry"
        )


def _header(order: Order, customer_id: int, now: datetime, attribution: Attribution | None = None) -> dict:
    t = order.totals
    credit = {}
    if attribution is not None:  # without one, an update keeps what the order carried
        credit = {
            "channel": attribution.channel,
            "owner": attribution.owner,
            "owner_share": attribution.owner_share,
            "owner_credit": attribution.owner_credit(t.total).amount,
        }
    return {
        **credit,
        "external_ref": order.external_ref,
        "source": order.source,
        "store": order.store,
        "number": order.number,
        "currency": order.currency,
        "customer_id": customer_id,
        "customer_email": normalise_email(order.customer.email),
        "subtotal": t.subtotal.amount,
        "discount_total": t.discount_total.amount,
        "shipping_total": t.shipping_total.amount,
        "tax_total": t.tax_total.amount,
        "fee_total": t.fees.amount,
        "tip_total": order.fees_of("tip").amount,
        "duty_total": order.fees_of("duty").amount,
        "additional_fee_total": order.fees_of("additional_fee").amount,
        "total": t.total.amount,
        "taxes_included": order.taxes_included,
        "payment_status": order.payment.status,
        "payment_method": order.payment.method or "other",
        "shipping_method": ", ".join(s.title for s in order.shipping_lines)[:255],
        "placed_at": as_utc(order.placed_at),
        "source_updated_at": as_utc(order.updated_at),
        "updated_at": now,
        "presentment_currency": order.presentment_total.currency if order.presentment_total else None,
        "presentment_total": order.presentment_total.amount if order.presentment_total else None,
        "warehouse": order.warehouse,
    }


def _lines(order: Order) -> list[dict]:
    return [
        {
            "external_ref": order.external_ref,
            "line_no": line.line_no,
            "source_line_id": line.external_id,
            "sku": line.sku,
            "description": (line.title + (f" - {line.variant_title}" if line.variant_title else ""))[:512],
            "quantity": Decimal(line.quantity),
            "unit_price": line.unit_price.amount,
            "discount_total": line.discount_total.amount,
            "tax_total": line.tax_total.amount,
            "line_total": line.line_total.amount,
            "warehouse": line.warehouse,
        }
        for line in order.lines
    ]


def _silence(detail: str, timeouts: tuple[float, float]) -> str | None:
    """How a driver's message says the ERP's server did not answer, in words, or None."""
    lowered = detail.lower()
    if "statement timeout" in lowered or "read operation timed out" in lowered:
        return f"did not answer within {timeouts[1]:g}s"
    if "timeout expired" in lowered or "timed out" in lowered or "can't connect" in lowered:
        return f"did not answer a connection within {timeouts[0]:g}s"
    if "connection refused" in lowered:
        return "refused the connection"
    return None


def _like_escaped(name: str) -> str:
    """The name's last word, its LIKE wildcards escaped with "/" (the escape character of _SIMILAR)."""
    return name.split()[-1].replace("/", "//").replace("%", "/%").replace("_", "/_")


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _inserted_id(result: CursorResult[*tuple[Any, ...]]) -> Any:
    """The new row's id; SQLAlchemy types the key as optional only for a statement that is no insert."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the insert returned no primary key")
    return key[0]


class _ErrorTranslation:
    """Turns driver errors into the contract's retryable/permanent split, with a readable reason."""

    def __init__(self, action: str, url: URL | None = None, timeouts: tuple[float, float] = (5, 30)):
        self.action = action
        self.where = f"{url.host}:{url.port or 'default port'}" if url is not None and url.host else "its database"
        self.timeouts = timeouts

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_value: BaseException | None, _tb: TracebackType | None
    ) -> Literal[False]:  # never swallows: a driver error leaves as the contract's error, any other as it came
        if exc_value is None or not isinstance(exc_value, exc.SQLAlchemyError):
            return False
        if isinstance(exc_value, exc.IntegrityError):
            return False  # push_order retries once on the update path
        detail = str(getattr(exc_value, "orig", exc_value)).strip().splitlines()[0][:300]
        if "no such table" in detail or "does not exist" in detail:
            raise PermanentErpError(
                f"ERP staging table missing while trying to {self.action}: {detail} "
                "(create the tables of the contract in docs/erp-staging.md, then retry)"
            ) from exc_value
        silence = _silence(detail, self.timeouts)
        if silence is not None:
            raise ErpUnreachable(
                f"the ERP database at {self.where} {silence} while trying to {self.action}; "
                "the connector will try again later"
            ) from exc_value
        if isinstance(exc_value, (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)) or getattr(
            exc_value, "connection_invalidated", False
        ):
            raise RetryableErpError(f"ERP database unavailable while trying to {self.action}: {detail}") from exc_value
        raise PermanentErpError(
            f"ERP database refused the write while trying to {self.action}: {detail} "
            "(check the staging tables match the contract in docs/erp-staging.md)"
        ) from exc_value
