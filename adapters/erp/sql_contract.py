"""The SQL staging contract: the tables a legacy ERP imports web orders from and writes stock,
shipments and receipts into, as an ERP team implements them (docs/erp-staging.md).

We write customers, orders, order lines, payments and credit notes; the ERP writes stock, shipments,
receipts (money finance recorded: a COD collection, a bank transfer), undelivered parcels (a COD parcel
refused at the door, its order closed in the ERP) and its own refunds (a return taken at the counter),
which we read. Receipts and refunds are tables of their own, apart from the erp_payments and
erp_credit_notes we write, so what the store did never comes back to it.
Columns added to the contract later are optional (the OPTIONAL_* lists): an ERP that implemented an
earlier version keeps working without them. `metadata.create_all()`
builds the tables for a demo or a test; adapters.erp.sql is the adapter that reads and writes them.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
)

AMOUNT = Numeric(18, 4)
metadata = MetaData()

erp_customers = Table(
    "erp_customers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(255), index=True),  # lower-cased and trimmed
    Column("name", String(255), nullable=False, default=""),
    Column("phone", String(64), index=True),  # digits with an optional leading +
    Column("external_ids", Text, nullable=False, default=""),  # space-separated store refs
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("postcode", String(32)),  # optional: with the name, how a possible duplicate is recognised
    # Optional (OPTIONAL_CUSTOMER_COLUMNS), filled by the ERP team: the account's owner (a sales rep, an
    # agent, a region). We never write it; web orders of an account with an owner carry it.
    Column("owner", String(255)),
)
OPTIONAL_CUSTOMER_COLUMNS = ("postcode", "owner")
# How a possible duplicate is looked up (a new buyer with the name and postcode of a customer the ERP has under
# other contact details): by the postcode as spelt without spaces or dashes, upper-cased. Without this index each
# new buyer scans the whole table (6.6 ms at 10,000 customers on PostgreSQL, growing with the table); an ERP that
# implements the contract by hand adds it: docs/erp-staging.md.
POSTCODE_KEY_INDEX = (
    "CREATE INDEX ix_erp_customers_postcode_key ON erp_customers (upper(replace(replace(postcode, ' ', ''), '-', '')))"
)

for _dialect in ("postgresql", "sqlite"):  # MySQL's syntax for an expression index differs: left out there
    event.listen(erp_customers, "after_create", DDL(POSTCODE_KEY_INDEX).execute_if(dialect=_dialect))

erp_orders = Table(
    "erp_orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_ref", String(255), nullable=False, unique=True),
    Column("source", String(20), nullable=False),
    Column("store", String(64), nullable=False),
    Column("number", String(64), nullable=False),
    # new (ours, editable) -> imported (the ERP took it; we no longer edit it) | cancelled
    Column("status", String(20), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("customer_id", Integer),
    Column("customer_email", String(255)),
    Column("subtotal", AMOUNT, nullable=False),
    Column("discount_total", AMOUNT, nullable=False),
    Column("shipping_total", AMOUNT, nullable=False),
    Column("tax_total", AMOUNT, nullable=False),
    Column("fee_total", AMOUNT, nullable=False, default=0),  # every fee line, tips and duties included
    Column("total", AMOUNT, nullable=False),
    Column("taxes_included", Boolean, nullable=False),
    Column("payment_status", String(32), nullable=False),
    Column("payment_method", String(32), nullable=False),
    Column("shipping_method", String(255), nullable=False, default=""),
    Column("cancel_reason", String(255)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("source_updated_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Added to the contract later, so optional: written when the ERP's table has them (OPTIONAL_ORDER_COLUMNS).
    Column("tip_total", AMOUNT, nullable=False, server_default="0"),  # the part of fee_total that is tips
    Column("duty_total", AMOUNT, nullable=False, server_default="0"),  # ... import duties
    Column("additional_fee_total", AMOUNT, nullable=False, server_default="0"),  # ... other charges, e.g. delivery fees
    Column("presentment_currency", String(3)),  # the currency the buyer paid in (may be the shop's own)
    Column("presentment_total", AMOUNT),
    # Who has the credit for the order (docs/order-flow.md, "Channel attribution"); NULL: written without one.
    Column("channel", String(16)),  # web
    Column("owner", String(255)),  # erp_customers.owner when the order was first written; NULL: none
    Column("owner_share", Numeric(5, 4)),  # the owner's part of the credit: 1, 0 or the split share
    Column("owner_credit", AMOUNT),  # total x owner_share, rounded to the currency; the rest is web's
    # The ship-from warehouse the store's routing rules chose (docs/order-flow.md, "Which warehouse ships");
    # NULL: the ERP's default. A split order's lines each name theirs (erp_order_lines.warehouse); this is the
    # first line's.
    Column("warehouse", String(64)),
)
OPTIONAL_ORDER_COLUMNS = (
    "tip_total",
    "duty_total",
    "additional_fee_total",
    "presentment_currency",
    "presentment_total",
    "channel",
    "owner",
    "owner_share",
    "owner_credit",
    "warehouse",
)

erp_order_lines = Table(
    "erp_order_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_ref", String(255), nullable=False, index=True),
    Column("line_no", Integer, nullable=False),
    Column("source_line_id", String(64)),  # the store's line id (refunds name lines by it)
    Column("sku", String(128)),
    Column("description", String(512), nullable=False),
    Column("quantity", Numeric(18, 4), nullable=False),
    Column("unit_price", AMOUNT, nullable=False),
    Column("discount_total", AMOUNT, nullable=False),
    Column("tax_total", AMOUNT, nullable=False),
    Column("line_total", AMOUNT, nullable=False),
    # Optional (OPTIONAL_ORDER_LINE_COLUMNS): the warehouse this line ships from; NULL: the order's, or the default.
    Column("warehouse", String(64)),
    UniqueConstraint("external_ref", "line_no", name="uq_erp_order_line"),
)
OPTIONAL_ORDER_LINE_COLUMNS = ("warehouse",)

erp_payments = Table(
    "erp_payments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("payment_ref", String(255), nullable=False, unique=True),
    Column("order_external_ref", String(255), nullable=False, index=True),
    Column("amount", AMOUNT, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("method", String(32), nullable=False),
    Column("gateway", String(128), nullable=False, default=""),
    Column("transaction_ref", String(255)),
    Column("paid_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

erp_credit_notes = Table(
    "erp_credit_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_ref", String(255), nullable=False, unique=True),
    Column("order_external_ref", String(255), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("subtotal", AMOUNT, nullable=False),
    Column("tax_total", AMOUNT, nullable=False),
    Column("shipping_total", AMOUNT, nullable=False),
    Column("adjustment", AMOUNT, nullable=False),
    Column("total", AMOUNT, nullable=False),
    Column("reason", String(255), nullable=False, default=""),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Added to the contract later, so optional (OPTIONAL_CREDIT_NOTE_COLUMNS): fees given back, tax included;
    # without them an ERP still reads them as the difference between `total` and the other parts.
    Column("fee_total", AMOUNT, nullable=False, server_default="0"),  # every fee given back, tips and duties included
    Column("tip_total", AMOUNT, nullable=False, server_default="0"),  # the part of fee_total that is tips
    Column("duty_total", AMOUNT, nullable=False, server_default="0"),  # ... import duties
    Column("additional_fee_total", AMOUNT, nullable=False, server_default="0"),  # ... other charges
)
OPTIONAL_CREDIT_NOTE_COLUMNS = ("fee_total", "tip_total", "duty_total", "additional_fee_total")

erp_credit_note_lines = Table(
    "erp_credit_note_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("credit_note_ref", String(255), nullable=False, index=True),
    Column("line_no", Integer, nullable=False),
    Column("order_line_no", Integer),
    Column("sku", String(128)),
    Column("quantity", Numeric(18, 4), nullable=False),
    Column("subtotal", AMOUNT, nullable=False),
    Column("tax_total", AMOUNT, nullable=False),
    Column("restock", Boolean, nullable=False),
    # Optional (added later): the warehouse restocked units go back into, from the store's restock
    # location and the merchant's location table; NULL means the ERP's own default.
    Column("warehouse", String(64)),
    UniqueConstraint("credit_note_ref", "line_no", name="uq_erp_credit_note_line"),
)
OPTIONAL_CREDIT_NOTE_LINE_COLUMNS = ("warehouse",)

erp_products = Table(  # optional item master: when it has rows, order lines must use its SKUs
    "erp_products",
    metadata,
    Column("sku", String(128), primary_key=True),
    Column("description", String(512), nullable=False, default=""),
)

erp_stock = Table(
    "erp_stock",
    metadata,
    Column("sku", String(128), primary_key=True),
    Column("warehouse", String(64), primary_key=True),
    Column("on_hand", Numeric(18, 4), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
)

erp_shipments = Table(
    "erp_shipments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("shipment_ref", String(128), nullable=False, unique=True),
    Column("order_external_ref", String(255), nullable=False, index=True),
    Column("warehouse", String(64)),
    Column("carrier", String(128)),
    Column("tracking_number", String(128)),
    Column("tracking_url", String(1024)),
    Column("shipped_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
)

erp_shipment_lines = Table(
    "erp_shipment_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("shipment_ref", String(128), nullable=False, index=True),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(128), nullable=False),
    Column("quantity", Numeric(18, 4), nullable=False),
    UniqueConstraint("shipment_ref", "line_no", name="uq_erp_shipment_line"),
)

erp_receipts = Table(  # the ERP writes; we never do (our payments from the store are erp_payments)
    "erp_receipts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("receipt_ref", String(128), nullable=False, unique=True),
    Column("order_external_ref", String(255), nullable=False, index=True),
    Column("amount", AMOUNT, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("method", String(32), nullable=False, default=""),  # cod, bank_transfer, ...
    Column("reference", String(255)),  # the bank's or carrier's reference
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
)

erp_undelivered = Table(  # the ERP writes; we never do
    "erp_undelivered",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("return_ref", String(128), nullable=False, unique=True),  # the ERP's id of the returned parcel
    Column("order_external_ref", String(255), nullable=False, index=True),
    Column("reason", String(255), nullable=False, default=""),  # "refused by the buyer", as recorded
    Column("returned_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
)

erp_refunds = Table(  # the ERP writes its own credit notes here; ours from store refunds are erp_credit_notes
    "erp_refunds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("refund_ref", String(128), nullable=False, unique=True),  # the ERP's credit note number
    Column("order_external_ref", String(255), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("shipping", AMOUNT, nullable=False, default=0),  # shipping given back, tax included
    Column("total", AMOUNT, nullable=False),  # the lines and the shipping
    Column("reason", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
)

erp_refund_lines = Table(
    "erp_refund_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("refund_ref", String(128), nullable=False, index=True),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(128), nullable=False),
    Column("quantity", Numeric(18, 4), nullable=False),
    Column("amount", AMOUNT, nullable=False),  # tax included
    Column("restock", Boolean, nullable=False),  # the units came back into stock
    Column("warehouse", String(64)),  # where they came back to
    UniqueConstraint("refund_ref", "line_no", name="uq_erp_refund_line"),
)

# The erp_orders.status we write: until the ERP sets another, the order is ours to update.
EDITABLE = "new"
