"""The connector's own tables: stores, the ERP connection, the inbox, attempts and order links.

The database is the source of truth for every event's state; Redis only carries wake-ups.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from adapters.clock import utcnow

# SQLite has no 64-bit autoincrement type of its own; INTEGER PRIMARY KEY is already 64-bit there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always hands back an aware datetime (SQLite would otherwise drop the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use adapters.clock.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(20))  # a name in platforms.registry.PLATFORMS
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)  # shop_domain, api_version, url, ...
    secrets: Mapped[str | None] = mapped_column(Text)  # sealed by connector.base.crypto.SecretBox
    # Set when the store's app was uninstalled: its tokens are gone and nothing calls the store until it
    # is connected again. Its webhooks are still taken (shop/redact comes 48 h after an uninstall).
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ErpConnection(Base):
    __tablename__ = "erp_connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, default="default")
    kind: Mapped[str] = mapped_column(String(20))  # sql | rest | files | tryton
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    secrets: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


_OPEN_EVENT = text("status IN ('pending', 'processing')")  # ix_inbox_open's events: still to be done


class InboxEvent(Base):
    """One delivery as received, kept byte for byte, and its processing state."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("store_id", "dedupe_key", name="uq_inbox_store_dedupe"),
        Index("ix_inbox_due", "status", "next_attempt_at"),
        Index("ix_inbox_resource", "store_id", "resource_id"),
        # The open events only, in id order: the drain's claim reads a few entries, not every event done
        # (the claim's statuses are written into its SQL, so even a prepared generic plan can use it).
        Index(
            "ix_inbox_open",
            "store_id",
            "id",
            postgresql_where=_OPEN_EVENT,
            sqlite_where=_OPEN_EVENT,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    platform: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # pending -> processing -> succeeded | failed (parked) | skipped (by a person)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # attempts spent before the last manual retry: each manual retry gets a fresh budget
    attempts_before_retry: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    resource_id: Mapped[str | None] = mapped_column(String(64))  # the order id, once parsed
    order_number: Mapped[str | None] = mapped_column(String(64), index=True)  # "#1001", once mapped
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict | None] = mapped_column(JSON)  # canonical order, ERP ref, notes

    attempt_rows: Mapped[list[EventAttempt]] = relationship(
        back_populates="event", order_by="EventAttempt.number", cascade="all, delete-orphan"
    )


class EventAttempt(Base):
    __tablename__ = "event_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("inbox_events.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # succeeded | retry | failed
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict | None] = mapped_column(JSON)

    event: Mapped[InboxEvent] = relationship(back_populates="attempt_rows")


class OrderLink(Base):
    """The binding between a store's order and the ERP document it became."""

    __tablename__ = "order_links"
    __table_args__ = (UniqueConstraint("store_id", "external_id", name="uq_link_store_order"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    external_id: Mapped[str] = mapped_column(String(64))
    external_ref: Mapped[str] = mapped_column(String(255))
    erp_ref: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str | None] = mapped_column(String(3))
    source_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_event_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ErpDocument(Base):
    """Each ERP document made for a store order besides the order itself: payments, cancellations,
    credit notes. Unique per (store, kind, key), so a replayed event finds what it already did."""

    __tablename__ = "erp_documents"
    __table_args__ = (UniqueConstraint("store_id", "kind", "key", name="uq_erp_document"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    order_external_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # payment | cancellation | credit_note
    key: Mapped[str] = mapped_column(String(255))
    erp_ref: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerLink(Base):
    """Which ERP customer a person is: keyed by store account, normalised email or phone.

    A row with no erp_customer_id yet is a claim: the worker that inserted it creates the
    customer; others wait for it, so two first orders of one person never make two customers (a worker
    claims every key of the buyer: account, email and phone).
    """

    __tablename__ = "customer_links"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)  # email:…, phone:…, account:…, guest
    erp_customer_id: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The inbox event whose worker holds the claim: it lasts while that event's lease does (a worker killed
    # mid-way holds up the buyer's other orders no longer than its lease).
    claimed_by: Mapped[int | None] = mapped_column(Integer)


class User(Base):
    """A person who signs in: admins configure, support staff use the console."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)  # lower-cased
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # admin | support
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # bumped on password change or deactivation: every session made before stops working
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserSession(Base):
    """A signed-in browser. The cookie carries its id; signing out deletes the row, so a copied cookie
    stops working at once rather than when it would have expired."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the id the cookie carries
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class PendingConnection(Base):
    """A store connection an admin started and the platform has not finished yet: the one-time id that
    an OAuth `state` or a key approval's `user_id`/callback carries. Used once, then kept (with
    `used_at`) so a replayed callback is recognised and refused."""

    __tablename__ = "pending_connections"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the one-time id sent out
    platform: Mapped[str] = mapped_column(String(32))
    store_slug: Mapped[str] = mapped_column(String(64))  # the store it creates or reconnects
    target: Mapped[str] = mapped_column(String(2048))  # the store's domain or site URL
    created_by: Mapped[str] = mapped_column(String(255))  # who started it (audit)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[dict | None] = mapped_column(JSON)  # what the flow needs back (scopes asked for, …)


class LoginFailure(Base):
    """Sign-in attempts per key (an account from an address, an address, an account) in the current
    window, for throttling; an attempt that succeeds is taken back."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """Who did what, when: every state-changing action of a person (retry, skip, config change)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))  # the user's email, or "cli:<os user>"
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict | None] = mapped_column(JSON)


class MappingEntry(Base):
    """A row of a merchant mapping table: SKU overrides, payment and shipping methods, tax codes,
    store location ↔ ERP warehouse. `store_id` None means every store."""

    __tablename__ = "mapping_entries"
    __table_args__ = (UniqueConstraint("kind", "store_id", "source", name="uq_mapping_entry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # sku | payment_method | shipping_method | tax | location
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(255))  # the store's value
    target: Mapped[str] = mapped_column(String(255))  # the ERP's value
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SyncCursor(Base):
    """Where a reader of the ERP (stock, shipments) or of a store (reconciliation) got to."""

    __tablename__ = "sync_cursors"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)  # e.g. erp:stock, erp:shipments
    cursor: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class StockMirror(Base):
    """The ERP's latest stock figure per SKU and warehouse, as read through the adapter."""

    __tablename__ = "stock_levels"

    sku: Mapped[str] = mapped_column(String(128), primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(64), primary_key=True)
    on_hand: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    erp_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the ERP counted it
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)  # when we saw a change


class StoreVariant(Base):
    """Which storefront item a SKU is in a store (resolved by SKU, cached, overridable)."""

    __tablename__ = "store_variants"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(128), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64))  # what the platform writes stock on (platforms.stock.VariantRef)
    variant_id: Mapped[str | None] = mapped_column(String(64))  # its variant or variation, when it has one
    manage_stock: Mapped[bool] = mapped_column(Boolean, default=True)
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PushedLevel(Base):
    """The quantity we last set at a store location, and the one the store last reported."""

    __tablename__ = "pushed_levels"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(128), primary_key=True)
    location: Mapped[str] = mapped_column(String(64), primary_key=True)
    pushed: Mapped[int | None] = mapped_column(Integer)
    reported: Mapped[int | None] = mapped_column(Integer)
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Reservation(Base):
    """Units an order took at a store, held against stock until the ERP's figure includes them."""

    __tablename__ = "reservations"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    order_external_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released: Mapped[bool] = mapped_column(Boolean, default=False)  # cancelled orders hold nothing
    # set whenever quantity or released changes: the inventory sync recomputes those SKUs
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Fulfillment(Base):
    """An ERP shipment told to a store: one per (store, shipment), so a replay changes nothing."""

    __tablename__ = "fulfillments"
    __table_args__ = (
        UniqueConstraint("store_id", "shipment_ref", name="uq_fulfillment"),
        Index("ix_fulfillments_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    shipment_ref: Mapped[str] = mapped_column(String(128))
    order_external_id: Mapped[str] = mapped_column(String(64), index=True)
    remote_id: Mapped[str | None] = mapped_column(String(128))  # the store's fulfillment / note id
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the shipment as the ERP gave it (lines, carrier, tracking): a retry needs it after the ERP
    # cursor has moved on
    shipment: Mapped[dict | None] = mapped_column(JSON)


class Approval(Base):
    """An order a store's approval rules held before the ERP, and the decision a person took on it."""

    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("store_id", "order_external_id", name="uq_approval"),
        Index("ix_approvals_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)  # the API takes ids up to BIGINT
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    order_external_id: Mapped[str] = mapped_column(String(64))
    order_number: Mapped[str] = mapped_column(String(64), default="")
    customer: Mapped[str] = mapped_column(String(255), default="")  # for the approver's list
    total: Mapped[str] = mapped_column(String(48), default="")  # "650.00 EUR"
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="awaiting")  # awaiting | approved | rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # a rejection cancels the order in the store: pending | done | failed, and why it failed
    store_cancel: Mapped[str | None] = mapped_column(String(16))
    store_cancel_error: Mapped[str | None] = mapped_column(Text)
    store_cancel_tries: Mapped[int] = mapped_column(Integer, default=0)


class CustomerMatch(Base):
    """An order whose buyer may be a customer the ERP already has (the same name and postcode, other
    contact details): it waits until a person links it to one of them or makes a new customer."""

    __tablename__ = "customer_matches"
    __table_args__ = (
        UniqueConstraint("store_id", "order_external_id", name="uq_customer_match"),
        Index("ix_customer_matches_key", "customer_key", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)  # the API takes ids up to BIGINT
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    order_external_id: Mapped[str] = mapped_column(String(64))
    order_number: Mapped[str] = mapped_column(String(64), default="")
    customer_key: Mapped[str] = mapped_column(String(255))  # the buyer's first customer_links key
    buyer: Mapped[dict] = mapped_column(JSON, default=dict)  # name, email, phone, postcode as the order gives them
    candidates: Mapped[list] = mapped_column(JSON, default=list)  # the ERP's similar customers, as shown
    status: Mapped[str] = mapped_column(String(16), default="awaiting")  # awaiting | linked | created | withdrawn
    erp_customer_id: Mapped[str | None] = mapped_column(String(64))  # linked: the one chosen
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(255))


class ReceiptDelivery(Base):
    """An ERP receipt (money finance recorded against an order) told to its store: one per (store, receipt),
    recorded pending before the store is called, so a replay changes nothing."""

    __tablename__ = "receipts"
    __table_args__ = (
        UniqueConstraint("store_id", "receipt_ref", name="uq_receipt"),
        Index("ix_receipts_status", "status"),
        Index("ix_receipts_order", "store_id", "order_external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    receipt_ref: Mapped[str] = mapped_column(String(128))
    order_external_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    # pending | done (the store shows the order paid) | partial (waits for more receipts) | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    note: Mapped[str | None] = mapped_column(Text)  # what was done or why not, for the console
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    receipt: Mapped[dict | None] = mapped_column(JSON)  # as the ERP gave it (method, reference, received_at)


class OrderAttribution(Base):
    """Who has the credit for a store order in the ERP (mappings.attribution), decided when the order first
    reached the ERP and kept for its later versions; the attribution report sums these rows."""

    __tablename__ = "order_attributions"
    __table_args__ = (
        UniqueConstraint("store_id", "order_external_id", name="uq_order_attribution"),
        Index("ix_order_attributions_placed_at", "placed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    order_external_id: Mapped[str] = mapped_column(String(64))
    order_number: Mapped[str] = mapped_column(String(64), default="")
    erp_customer_id: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str | None] = mapped_column(String(255))  # None: the account has no owner
    rule: Mapped[str] = mapped_column(String(8))  # owner | web | split, the store's rule when first written
    owner_share: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    currency: Mapped[str] = mapped_column(String(3))  # the shop currency
    total: Mapped[Decimal] = mapped_column(Numeric(18, 4))  # the order total the ERP has (latest version)
    owner_credit: Mapped[Decimal] = mapped_column(Numeric(18, 4))  # the owner's part of it; the rest is web's
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the version these figures are of
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UndeliveredParcel(Base):
    """A parcel the ERP recorded as returned undelivered (a COD parcel refused at the door), its store order
    cancelled: one per (store, return ref), recorded pending before the store is called, so a replay changes
    nothing."""

    __tablename__ = "undelivered"
    __table_args__ = (
        UniqueConstraint("store_id", "return_ref", name="uq_undelivered"),
        Index("ix_undelivered_status", "status"),
        Index("ix_undelivered_order", "store_id", "order_external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    return_ref: Mapped[str] = mapped_column(String(128))
    order_external_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    note: Mapped[str | None] = mapped_column(Text)  # what was done or why not, for the console
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parcel: Mapped[dict | None] = mapped_column(JSON)  # as the ERP gave it (order_ref, reason, returned_at)


class OfflineRefund(Base):
    """A credit note the ERP made itself, refunded in its store: one per (store, credit note), recorded pending
    before the store is called, so a replay changes nothing; `remote_id` is the store's refund once made."""

    __tablename__ = "offline_refunds"
    __table_args__ = (
        UniqueConstraint("store_id", "refund_ref", name="uq_offline_refund"),
        Index("ix_offline_refunds_status", "status"),
        Index("ix_offline_refunds_order", "store_id", "order_external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    refund_ref: Mapped[str] = mapped_column(String(128))  # the ERP's credit note number
    order_external_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))  # what goes back to the customer
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    note: Mapped[str | None] = mapped_column(Text)  # what was done or why not, for the console
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    remote_id: Mapped[str | None] = mapped_column(String(128))  # the store's refund id
    refund: Mapped[dict | None] = mapped_column(JSON)  # the credit note as the ERP gave it (lines, shipping)


class OrderRouting(Base):
    """Which ERP warehouse ships a store order, and each line's (mappings.routing): decided once, before the
    order's first ERP write, and kept for its later versions and for a shipment's store location."""

    __tablename__ = "order_routings"
    __table_args__ = (UniqueConstraint("store_id", "order_external_id", name="uq_order_routing"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    order_external_id: Mapped[str] = mapped_column(String(64))
    warehouse: Mapped[str | None] = mapped_column(String(64))  # None: the ERP's default
    # [[line external id, sku, warehouse], ...] in the order's line order (a split has several warehouses)
    lines: Mapped[list] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
