"""The canonical order: one vocabulary for every storefront and every ERP.

Plain frozen dataclasses so mappings and adapters share them without I/O; their JSON form (what
the inbox keeps of each event for the console) is mappings.canonical_json. Money is always a
Decimal with its currency; times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

ZERO = Decimal("0")


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money amount must be Decimal, got {type(self.amount).__name__}")
        if len(self.currency) != 3:
            raise ValueError(f"currency must be an ISO 4217 code, got {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        return Money(self.amount * factor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot mix {self.currency} and {other.currency}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(ZERO, currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def money_sum(items: list[Money], currency: str) -> Money:
    total = Money.zero(currency)
    for item in items:
        total = total + item
    return total


@dataclass(frozen=True)
class Address:
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country_code: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Customer:
    email: str | None
    first_name: str = ""
    last_name: str = ""
    phone: str | None = None
    external_id: str | None = None  # None for a guest checkout
    accepts_marketing: bool = False
    postcode: str = ""  # the billing (else shipping) address's: with the name, what a weak match compares

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def is_guest(self) -> bool:
        return self.external_id is None


@dataclass(frozen=True)
class TaxLine:
    title: str
    rate: Decimal
    amount: Money
    code: str | None = None  # the ERP's tax code, from the merchant's tax table


@dataclass(frozen=True)
class Discount:
    code: str
    kind: str  # fixed_amount | percentage | shipping | automatic | manual | coupon (WooCommerce)
    amount: Money


@dataclass(frozen=True)
class OrderLine:
    line_no: int
    external_id: str
    sku: str | None
    title: str
    quantity: int
    unit_price: Money
    discount_total: Money  # every discount allocated to this line
    tax_lines: tuple[TaxLine, ...] = ()
    product_id: str | None = None
    variant_id: str | None = None
    variant_title: str = ""
    requires_shipping: bool = True
    # The store's own quantity × price, when its unit price is a rounded figure (WooCommerce
    # derives it by division); None means exactly unit_price × quantity.
    subtotal: Money | None = None
    # Units an order edit took off after placement (Shopify: quantity − current_quantity). They stay in
    # `quantity`, as in the store's totals; their money comes back as the store's refund of them.
    removed: int = 0
    # The ERP warehouse this line ships from, as the store's routing rules chose it (None: the order's, or
    # the ERP's default); the connector sets it before the ERP write (mappings.routing).
    warehouse: str | None = None

    @property
    def current_quantity(self) -> int:
        """The units the customer still gets: what stock is held for and the warehouse ships."""
        return self.quantity - self.removed

    @property
    def gross(self) -> Money:
        return self.subtotal if self.subtotal is not None else self.unit_price * self.quantity

    @property
    def tax_total(self) -> Money:
        return money_sum([t.amount for t in self.tax_lines], self.unit_price.currency)

    @property
    def line_total(self) -> Money:
        """Quantity × unit price less this line's discounts (tax as the store priced it)."""
        return self.gross - self.discount_total


@dataclass(frozen=True)
class ShippingLine:
    code: str
    title: str
    price: Money
    discount_total: Money
    tax_lines: tuple[TaxLine, ...] = ()

    @property
    def net(self) -> Money:
        return self.price - self.discount_total


# Each fee kind and what a person calls it (the console, an ERP's line text).
FEE_LABELS = {"fee": "Fee", "tip": "Tip", "duty": "Duty", "additional_fee": "Additional fee"}
FEE_KINDS = tuple(FEE_LABELS)


@dataclass(frozen=True)
class FeeLine:
    """A charge that is neither goods nor shipping: a store fee (WooCommerce fee lines, COD fees), a tip,
    an import duty, or one of Shopify's additional fees (e.g. a retail delivery fee). Finance books
    each kind apart: a tip is owed to staff, a duty to customs, neither is revenue."""

    title: str
    amount: Money  # before tax
    tax_lines: tuple[TaxLine, ...] = ()
    kind: str = "fee"  # one of FEE_KINDS
    source_line_id: str | None = None  # the store's line id: a tip's own line, or the line a duty is levied on

    def __post_init__(self) -> None:
        if self.kind not in FEE_KINDS:
            raise ValueError(f"fee kind must be one of {', '.join(FEE_KINDS)}, got {self.kind!r}")


@dataclass(frozen=True)
class Payment:
    status: str  # pending | authorized | partially_paid | paid | partially_refunded | refunded | voided
    gateway: str = ""
    method: str = ""  # our vocabulary: card, paypal, cod, bank_transfer, manual, gift_card, other
    transaction_ref: str | None = None
    paid_at: datetime | None = None


RECEIVED_KINDS = ("sale", "capture")  # the kinds that move money to the merchant (an authorization only holds it)


@dataclass(frozen=True)
class Transaction:
    """One money movement of an order as the store recorded it (Shopify's order transactions). Refunds
    travel as Refund documents; what an ERP books as payments is `Order.received`."""

    external_id: str  # the store's transaction id: the ERP payment's idempotency key
    kind: str  # sale | capture | authorization | void | refund (the store's own word, kept as it is)
    status: str  # success | pending | failure | error
    gateway: str
    method: str  # our vocabulary, as Payment.method
    amount: Money  # in the shop currency, like every amount of the order
    reference: str | None = None  # what the payment processor calls it (Shopify `authorization`)
    processed_at: datetime | None = None
    parent_id: str | None = None  # the authorization a capture takes, the transaction a void cancels

    @property
    def received(self) -> bool:
        return self.status == "success" and self.kind in RECEIVED_KINDS


@dataclass(frozen=True)
class Totals:
    """The store's own totals, in the order currency: what the ERP must reconcile to."""

    subtotal: Money  # sum of line gross amounts, before any discount
    discount_total: Money  # line discounts (incl. order-level ones spread over lines) + shipping discounts
    shipping_total: Money  # shipping before its discounts
    tax_total: Money
    total: Money  # = subtotal − discount_total + shipping_total + fee_total (+ tax_total unless included)
    fee_total: Money | None = None  # every fee line, tips and duties included; None when the order has none

    @property
    def fees(self) -> Money:
        return self.fee_total if self.fee_total is not None else Money.zero(self.total.currency)


@dataclass(frozen=True)
class Order:
    source: str  # shopify | woocommerce
    store: str  # the store's slug
    external_id: str
    number: str
    status: str  # open | cancelled | closed
    placed_at: datetime
    updated_at: datetime
    currency: str  # the shop currency: what the ERP books
    taxes_included: bool
    customer: Customer
    lines: tuple[OrderLine, ...]
    totals: Totals
    payment: Payment
    billing_address: Address | None = None
    shipping_address: Address | None = None
    shipping_lines: tuple[ShippingLine, ...] = ()
    fee_lines: tuple[FeeLine, ...] = ()
    discounts: tuple[Discount, ...] = ()
    tax_lines: tuple[TaxLine, ...] = ()
    presentment_currency: str | None = None
    presentment_total: Money | None = None
    cancel_reason: str | None = None
    note: str = ""
    note_attributes: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    # Empty when the store told us none (WooCommerce; a Shopify order as its webhook carries it).
    transactions: tuple[Transaction, ...] = ()
    # The ERP warehouse that ships the order (mappings.routing; None: the ERP's default).
    warehouse: str | None = None

    @property
    def external_ref(self) -> str:
        """The idempotency key every ERP write uses: unique across platforms and stores."""
        return f"{self.source}:{self.store}:{self.external_id}"

    @property
    def received(self) -> tuple[Transaction, ...]:
        """The transactions that brought money in: successful sales and captures, less any capture a
        successful void cancelled."""
        voided = {t.parent_id for t in self.transactions if t.kind == "void" and t.status == "success"}
        return tuple(t for t in self.transactions if t.received and t.external_id not in voided)

    def fees_of(self, kind: str) -> Money:
        """The part of the fee total that is of this kind (before tax), e.g. the tips."""
        return money_sum([f.amount for f in self.fee_lines if f.kind == kind], self.currency)


@dataclass(frozen=True)
class RefundLine:
    line_external_id: str  # the order line it refunds
    sku: str | None
    quantity: int  # units refunded (positive); 0 for an amount-only refund of a line
    subtotal: Money  # refunded amount before tax
    tax: Money
    restock: bool  # the units go back into stock
    location_id: str | None = None  # the store location they go back to (Shopify says, WooCommerce does not)
    warehouse: str | None = None  # the ERP warehouse that location maps to (None: the ERP's default)


@dataclass(frozen=True)
class RefundFee:
    """A fee, tip, duty or additional fee given back (the refund's counterpart of a FeeLine)."""

    kind: str  # one of FEE_KINDS
    title: str
    amount: Money  # refunded before tax
    tax: Money
    source_line_id: str | None = None  # the store's line: the tip's own line, or the line the duty was levied on

    def __post_init__(self) -> None:
        if self.kind not in FEE_KINDS:
            raise ValueError(f"fee kind must be one of {', '.join(FEE_KINDS)}, got {self.kind!r}")

    @property
    def total(self) -> Money:
        return self.amount + self.tax


@dataclass(frozen=True)
class Refund:
    source: str
    store: str
    order_external_id: str
    external_id: str  # the refund's own id: the credit note's idempotency key
    created_at: datetime
    currency: str
    lines: tuple[RefundLine, ...]
    shipping: Money  # refunded shipping (tax included when the store priced it so)
    adjustment: Money  # any other amount refunded (positive) or withheld (negative)
    total: Money  # what went back to the customer: lines + tax + shipping + fees (with their tax) + adjustment
    reason: str = ""
    # Fees, tips, duties and additional fees given back: each kind is booked apart, as on the order.
    fees: tuple[RefundFee, ...] = ()

    @property
    def external_ref(self) -> str:
        return f"{self.source}:{self.store}:{self.order_external_id}:refund:{self.external_id}"

    @property
    def fee_total(self) -> Money:
        """Every fee refunded, its tax included (as `shipping` is)."""
        return self.fees_of(*FEE_KINDS)

    def fees_of(self, *kinds: str) -> Money:
        """The refunded fees of these kinds, tax included, e.g. the duties given back."""
        return money_sum([f.total for f in self.fees if f.kind in kinds], self.currency)


@dataclass(frozen=True)
class StockLevel:
    """What the back office says it holds of a SKU in a warehouse (the ERP is the source of truth)."""

    sku: str
    warehouse: str
    on_hand: Decimal
    updated_at: datetime


@dataclass(frozen=True)
class ShipmentLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Shipment:
    """A parcel the back office sent for a store order (the canonical Fulfillment)."""

    ref: str  # the ERP's shipment id: the fulfillment's idempotency key
    order_ref: str  # the order's external_ref
    lines: tuple[ShipmentLine, ...]
    shipped_at: datetime
    carrier: str = ""
    tracking_number: str = ""
    tracking_url: str = ""
    warehouse: str = ""


@dataclass(frozen=True)
class Receipt:
    """Money the back office's finance recorded against a store order (a COD collection, a bank transfer):
    never one of the payments the connector itself booked from the store."""

    ref: str  # the ERP's receipt id: the idempotency key of telling the store
    order_ref: str  # the order's external_ref
    amount: Money
    received_at: datetime
    method: str = ""  # cod, bank_transfer, ... as the ERP names it
    reference: str = ""  # the bank's or carrier's reference, for a person matching it


@dataclass(frozen=True)
class Undelivered:
    """A parcel the carrier brought back to the back office undelivered (a COD parcel refused at the door):
    the ERP has taken the goods back and closed its side of the order; the store order is to be cancelled."""

    ref: str  # the ERP's id of the return: the idempotency key of cancelling the store order
    order_ref: str  # the order's external_ref
    reason: str  # why, as the warehouse or the carrier recorded it ("refused by the buyer")
    returned_at: datetime


@dataclass(frozen=True)
class ErpRefundLine:
    sku: str
    quantity: int  # units given back (positive); 0 for money only
    amount: Money  # refunded for these units, tax included
    restock: bool  # the units came back into stock
    warehouse: str = ""  # where they came back to ("": the ERP's default)


@dataclass(frozen=True)
class ErpRefund:
    """A credit note the back office made itself (a return taken at the counter, a goodwill refund): never
    one the connector wrote from a store refund. The store refunds the customer to match, once."""

    ref: str  # the ERP's credit note number: the idempotency key of refunding in the store
    order_ref: str  # the order's external_ref
    lines: tuple[ErpRefundLine, ...]
    shipping: Money  # shipping given back, tax included
    total: Money  # what goes back to the customer: the lines and the shipping
    created_at: datetime
    reason: str = ""

    def __post_init__(self) -> None:
        summed = money_sum([ln.amount for ln in self.lines] + [self.shipping], self.total.currency)
        if summed != self.total:
            raise ValueError(
                f"credit note {self.ref}: its lines and shipping add up to {summed.amount}, not its total "
                f"{self.total.amount} {self.total.currency}"
            )
