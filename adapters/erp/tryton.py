"""Tryton (trytond 8.2, modules sale + stock) as the ERP, over JSON-RPC (adapters.erp.tryton_rpc).

How the contract maps onto Tryton, and the choices made where Tryton has no direct equivalent:

- Customer = `party.party` with email and phone contact mechanisms (normalised values) and the
  connector's external ref as a `party.identifier` without a type (visible on the party, searchable).
  create_customer is idempotent on that ref. Addresses come from the order (billing -> invoice address,
  shipping -> shipment address) in push_order; an address equal to one the party has is reused.
  A region without a matching `country.subdivision` is appended to the city, so it is not lost.
  Tryton on SQLite hands out party codes from a sequence read outside its write lock: parties created at
  the same moment by several workers can draw the same code, and Tryton refuses all but one ("The code on
  party must be unique."). Nothing is created then, so create_customer redoes the create at once (a few
  times), then reports a RetryableErpError; PostgreSQL-backed Tryton uses real SQL sequences.
- Order = `sale.sale` with `reference` = the order's external_ref (searched before any create), then
  quoted and confirmed (confirm creates the draft invoice and the customer shipment). Lines:
  * each order line: product by code = SKU (an unknown SKU is a PermanentErpError naming it), the
    quantity, and the NET unit price (line_total / quantity, 4 decimals): discounts are inside the
    unit price, so revenue per line is what the customer paid. A line without SKU becomes a line
    without product (description only, booked on the default revenue account).
  * shipping: one line per store shipping line (net of shipping discounts) on the service product
    `shipping_product` (default SHIPPING). Fees: tips, duties and additional fees each on their own
    service product (`tip_product` TIP, `duty_product` DUTY, `additional_fee_product` ADDITIONAL_FEE),
    so each posts to its category's account; plain fees on `fee_product`, by default a line without
    product as before.
  * taxes: the store's tax lines are Tryton taxes (`account.tax`) on the sale lines, so Tryton's
    tax_amount is the store's tax and posts to the tax's accounts. A tax line's `code` (the merchant's
    tax table on /config) is the Tryton tax's name (or description); without a code, the tax whose
    name or description is the store's title and whose rate is the store's rate. None found is a
    PermanentErpError naming title and rate. Only top-level percentage taxes are used: their
    arithmetic is mirrored (adapters.erp.tryton_tax) to see before booking whether Tryton's rounding
    (per document or per line) gives a cent more or less than the store's per tax; then a one-unit line
    with only that tax and an untaxed line of the opposite amount ("Tax rounding to the store's ...")
    make them equal without changing what the goods earn. Tax-inclusive prices are booked net (the
    store's line total less its tax), so net + Tryton's tax = the store's gross. The draft's tax and
    total are checked against the store's before it is quoted.
  * if rounding the unit prices leaves a difference to the store's total, one untaxed line without
    product "Rounding difference" carries it. Amounts round to the currency's own step (JPY 1, KWD 0.001).
  * the description (copied to the invoice) names the store order and, when the buyer paid in another
    currency, what they paid in it ("buyer paid 78.79 EUR"); the version note keeps it too.
  * the party gets the buyer's email as a contact mechanism when it lacks it (a party found by phone).
- Versions, payments and history are `ir.note` entries on the sale (the notes tab in Tryton): a
  sentence for people plus one machine line `[storefront-connector] {json}`.
- Payments: a sale has no payment record of its own. Tryton can pay a *posted* invoice (the Pay wizard
  of account_invoice) or take payments through account_statement, but posting needs a fiscal year,
  invoice sequences and a payment journal, and it is the merchant's accounting, not ours. So
  record_payment only writes a payment note (idempotent on the payment key), get_order sums those
  notes into paid_total, and nothing is booked in Tryton's accounting: the invoice stays as Tryton
  made it. Two workers recording the same payment at the very same moment could both write a note
  (there is no unique constraint on notes); the connector's own bindings make that unlikely.
- Updates: while the sale is draft/quotation it is rewritten and quoted (and confirmed) again. Once
  confirmed, Tryton locks lines and header and only the comment may change: a newer version whose
  lines, party and currency are unchanged replaces the store's note inside the comment (what people
  wrote there in Tryton stays) and records the version (updated=True); any other change is not applied
  and the result says so (like the SQL back end for orders the ERP has imported).
- Concurrency: the connector claims events, not orders, so orders/create and orders/paid can push one
  order at once. After creating a sale we search its reference again: the lowest id wins and the other
  worker deletes its draft and gets a RetryableErpError. A sale without a version note younger than
  IMPORT_GRACE_SECONDS is an import in progress: RetryableErpError too (unless a `failed` note says the
  import gave up, then the next attempt takes the draft over at once).
- cancel_order: draft/quotation -> cancelled; confirmed -> draft -> cancelled; processing: the open
  customer shipments and draft invoices are cancelled and the resulting exceptions handled as "ignore"
  (Tryton's own wizards), which leaves the sale `done` with nothing shipped or invoiced: get_order
  reports that as cancelled. A done shipment or a posted invoice makes cancel a PermanentErpError
  (a person must return or credit it in Tryton). The reason goes into the sale's comment.
- create_credit_note: a return sale (negative quantities) with `origin` = the original sale and
  `reference` = the refund's external_ref, quoted and confirmed: Tryton makes the credit note invoice
  and, for restocked goods, the return shipment. Lines not restocked carry no product (no return
  shipment for goods that do not come back). Each refunded line carries the Tryton taxes its order line
  was booked with (the version note keeps them per store line and per fee) and the store's refunded tax
  is the target, balanced as for sales, so the refund's tax reverses the sale's. Refunded shipping
  includes its tax with no figure of its own: it is booked net with the order's shipping taxes, the tax
  inside it at their rates. Each fee, tip, duty or additional fee given back is a line on its kind's
  product, like the order's; one given back without tax carries no Tryton tax even if the order's was
  taxed. Refunded tax with no Tryton tax to reverse (a sale booked before taxes were Tryton taxes, a fee
  not found on the order) goes on the `tax_product` line. credited_total = minus the total of the
  confirmed sales whose origin is the order's sale (returns made in Tryton count too). The return sale's
  warehouse is the one its restocked lines name (RefundLine.warehouse, by code or reported name), else the
  sale's; lines naming several, or one Tryton does not know, go to the sale's and its comment says so.
- stock_changes: products whose stock moves or product record were created/written after the cursor
  (Tryton's own write_date/create_date timestamps), quantity (`quantity`, on hand) per warehouse with
  context {"locations": [warehouse]}. Cursor = "<timestamp>|<product id>". A first call (no cursor) reads
  every move once. On PostgreSQL-backed Tryton a transaction still open while we read can commit
  moves with an earlier timestamp than the cursor; on SQLite writers are serialised.
- Channel attribution (docs/order-flow.md, "Channel attribution"): Tryton 8.2's sale and party modules have no sales
  rep or agent (that is the `commission` module's `agent`, not activated here), so an account's owner is
  a party category: the party's category whose parent is named `owner_category` (default "Owner"), e.g.
  "Owner / REP-ANNA" -> REP-ANNA; the lowest id wins when a party has several. The sale carries the
  channel, owner, the owner's share and credit in its version note (the notes tab: a sentence for people,
  the figures in the machine line), not in its description, which is copied to the customer's invoice.
- Which warehouse ships (docs/order-flow.md, "Which warehouse ships"): a routed order's sale gets that warehouse (a
  stock.location of type warehouse, by code or reported name, as for returns) instead of `warehouse`; a
  Tryton sale has one warehouse, so a split order's sale has its first line's and the comment says which
  lines ship from elsewhere. get_order reports the sale's warehouse for the sale and each of its lines.
- shipments: done `stock.shipment.out` of sales with a reference, after the cursor "<write_date>|<id>".
  The shipment's `reference` field holds the tracking: "CARRIER:TRACKING" or just "TRACKING" (Tryton
  8.2 has no carrier field without the carrier modules). ref = the shipment number.
- receipts: customer invoices of the connector's sales that finance has paid (state `paid`: their
  lines to pay reconciled, through the Pay wizard or a bank statement), after the cursor
  "<write_date>|<id>". One receipt per invoice for its total (ref "invoice:<number>"), received on the
  reconciliation date. Since record_payment never books anything in Tryton's accounting, a paid invoice is
  always finance's own work, never a store payment coming back. Part-payments show once the invoice is
  paid in full (Tryton's own notion of paid); credit notes (negative invoices) are not receipts.
- undelivered: a parcel that came back is, in Tryton, the sale's customer shipment cancelled after it left
  the warehouse: a `stock.shipment.out` of a connector's sale in state `cancelled` with an effective date
  (it was done; cancelling a done shipment in Tryton 8.2 cancels its moves, so the goods are back in
  stock and the sale shows a shipment exception). After the cursor "<write_date>|<id>"; ref
  "shipment:<number>", returned on the write date, reason "customer shipment <number> cancelled after it
  left the warehouse" (Tryton keeps no reason for a cancellation). A shipment cancelled before it left is
  no refusal and is not read.
- offline_refunds: the returns desk's own returns. In Tryton a return is the `sale.return_sale` wizard on a sale:
  a copy with `origin` = that sale, no reference and every line's quantity negated (the lines keep product,
  price and taxes; they have no origin of their own), which the desk trims to what comes back, then quotes and
  confirms. One is read once Tryton has processed it (state processing or done): that is when Tryton makes its
  credit note (a customer invoice of negative total) and, for goods, the customer return shipment, and the
  desk can no longer change its lines. Not when the credit note is posted: Tryton makes invoices as drafts
  (invoice method "order") and nothing posts them but finance, on its own schedule, so waiting for that would
  keep the buyer's money back for as long. Returns whose origin is a sale the connector pushed (a
  reference, not a ":refund:" one), whose own reference is not a ":refund:" one (create_credit_note's return
  sales have the store refund's) and which give money back (negative total; an exchange that costs the
  buyer more is no refund), after the cursor "<write_date>|<id>". ref "return:<sale number>" (a draft credit
  note has no number yet); created on the sale date (set at confirm), at the sale's creation time when that
  is the same day; reason = the return's description when the desk changed the one copied from the sale.
  Lines (adapters.erp.tryton_returns): goods given back in whole units by product code, restocked (Tryton
  takes them back with a return shipment) at the return sale's warehouse; the SHIPPING product's lines are
  the shipping given back; any other line is money only. Amounts tax included, adding up to the return's
  total exactly.
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from time import sleep
from typing import Any

from adapters.clock import utcnow
from adapters.erp.base import (
    ErpCustomerView,
    ErpOrderLineView,
    ErpOrderView,
    OrderResult,
    PaymentRecord,
    PermanentErpError,
    RetryableErpError,
)
from adapters.erp.tryton_lines import ONE, PRICE, Booking, SaleLine, balance, booked_fee_taxes, tax_inside
from adapters.erp.tryton_returns import ReturnLine, erp_refund
from adapters.erp.tryton_rpc import TrytonRpc, TrytonUserError
from adapters.erp.tryton_tax import TrytonTax
from mappings.attribution import Attribution
from mappings.canonical import (
    FEE_LABELS,
    Address,
    Customer,
    ErpRefund,
    FeeLine,
    Money,
    Order,
    Receipt,
    Refund,
    RefundFee,
    Shipment,
    ShipmentLine,
    StockLevel,
    TaxLine,
    Undelivered,
)
from mappings.customers import normalise_email, normalise_name, normalise_phone, normalise_postcode, same_person_maybe
from mappings.utc import as_utc

TAG = "[storefront-connector]"
SALE_FIELDS = [
    "id",
    "number",
    "state",
    "reference",
    "party",
    "currency.code",
    "total_amount",
    "comment",
    "invoice_address",
    "shipment_address",
    "payment_term",
    "warehouse",
    "shipments",
    "invoices",
    "create_date",
]
# A sale without a version note younger than this is still being imported by another worker (Shopify
# sends orders/create and orders/paid within a second, and the connector claims events, not orders).
IMPORT_GRACE_SECONDS = 60
# A store's tax rate and a Tryton tax's rate are the same rate within this (WooCommerce sends 4 decimals
# of a percentage, Tryton keeps 10 of a fraction).
RATE_TOLERANCE = Decimal("0.000001")
OPEN_STATES = ("draft", "quotation")
CONFIRMED_STATES = ("confirmed", "processing", "done")
# A return sale Tryton has processed: its credit note (a draft customer invoice of negative total) and, for goods,
# its customer return shipment exist. The moment the returns desk's return is the ERP's credit note.
RETURNED_STATES = ("processing", "done")
# Tryton on SQLite reads its party code sequence outside the write lock, so parties created at the same
# moment can get the same code and all but one are refused ("The code on party must be unique."): nothing
# was created, so create_customer tries again at once this many times before a RetryableErpError.
PARTY_CODE_TRIES = 4


def _description(order: Order) -> str:
    """The sale's description (copied to its invoice): the store order, and what the buyer paid in their own
    currency when the store charged them in another one, so finance can match the buyer's invoice."""
    text = f"{order.source} {order.store} order {order.number}"
    shown = order.presentment_total
    if shown is not None and (shown.currency != order.currency or shown.amount != order.totals.total.amount):
        text += f"; buyer paid {shown.amount} {shown.currency}"
    return text


def _fee_description(fee: FeeLine | RefundFee, skus: dict[str, str | None]) -> str:
    label = FEE_LABELS.get(fee.kind, "Fee")
    sku = skus.get(fee.source_line_id or "")
    return f"{label}: {fee.title}" + (f" ({sku})" if sku else "")


def _dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


def _attribution_view(facts: dict | None) -> dict[str, Any]:
    if facts is None:
        return {}
    return {
        "channel": facts.get("channel") or "",
        "owner": facts.get("owner"),
        "owner_share": _dec(facts.get("owner_share")),
        "owner_credit": _dec(facts.get("owner_credit")),
    }


def _split_comment(order: Order) -> str:
    """A Tryton sale has one warehouse (the first line's): where the other lines of a split order ship from."""
    apart = [line for line in order.lines if line.warehouse and line.warehouse != order.warehouse]
    if not apart:
        return ""
    where = ", ".join(f"{line.sku or line.title} from {line.warehouse}" for line in apart)
    return f"Split shipment: {where}; the rest from {order.warehouse}."


def _ref_id(value: Any) -> int | None:
    """A Many2One read as an id, or a Reference "model,id"."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and "," in value:
        tail = value.rsplit(",", 1)[1]
        return int(tail) if tail.lstrip("-").isdigit() else None
    return None


def _split_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, last_id = cursor.split("|")
        return as_utc(datetime.fromisoformat(at)), int(last_id)
    except ValueError:
        raise PermanentErpError(
            f"cursor {cursor!r} was not made by the tryton ERP back end; reset the sync cursor"
        ) from None


def _cursor(at: datetime, last_id: int) -> str:
    return f"{as_utc(at).isoformat()}|{last_id}"


def _dated(day: date | None, stamp: datetime) -> datetime:
    """When something happened: Tryton's timestamp of it, unless a person dated it another day (a shipment's
    effective date, an invoice's reconciliation, a sale's date), then that day at 00:00 UTC."""
    at = as_utc(stamp)
    return at if day is None or day == at.date() else datetime.combine(day, time(0), tzinfo=UTC)


def parse_tracking(reference: str | None) -> tuple[str, str]:
    """The shipment's reference as (carrier, tracking number): "UPS:1Z99" or just "1Z99"."""
    text = (reference or "").strip()
    match = re.match(r"^([^:/]{1,60}):(?!//)\s*(\S.*)$", text)
    if match:
        return match.group(1).strip(), match.group(2).strip()
    return "", text


class TrytonErp:
    kind = "tryton"

    def __init__(
        self,
        url: str,
        database: str,
        username: str,
        password: str,
        *,
        warehouse: str | None = None,
        warehouse_names: dict[str, str] | None = None,
        shipping_product: str = "SHIPPING",
        tax_product: str = "TAX",
        tip_product: str = "TIP",
        duty_product: str = "DUTY",
        additional_fee_product: str = "ADDITIONAL_FEE",
        fee_product: str | None = None,
        payment_term: str | None = None,
        confirm: bool = True,
        owner_category: str = "Owner",
        connect_timeout: float = 5,
        read_timeout: float = 60,
    ):
        """Settings (erp.* in the configuration): url, database, username, password (a secret);
        warehouse: the Tryton warehouse code sales ship from (default: Tryton's default warehouse);
        warehouse_names: {Tryton warehouse code: the name the connector reports}, which also limits
        stock_changes to those warehouses (default: every warehouse, by its code);
        shipping_product: code of the service product of shipping lines; tip_product, duty_product,
        additional_fee_product: codes of the service products of those fee kinds (so each posts to its own
        account), fee_product: of plain fees (default none: a line without product, on the default revenue
        account); tax_product: only for refunded tax of sales booked before taxes were Tryton taxes;
        payment_term: a payment term name for parties without their own (default "Upon Receipt");
        confirm: false leaves new sales as quotations for a person to confirm; owner_category: the name of the
        party category whose sub-categories name the accounts' owners (default "Owner"); timeouts in seconds."""
        self.rpc = TrytonRpc(url, database, username, password, connect_timeout, read_timeout)
        self.warehouse_code = warehouse or None
        self.warehouse_names = dict(warehouse_names or {})
        self.shipping_code = shipping_product or "SHIPPING"
        self.tax_code = tax_product or "TAX"
        self.fee_codes = {
            "fee": fee_product or None,
            "tip": tip_product or "TIP",
            "duty": duty_product or "DUTY",
            "additional_fee": additional_fee_product or "ADDITIONAL_FEE",
        }
        self.payment_term_name = payment_term
        self.confirm = confirm
        self.owner_category = owner_category or "Owner"
        self._cache: dict[str, Any] = {}

    # ---- contract: connection and customers ---------------------------------------------------

    def test_connection(self) -> str:
        version = self.rpc.server_version()
        context = self.rpc.context
        if not context.get("company"):
            raise PermanentErpError(
                f"Tryton user {self.rpc.username!r} has no company: set the user's "
                "current company in Tryton (User > Preferences), then retry"
            )
        return (
            f"Tryton {version} at {self.rpc.url}, database {self.rpc.database}, company "
            f"{context.get('company.rec_name', context['company'])}, user {self.rpc.username}"
        )

    def check_order(self, order: Order) -> None:
        """Tryton's Char fields have no length limit; amounts are checked against the currency by the mappings."""
        return None

    def find_customer(self, email: str | None, phone: str | None) -> str | None:
        if email:
            email = email.strip().lower()
            found = self._search_read(
                "party.contact_mechanism",
                [("type", "=", "email"), ("value", "ilike", email), ("party.active", "=", True)],
                ["party", "value"],
                order=[("party", "ASC")],
            )
            for row in found:
                if (row["value"] or "").strip().lower() == email:
                    return str(row["party"])
        digits = re.sub(r"\D", "", phone or "")
        if len(digits) >= 6:
            found = self._search_read(
                "party.contact_mechanism",
                [
                    ("type", "in", ["phone", "mobile"]),
                    ("value_compact", "ilike", f"%{digits[-6:]}"),
                    ("party.active", "=", True),
                ],
                ["party", "value_compact", "value"],
                order=[("party", "ASC")],
            )
            candidates = [
                (re.sub(r"\D", "", row["value_compact"] or row["value"] or ""), row["party"]) for row in found
            ]
            for other, party in candidates:
                if other == digits:
                    return str(party)
            for other, party in candidates:  # national vs international writing of one number
                shorter, longer = sorted((other, digits), key=len)
                if len(shorter) >= 9 and longer.endswith(shorter):
                    return str(party)
        return None

    def create_customer(self, customer: Customer, external_ref: str) -> str:
        email, phone = normalise_email(customer.email), normalise_phone(customer.phone)
        if not (email or phone or customer.name):
            raise PermanentErpError(
                "the order has no customer email, phone or name: Tryton needs a party name "
                "to book it; fix the order in the store, then retry"
            )
        known = self._search_read(
            "party.identifier", [("code", "=", external_ref), ("type", "=", None)], ["party"], limit=1
        )
        if known:  # a retry of a create whose answer was lost
            return str(known[0]["party"])
        mechanisms = [{"type": "email", "value": email}] if email else []
        if phone:
            mechanisms.append({"type": "phone", "value": phone})
        values = {
            "name": customer.name or email or phone,
            "contact_mechanisms": [["create", mechanisms]] if mechanisms else [],
            "identifiers": [["create", [{"code": external_ref}]]],
        }
        for attempt in range(1, PARTY_CODE_TRIES + 1):
            try:
                (party_id,) = self.rpc.call(
                    "party.party", "create", [values], action=f"create the customer {values['name']}"
                )
                return str(party_id)
            except TrytonUserError as exc:
                message = exc.tryton_message.lower()
                if not ("code" in message and "party" in message and "unique" in message):
                    raise
                if attempt == PARTY_CODE_TRIES:
                    raise RetryableErpError(
                        f"Tryton gave customer {values['name']} a party code that a customer created at the same "
                        f"moment also got ({exc.tryton_message}), {attempt} times; trying again shortly"
                    ) from exc
                sleep(random.uniform(0.05, 0.2) * attempt)  # nothing was created: the whole create is redone
        raise AssertionError("unreachable")

    def similar_customers(self, name: str, postcode: str, limit: int = 5) -> list[ErpCustomerView]:
        """Active parties with this name and an address at this postcode (compared normalised)."""
        words = normalise_name(name).split()
        if not (words and normalise_postcode(postcode)):
            return []
        parties = self._search_read(
            "party.party",
            [("name", "ilike", f"%{words[-1]}%"), ("active", "=", True)],
            ["name"],
            order=[("id", "ASC")],
            limit=200,
        )
        named = {p["id"]: p["name"] for p in parties if normalise_name(p["name"]) == normalise_name(name)}
        if not named:
            return []
        addresses = self._search_read("party.address", [("party", "in", list(named))], ["party", "postal_code"])
        at: dict[int, str] = {}
        for address in addresses:
            if same_person_maybe(named[address["party"]], address["postal_code"], name, postcode):
                at.setdefault(address["party"], address["postal_code"] or "")
        if not at:
            return []
        contacts = self._search_read(
            "party.contact_mechanism", [("party", "in", list(at))], ["party", "type", "value"], order=[("id", "ASC")]
        )
        reach: dict[int, dict[str, str]] = {}
        for c in contacts:
            kind = "email" if c["type"] == "email" else "phone" if c["type"] in ("phone", "mobile") else None
            if kind:
                reach.setdefault(c["party"], {}).setdefault(kind, c["value"])
        return [
            ErpCustomerView(
                str(party),
                named[party],
                normalise_email(reach.get(party, {}).get("email")),
                normalise_phone(reach.get(party, {}).get("phone")),
                at[party],
            )
            for party in sorted(at)[:limit]
        ]

    def customer_owner(self, customer_id: str) -> str | None:
        party = self._party_id(customer_id)
        rows = self._search_read("party.party", [("id", "=", party)], ["categories"], context={"active_test": False})
        if not rows or not rows[0]["categories"]:
            return None
        owners = self._search_read(
            "party.category",
            [("id", "in", rows[0]["categories"]), ("parent.name", "=", self.owner_category)],
            ["name"],
            order=[("id", "ASC")],
            limit=1,
            context={"active_test": False},
        )
        return ((owners[0]["name"] or "").strip() or None) if owners else None

    # ---- contract: orders ---------------------------------------------------------------------

    def push_order(self, order: Order, customer_id: str, attribution: Attribution | None = None) -> OrderResult:
        party = self._party_id(customer_id)
        sale = self._find_sale(order.external_ref)
        if sale is None:
            header, booking = self._sale_values(order, party)
            header["lines"] = [["create", [line.values() for line in booking.lines]]]
            (sale_id,) = self.rpc.call(
                "sale.sale", "create", [header], action=f"create the sale of order {order.number}"
            )
            same = self.rpc.call(
                "sale.sale",
                "search",
                [("reference", "=", order.external_ref)],
                0,
                None,
                [("id", "ASC")],
                action="check the sale is the only one",
            )
            if same and same[0] != sale_id:  # another worker created it at the same moment: it wins
                self.rpc.call("sale.sale", "delete", [sale_id], action="remove a duplicate sale")
                raise RetryableErpError(
                    f"another worker is creating the Tryton sale of order {order.number} "
                    f"(sale {same[0]}); trying again shortly"
                )
            note = self._finish(sale_id, f"order {order.number}", (booking.tax_total, order.totals.total.amount))
            self._order_note(sale_id, order, "Imported", booking, attribution)
            return OrderResult(erp_ref=str(sale_id), created=True, note=note)

        erp_ref, state, label = str(sale["id"]), sale["state"], f"Tryton sale {sale['number'] or sale['id']}"
        meta = self._meta(sale["id"])
        version = meta["version"]
        if version is not None and version >= order.updated_at:
            return OrderResult(erp_ref, created=False, note="the ERP already has this version")
        age = (utcnow() - as_utc(sale["create_date"])).total_seconds()
        if version is None and not meta["failed"] and age < IMPORT_GRACE_SECONDS:
            raise RetryableErpError(
                f"another worker is importing order {order.number} into Tryton ({label}, "
                f"created {age:.0f}s ago); trying again shortly"
            )
        if self._is_cancelled(sale):
            return OrderResult(erp_ref, created=False, note=f"{label} is cancelled; the change was not applied")
        header, booking = self._sale_values(order, party)
        lines = booking.lines
        if state in OPEN_STATES:
            if state == "quotation":
                self.rpc.call("sale.sale", "draft", [sale["id"]], action=f"reopen {label}")
            old = self.rpc.call("sale.line", "search", [("sale", "=", sale["id"])], 0, None, None)
            header["lines"] = [["delete", old], ["create", [line.values() for line in lines]]]
            self.rpc.call("sale.sale", "write", [sale["id"]], header, action=f"update {label}")
            note = self._finish(sale["id"], f"order {order.number}", (booking.tax_total, order.totals.total.amount))
            self._order_note(sale["id"], order, "Updated", booking, attribution)
            return OrderResult(erp_ref, created=False, updated=True, note=note)
        current = self._search_read(
            "sale.line",
            [("sale", "=", sale["id"]), ("type", "=", "line")],
            ["product", "unit", "quantity", "unit_price", "description", "taxes"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        )
        current_keys = sorted(
            SaleLine(
                r["product"],
                r["unit"],
                _dec(r["quantity"]),
                _dec(r["unit_price"]),
                r["description"] or "",
                tuple(r["taxes"]),
            ).key()
            for r in current
        )
        unchanged = (
            sorted(line.key() for line in lines) == current_keys
            and header["party"] == sale["party"]
            and header["currency"] == self._currency(sale["currency."]["code"])[0]
        )
        if not unchanged:
            return OrderResult(
                erp_ref,
                created=False,
                note=(
                    f"{label} is {state}: Tryton no longer lets its lines, customer or currency change, so the change "
                    "was not applied; change the sale in Tryton if it still matters"
                ),
            )
        # Only the store's note is replaced in the comment: what people wrote there in Tryton stays.
        old_note, comment = meta["note"] or "", sale["comment"] or ""
        if order.note != old_note:
            if old_note and old_note in comment:
                comment = comment.replace(old_note, order.note, 1)
            else:
                comment = f"{comment}\n{order.note}" if comment and order.note else comment or order.note
            self.rpc.call(
                "sale.sale", "write", [sale["id"]], {"comment": comment}, action=f"update the comment of {label}"
            )
        self._order_note(sale["id"], order, "Updated", booking, attribution)
        return OrderResult(
            erp_ref,
            created=False,
            updated=True,
            note=f"{label} is {state}: only its comment (the store's note) could change",
        )

    def record_payment(self, payment: PaymentRecord) -> str:
        sale = self._require_sale(payment.order_ref)
        for note_id, data in self._notes(sale["id"]):
            if data.get("payment") == payment.key:
                return str(note_id)
        amount = payment.amount
        via = f" via {payment.gateway}" if payment.gateway else ""
        tx = f" (transaction {payment.transaction_ref})" if payment.transaction_ref else ""
        text = (
            f"Payment of {amount.amount} {amount.currency} by {payment.method}{via}{tx} on "
            f"{as_utc(payment.paid_at):%Y-%m-%d %H:%M} UTC, recorded by the store (not booked in accounting)."
        )
        return str(
            self._note(
                sale["id"],
                text,
                {
                    "payment": payment.key,
                    "amount": str(amount.amount),
                    "currency": amount.currency,
                    "method": payment.method,
                    "gateway": payment.gateway,
                    "transaction": payment.transaction_ref,
                    "paid_at": as_utc(payment.paid_at).isoformat(),
                },
            )
        )

    def cancel_order(self, order_ref: str, reason: str) -> bool:
        sale = self._require_sale(order_ref)
        if self._is_cancelled(sale):
            return False
        sale_id, state = sale["id"], sale["state"]
        label = f"Tryton sale {sale['number'] or sale_id}"
        if state == "confirmed":
            self.rpc.call("sale.sale", "draft", [sale_id], action=f"reopen {label} to cancel it")
            state = "draft"
        if state in OPEN_STATES:
            self.rpc.call("sale.sale", "cancel", [sale_id], action=f"cancel {label}")
        else:
            self._cancel_processing(sale, label)
        stamp = f"Cancelled from the store on {utcnow():%Y-%m-%d %H:%M} UTC: {reason or 'no reason given'}"
        comment = f"{sale['comment']}\n{stamp}" if sale["comment"] else stamp
        self.rpc.call("sale.sale", "write", [sale_id], {"comment": comment}, action=f"note the cancellation of {label}")
        self._note(sale_id, stamp + ".", {"cancelled": reason})
        return True

    def create_credit_note(self, refund: Refund, order_ref: str) -> str:
        sale = self._require_sale(order_ref)
        existing = self._find_sale(refund.external_ref)
        if existing is not None:
            return str(existing["id"])
        booking = self._refund_booking(refund, sale)
        _, step = self._currency(refund.currency)
        booking.lines += self._balanced(
            booking, -refund.total.amount, self._taxes(), self._tax_rounding(), step, f"refund {refund.external_id}"
        )
        lines = booking.lines
        warehouse, moved = self._return_warehouse(refund, sale)
        header = {
            "party": sale["party"],
            "invoice_address": sale["invoice_address"],
            "shipment_address": sale["shipment_address"],
            "currency": self._currency(refund.currency)[0],
            "payment_term": sale["payment_term"],
            "reference": refund.external_ref,
            "origin": f"sale.sale,{sale['id']}",
            "description": f"Refund of sale {sale['number'] or sale['id']}",
            "comment": "\n".join(filter(None, (refund.reason, moved))) or None,
            "sale_date": as_utc(refund.created_at).date(),
            "lines": [["create", [line.values() for line in lines]]],
        }
        if warehouse:
            header["warehouse"] = warehouse
        (return_id,) = self.rpc.call("sale.sale", "create", [header], action=f"create the return of {order_ref}")
        same = self.rpc.call("sale.sale", "search", [("reference", "=", refund.external_ref)], 0, None, [("id", "ASC")])
        if same and same[0] != return_id:  # another worker created it at the same moment: it wins
            self.rpc.call("sale.sale", "delete", [return_id], action="remove a duplicate return")
            raise RetryableErpError(
                f"another worker is creating the Tryton return of {refund.external_ref} "
                f"(sale {same[0]}); trying again shortly"
            )
        self._finish(return_id, f"the refund {refund.external_id}", (booking.tax_total, -refund.total.amount))
        return str(return_id)

    def _return_warehouse(self, refund: Refund, sale: dict) -> tuple[int | None, str]:
        """The warehouse the return sale takes the restocked goods back into: the one their lines name (lines
        naming none leave it to the others), else the sale's; with a sentence for staff when the goods do not
        go where the store restocked them. A Tryton sale has one warehouse, so lines naming several go to the
        sale's. So does a warehouse Tryton does not know (a typo in the location table, one not created yet):
        failing would keep the customer's money out of the books until someone fixes the mapping, while goods
        in the wrong warehouse are one internal move away, and the comment says where they are."""
        named: dict[str, list[str]] = {}
        for line in refund.lines:
            if line.restock and line.quantity > 0 and line.warehouse:
                named.setdefault(line.warehouse, []).append(line.sku or line.line_external_id)
        if not named:
            return sale["warehouse"], ""
        found = {code: self._find_warehouse(code) for code in named}  # two names may be one warehouse
        ids = set(found.values())
        if len(ids) == 1 and None not in ids:
            return ids.pop(), ""
        unknown = [code for code, wid in found.items() if wid is None]
        why = (
            f"Tryton has no warehouse with code or name {', '.join(unknown)} (fix the location table on "
            "/config#mappings)"
            if unknown
            else "a Tryton sale has one warehouse"
        )
        places = ", ".join(f"{code} ({', '.join(skus)})" for code, skus in named.items())
        return sale["warehouse"], (
            f"The store restocked these goods at {places}, but {why}, so they come back into "
            "this sale's warehouse: move them to where they are with an internal shipment."
        )

    def _refund_booking(self, refund: Refund, sale: dict) -> Booking:
        """Negative lines reversing the sale's: each refunded line, the shipping and each fee with the Tryton
        taxes its order line was booked with (kept in the sale's note) and the store's refunded tax as their
        target. Lines not restocked carry no product (no return shipment for goods that do not come back)."""
        unit, booking = self._unit(), Booking()
        names = {
            r["product"]: r["description"]
            for r in self._search_read(
                "sale.line", [("sale", "=", sale["id"]), ("product", "!=", None)], ["product", "description"]
            )
        }
        line_taxes, fee_taxes = self._booked_taxes(sale["id"])
        known, step = self._taxes(), self._currency(refund.currency)[1]
        skus = [line.sku for line in refund.lines if line.sku and line.restock and line.quantity > 0]
        products = self._products(skus, strict=False)
        untaxed = Decimal(0)
        for line in refund.lines:
            taxes = tuple(t for t in line_taxes.get(line.line_external_id, []) if t in known)
            product = products.get(line.sku or "") if line.restock and line.quantity > 0 else None
            if line.quantity > 0:
                text = names.get(product["id"]) if product else None
                text = text or f"{line.sku or 'item'}{'' if line.restock else ' (not returned to stock)'}"
                booking.lines.append(
                    SaleLine(
                        product["id"] if product else None,
                        product["sale_uom"] if product else unit,
                        Decimal(-line.quantity),
                        (line.subtotal.amount / line.quantity).quantize(PRICE),
                        f"Refund: {text}",
                        taxes,
                    )
                )
            elif line.subtotal.amount or line.tax.amount:
                booking.lines.append(
                    SaleLine(
                        None, unit, -ONE, line.subtotal.amount, f"Refund: {line.sku or 'line'} (amount only)", taxes
                    )
                )
            untaxed += booking.refund_tax(taxes, line.tax.amount, known, step)  # left: booked before Tryton taxes
        if refund.shipping.amount:
            # The refund's shipping includes its tax, which has no figure of its own: the tax inside it at the
            # rates of the order's shipping taxes reverses those taxes, as the goods' tax does theirs.
            taxes = tuple(t for t in line_taxes.get("shipping", []) if t in known)
            tax = tax_inside(refund.shipping.amount, taxes, known, step)
            booking.lines.append(
                SaleLine(
                    self._service(self.shipping_code),
                    unit,
                    -ONE,
                    refund.shipping.amount - tax,
                    "Refund: shipping",
                    taxes if tax else (),
                )
            )
            booking.refund_tax(taxes, tax, known, step)
        untaxed += self._refund_fees(refund, booking, fee_taxes)
        if untaxed:
            booking.lines.append(SaleLine(self._service(self.tax_code), unit, -ONE, untaxed, "Refund: tax"))
        if refund.adjustment.amount or not booking.lines:
            booking.lines.append(SaleLine(None, unit, -ONE, refund.adjustment.amount, "Refund: adjustment"))
        return booking

    def _refund_fees(self, refund: Refund, booking: Booking, fee_taxes: list[dict]) -> Decimal:
        """Each fee given back on its kind's product, as the order books it; returns the refunded tax that
        found no Tryton tax to reverse."""
        unit, known, step = self._unit(), self._taxes(), self._currency(refund.currency)[1]
        skus = {line.line_external_id: line.sku for line in refund.lines}
        untaxed = Decimal(0)
        for fee in refund.fees:
            # A fee given back without tax carries no Tryton tax even when the order's fee did (Shopify gives
            # a duty back without its tax). With tax, the order fee's taxes, as for goods; when none is found
            # the tax goes on the tax product, like the tax of goods booked before taxes were Tryton taxes: the
            # credit note's total and tax stay the store's, but that tax reverses no Tryton tax's account.
            found = booked_fee_taxes(fee_taxes, fee) if fee.tax.amount else None
            taxes = tuple(t for t in (found or ()) if t in known)
            code = self.fee_codes.get(fee.kind)
            booking.lines.append(
                SaleLine(
                    self._service(code) if code else None,
                    unit,
                    -ONE,
                    fee.amount.amount,
                    f"Refund: {_fee_description(fee, skus)}",
                    taxes,
                )
            )
            untaxed += booking.refund_tax(taxes, fee.tax.amount, known, step)
        return untaxed

    def _booked_taxes(self, sale_id: int) -> tuple[dict[str, list[int]], list[dict]]:
        """The Tryton taxes each store line and each fee of the sale was booked with (the latest version
        note's; a sale noted before fees' taxes were kept has none for its fees)."""
        lines: dict[str, list[int]] = {}
        fees: list[dict] = []
        for _, data in self._notes(sale_id):
            if isinstance(data.get("line_taxes"), dict):
                lines, fees = data["line_taxes"], data.get("fee_taxes") or []
        return lines, fees if isinstance(fees, list) else []

    def get_order(self, order_ref: str) -> ErpOrderView | None:
        sale = self._find_sale(order_ref)
        if sale is None:
            return None
        rows = self._search_read(
            "sale.line",
            [("sale", "=", sale["id"]), ("type", "=", "line")],
            ["product.code", "quantity", "unit_price", "amount"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        )
        # One warehouse per sale: every line ships from it (a split's other warehouses are in the comment).
        warehouse = dict(self._warehouses(all_warehouses=True)).get(sale["warehouse"]) if sale["warehouse"] else None
        lines = tuple(
            ErpOrderLineView(
                (r.get("product.") or {}).get("code"),
                _dec(r["quantity"]),
                _dec(r["unit_price"]),
                _dec(r["amount"]),
                warehouse,
            )
            for r in rows
        )
        returns = self._search_read(
            "sale.sale",
            [("origin", "=", f"sale.sale,{sale['id']}"), ("state", "in", list(CONFIRMED_STATES))],
            ["total_amount"],
        )
        credited = -sum((_dec(r["total_amount"]) for r in returns), Decimal(0))
        meta = self._meta(sale["id"])
        total = _dec(sale["total_amount"])
        if credited > 0:
            payment_status = "refunded" if credited >= total else "partially_refunded"
        elif meta["paid"] > 0:
            payment_status = "paid" if meta["paid"] >= total else "partially_paid"
        else:
            payment_status = meta["payment_status"] or "pending"
        if self._is_cancelled(sale):
            status = "cancelled"
        else:
            status = "new" if sale["state"] in OPEN_STATES else "confirmed"
        return ErpOrderView(
            erp_ref=str(sale["id"]),
            external_ref=order_ref,
            status=status,
            currency=sale["currency."]["code"],
            total=total,
            payment_status=payment_status,
            customer_id=str(sale["party"]),
            lines=lines,
            credited_total=credited,
            paid_total=meta["paid"],
            **_attribution_view(meta["attribution"]),
            warehouse=warehouse,
        )

    # ---- contract: stock and shipments --------------------------------------------------------

    def stock_changes(self, cursor: str | None, limit: int = 1000) -> tuple[list[StockLevel], str | None]:
        after = _split_cursor(cursor) if cursor else None
        since = [("create_date", ">=", after[0]), ("write_date", ">=", after[0])] if after else None
        changed: dict[int, datetime] = {}
        moves = self._search_read(
            "stock.move", ["OR", *since] if since else [], ["product", "create_date", "write_date"]
        )
        products = self._search_read("product.product", ["OR", *since] if since else [], ["create_date", "write_date"])
        for row in (*moves, *products):
            key = row["product"] if "product" in row else row["id"]
            stamp = max(d for d in (row["create_date"], row["write_date"]) if d is not None)
            if key not in changed or stamp > changed[key]:
                changed[key] = stamp
        order = sorted((as_utc(stamp), pid) for pid, stamp in changed.items())
        if after:
            order = [item for item in order if item > after]
        codes = {
            r["id"]: r["code"]
            for r in self._read("product.product", [pid for _, pid in order], ["code", "type"])
            if r["code"] and r["type"] in ("goods", "assets")
        }  # services and kits hold no stock
        order = [item for item in order if item[1] in codes]
        if not order:
            return [], cursor
        warehouses = self._warehouses()
        batch = order[: max(1, limit // max(1, len(warehouses)))]
        levels: list[StockLevel] = []
        for warehouse_id, name in warehouses:
            rows = self._read(
                "product.product", [pid for _, pid in batch], ["quantity"], context={"locations": [warehouse_id]}
            )
            quantities = {r["id"]: _dec(r["quantity"]) for r in rows}
            levels += [StockLevel(codes[pid], name, quantities.get(pid, Decimal(0)), stamp) for stamp, pid in batch]
        levels.sort(key=lambda level: (level.updated_at, level.sku, level.warehouse))
        return levels, _cursor(*batch[-1])

    def shipments(self, cursor: str | None, limit: int = 500) -> tuple[list[Shipment], str | None]:
        after = _split_cursor(cursor) if cursor else None
        domain: list = [("state", "=", "done")]
        if after:
            domain.append(("write_date", ">=", after[0]))
        rows = self._search_read(
            "stock.shipment.out",
            domain,
            ["number", "reference", "write_date", "effective_date", "warehouse", "outgoing_moves"],
            order=[("write_date", "ASC"), ("id", "ASC")],
        )
        rows = [r for r in rows if not after or (as_utc(r["write_date"]), r["id"]) > after][:limit]
        if not rows:
            return [], cursor
        move_ids = [m for r in rows for m in r["outgoing_moves"]]
        moves = {
            m["id"]: m for m in self._read("stock.move", move_ids, ["product.code", "quantity", "origin", "state"])
        }
        line_ids = {_ref_id(m["origin"]) for m in moves.values() if (m["origin"] or "").startswith("sale.line,")}
        sale_of_line = {r["id"]: r["sale"] for r in self._read("sale.line", sorted(i for i in line_ids if i), ["sale"])}
        refs = {
            r["id"]: r["reference"] for r in self._read("sale.sale", sorted(set(sale_of_line.values())), ["reference"])
        }
        names = dict(self._warehouses(all_warehouses=True))
        found: list[Shipment] = []
        for row in rows:
            qty: dict[str, Decimal] = {}
            order_ref = None
            for move_id in row["outgoing_moves"]:
                move = moves.get(move_id)
                if not move or move["state"] != "done":
                    continue
                line_id = _ref_id(move["origin"]) if (move["origin"] or "").startswith("sale.line,") else None
                order_ref = order_ref or refs.get(sale_of_line.get(line_id or 0) or 0)
                code = (move.get("product.") or {}).get("code")
                if code:
                    qty[code] = qty.get(code, Decimal(0)) + _dec(move["quantity"])
            if not order_ref or ":refund:" in order_ref:
                continue  # a shipment of a sale the connector did not push
            carrier, tracking = parse_tracking(row["reference"])
            found.append(
                Shipment(
                    ref=row["number"] or str(row["id"]),
                    order_ref=order_ref,
                    lines=tuple(ShipmentLine(sku, int(q)) for sku, q in qty.items()),
                    shipped_at=_dated(row["effective_date"], row["write_date"]),
                    carrier=carrier,
                    tracking_number=tracking,
                    warehouse=names.get(row["warehouse"], ""),
                )
            )
        return found, _cursor(rows[-1]["write_date"], rows[-1]["id"])

    def undelivered(self, cursor: str | None, limit: int = 500) -> tuple[list[Undelivered], str | None]:
        rows = self._changed_after(
            "stock.shipment.out",
            [("state", "=", "cancelled"), ("effective_date", "!=", None)],
            ["number", "write_date", "outgoing_moves"],
            cursor,
            limit,
        )
        if not rows:
            return [], cursor
        moves = self._read("stock.move", [m for r in rows for m in r["outgoing_moves"]], ["origin"])
        line_of_move = {m["id"]: _ref_id(m["origin"]) for m in moves if (m["origin"] or "").startswith("sale.line,")}
        sale_of_line = {
            r["id"]: r["sale"]
            for r in self._read("sale.line", sorted({i for i in line_of_move.values() if i}), ["sale"])
        }
        refs = {
            r["id"]: r["reference"] for r in self._read("sale.sale", sorted(set(sale_of_line.values())), ["reference"])
        }
        found: list[Undelivered] = []
        for row in rows:
            order_refs = {
                str(refs.get(sale_of_line.get(line_of_move.get(m) or 0) or 0) or "") for m in row["outgoing_moves"]
            } - {""}
            if len(order_refs) != 1 or ":refund:" in next(iter(order_refs)):
                continue  # not a shipment of one sale the connector pushed
            number = row["number"] or str(row["id"])
            found.append(
                Undelivered(
                    ref=f"shipment:{number}",
                    order_ref=order_refs.pop(),
                    reason=f"customer shipment {number} cancelled after it left the warehouse",
                    returned_at=as_utc(row["write_date"]),
                )
            )
        return found, _cursor(rows[-1]["write_date"], rows[-1]["id"])

    def _changed_after(self, model: str, domain: list, fields: list[str], cursor: str | None, limit: int) -> list[dict]:
        """Records matching the domain written after the cursor "<write_date>|<id>", oldest first."""
        after = _split_cursor(cursor) if cursor else None
        if after:
            domain = [*domain, ("write_date", ">=", after[0])]
        rows = self._search_read(model, domain, fields, order=[("write_date", "ASC"), ("id", "ASC")])
        return [r for r in rows if not after or (as_utc(r["write_date"]), r["id"]) > after][:limit]

    def receipts(self, cursor: str | None, limit: int = 500) -> tuple[list[Receipt], str | None]:
        after = _split_cursor(cursor) if cursor else None
        domain: list = [("type", "=", "out"), ("state", "=", "paid")]
        if after:
            domain.append(("write_date", ">=", after[0]))
        rows = self._search_read(
            "account.invoice",
            domain,
            ["number", "total_amount", "currency.code", "write_date", "reconciled", "sales"],
            order=[("write_date", "ASC"), ("id", "ASC")],
        )
        rows = [r for r in rows if not after or (as_utc(r["write_date"]), r["id"]) > after][:limit]
        if not rows:
            return [], cursor
        sale_ids = sorted({sale for r in rows for sale in r["sales"]})
        refs = {r["id"]: r["reference"] for r in self._read("sale.sale", sale_ids, ["reference"])}
        found: list[Receipt] = []
        for row in rows:
            order_refs = {str(refs.get(sale) or "") for sale in row["sales"]} - {""}
            total = _dec(row["total_amount"])
            if len(order_refs) != 1 or total <= 0:
                continue  # not one sale the connector pushed (or a credit note): no store order to tell
            (order_ref,) = order_refs
            if ":refund:" in order_ref:
                continue
            found.append(
                Receipt(
                    ref=f"invoice:{row['number'] or row['id']}",
                    order_ref=order_ref,
                    amount=Money(total, row["currency."]["code"]),
                    received_at=_dated(row["reconciled"], row["write_date"]),
                    method="invoice paid",
                )
            )
        return found, _cursor(rows[-1]["write_date"], rows[-1]["id"])

    def offline_refunds(self, cursor: str | None, limit: int = 500) -> tuple[list[ErpRefund], str | None]:
        rows = self._changed_after(
            "sale.sale",
            [("origin", "like", "sale.sale,%"), ("state", "in", list(RETURNED_STATES))],
            [
                "number",
                "reference",
                "origin",
                "description",
                "currency.code",
                "total_amount",
                "warehouse",
                "sale_date",
                "create_date",
                "write_date",
            ],
            cursor,
            limit,
        )
        if not rows:
            return [], cursor
        origins = {
            r["id"]: r
            for r in self._read(
                "sale.sale", sorted({_ref_id(r["origin"]) or 0 for r in rows} - {0}), ["reference", "description"]
            )
        }
        lines: dict[int, list[ReturnLine]] = {}
        for line in self._search_read(
            "sale.line",
            [("sale", "in", [r["id"] for r in rows]), ("type", "=", "line")],
            ["sale", "product.code", "movable", "quantity", "amount", "taxes"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        ):
            lines.setdefault(line["sale"], []).append(
                ReturnLine(
                    (line.get("product.") or {}).get("code") or "",
                    bool(line["movable"]),
                    _dec(line["quantity"]),
                    _dec(line["amount"]),
                    tuple(line["taxes"]),
                )
            )
        names = dict(self._warehouses(all_warehouses=True))
        found: list[ErpRefund] = []
        for row in rows:
            origin = origins.get(_ref_id(row["origin"]) or 0) or {}
            order_ref = origin.get("reference") or ""
            total = -_dec(row["total_amount"])
            if not order_ref or ":refund:" in order_ref or ":refund:" in (row["reference"] or "") or total <= 0:
                continue  # not a return of a sale the connector pushed, the connector's own, or nothing given back
            currency = row["currency."]["code"]
            description = (row["description"] or "").strip()
            found.append(
                erp_refund(
                    f"return:{row['number'] or row['id']}",
                    order_ref,
                    currency,
                    total,
                    lines.get(row["id"], []),
                    shipping_code=self.shipping_code,
                    warehouse=names.get(row["warehouse"], "") if row["warehouse"] else "",
                    taxes=self._taxes(),
                    step=self._currency(currency)[1],
                    created_at=_dated(row["sale_date"], row["create_date"]),
                    reason="" if description == (origin.get("description") or "").strip() else description,
                )
            )
        return found, _cursor(rows[-1]["write_date"], rows[-1]["id"])

    def close(self) -> None:
        self.rpc.close()

    # ---- sales --------------------------------------------------------------------------------

    def _find_sale(self, reference: str) -> dict | None:
        rows = self._search_read(
            "sale.sale", [("reference", "=", reference)], SALE_FIELDS, order=[("id", "ASC")], limit=1
        )
        return rows[0] if rows else None

    def _require_sale(self, order_ref: str) -> dict:
        sale = self._find_sale(order_ref)
        if sale is None:
            raise PermanentErpError(
                f"Tryton has no sale with reference {order_ref}; import the order first, then retry"
            )
        return sale

    def _sale_values(self, order: Order, party: int) -> tuple[dict, Booking]:
        currency_id, step = self._currency(order.currency)
        booking = self._order_booking(order)
        self._check_store_tax(order, booking)
        known, rounding = self._taxes(), self._tax_rounding()
        booking.lines += self._balanced(booking, order.totals.total.amount, known, rounding, step, order.number)
        rows = self._search_read(
            "party.party", [("id", "=", party)], ["name", "customer_payment_term"], context={"active_test": False}
        )
        if not rows:
            raise PermanentErpError(
                f"Tryton has no party {party} (the customer linked to order {order.number}): "
                "it was deleted or merged in Tryton; relink the customer, then retry"
            )
        self._add_email(rows[0], order.customer.email)
        invoice_address, shipment_address = self._addresses(rows[0], order)
        comment = order.note or ""
        header: dict[str, Any] = {
            "party": party,
            "invoice_address": invoice_address,
            "shipment_address": shipment_address,
            "currency": currency_id,
            "reference": order.external_ref,
            "description": _description(order),
            "comment": comment or None,
            "sale_date": order.placed_at.astimezone(UTC).date(),
        }
        term = rows[0]["customer_payment_term"] or self._payment_term()
        if term:
            header["payment_term"] = term
        if order.warehouse:  # the store's routing rules chose it (docs/order-flow.md, "Which warehouse ships")
            header["warehouse"] = self._routed_warehouse(order)
            header["comment"] = "\n".join(filter(None, (comment, _split_comment(order)))) or None
        elif self.warehouse_code:
            header["warehouse"] = self._warehouse_id(self.warehouse_code)
        return header, booking

    def _routed_warehouse(self, order: Order) -> int:
        found = self._find_warehouse(order.warehouse or "")
        if found is None:
            raise PermanentErpError(
                f"Tryton has no warehouse with code or name {order.warehouse} (the store's routing rules ship order "
                f"{order.number} from it, and the order keeps that decision): create the warehouse in Tryton, then "
                "retry; for later orders, fix the routing rules on /config"
            )
        return found

    def _order_booking(self, order: Order) -> Booking:
        """Goods at their net unit price, shipping and fee kinds on their service products, each with the
        Tryton taxes of its store tax lines."""
        products = self._products([line.sku for line in order.lines if line.sku and line.quantity], order=order)
        unit, booking = self._unit(), Booking()

        def resolve(tax_lines: tuple[TaxLine, ...]) -> tuple[int, ...]:
            return tuple(self._tax_id(t, order.number) for t in tax_lines)

        included = order.taxes_included
        for line in order.lines:
            if not line.quantity:
                continue
            description = (line.title + (f" - {line.variant_title}" if line.variant_title else ""))[:512]
            product = products.get(line.sku) if line.sku else None
            taxes = booking.charge(
                product["id"] if product else None,
                product["sale_uom"] if product else unit,
                Decimal(line.quantity),
                line.line_total.amount,
                description,
                line.tax_lines,
                resolve,
                included,
            )
            booking.line_taxes[line.external_id] = list(taxes)
        shipping = self._service(self.shipping_code)
        for ship in order.shipping_lines:
            if ship.net.amount:
                taxes = booking.charge(
                    shipping, unit, ONE, ship.net.amount, ship.title or "Shipping", ship.tax_lines, resolve, included
                )
                booking.line_taxes.setdefault("shipping", list(taxes))
        if not order.shipping_lines and order.totals.shipping_total.amount:
            booking.charge(shipping, unit, ONE, order.totals.shipping_total.amount, "Shipping", (), resolve, included)
        skus = {line.external_id: line.sku for line in order.lines}
        for fee in order.fee_lines:  # a fee's amount is before tax, whatever the prices
            code = self.fee_codes.get(fee.kind)
            taxes = booking.charge(
                self._service(code) if code else None,
                unit,
                ONE,
                fee.amount.amount,
                _fee_description(fee, skus),
                fee.tax_lines,
                resolve,
                False,
            )
            booking.fee_taxes.append(
                {"kind": fee.kind, "line": fee.source_line_id, "title": fee.title, "taxes": list(taxes)}
            )
        return booking

    def _check_store_tax(self, order: Order, booking: Booking) -> None:
        """The store's tax lines must add up to its tax total, or Tryton's tax cannot equal it."""
        if booking.tax_total != order.totals.tax_total.amount:
            raise PermanentErpError(
                f"order {order.number}: the store's tax lines add up to {booking.tax_total} {order.currency} but its "
                f"tax total is {order.totals.tax_total.amount}; Tryton cannot book taxes that do not add up"
            )

    def _balanced(
        self, booking: Booking, total: Decimal, known: dict[int, TrytonTax], rounding: str, step: Decimal, what: str
    ) -> list[SaleLine]:
        try:
            return balance(booking, total, known, rounding, step, self._unit())
        except ValueError as exc:
            raise PermanentErpError(
                f"{what}: the store's tax cannot be booked in Tryton ({exc}); check the "
                "tax mapping on /config#mappings, then retry"
            ) from None

    def _finish(self, sale_id: int, what: str, expect: tuple[Decimal, Decimal]) -> str:
        """Check Tryton's (tax, total) is the store's, quote and confirm; a note when Tryton confirmed the
        sale but could not process it. When Tryton refuses, a `failed` note tells the next attempt not to
        wait for an import in progress."""
        try:
            self._check_amounts(sale_id, what, expect)
            self.rpc.call("sale.sale", "quote", [sale_id], action=f"quote the sale of {what}")
            if self.confirm:
                self.rpc.call("sale.sale", "confirm", [sale_id], action=f"confirm the sale of {what}")
        except PermanentErpError as exc:
            try:
                self._note(
                    sale_id, f"The storefront connector could not finish this sale: {exc}", {"failed": str(exc)[:500]}
                )
            except RetryableErpError:
                pass
            raise
        if not self.confirm:
            return "left as a quotation in Tryton (confirm is off)"
        (row,) = self._read("sale.sale", [sale_id], ["state", "number"])
        if row["state"] in ("processing", "done"):
            return ""
        errors = self._search_read(
            "ir.error",
            [("origin", "=", f"sale.sale,{sale_id}")],
            ["message", "description"],
            order=[("id", "DESC")],
            limit=1,
        )
        detail = (errors[0]["message"] or errors[0]["description"] or "") if errors else "no error recorded"
        if row["state"] == "confirmed":
            return (
                f"Tryton confirmed sale {row['number']} but could not process it (invoice/shipment): "
                f"{' '.join(detail.split())[:300]}; fix that in Tryton, then click Process on the sale"
            )
        raise PermanentErpError(f"Tryton left the sale of {what} in state {row['state']}: {detail}")

    def _check_amounts(self, sale_id: int, what: str, expect: tuple[Decimal, Decimal]) -> None:
        """The draft's tax and total against the store's, before anything is confirmed: a tax Tryton computes
        otherwise than mirrored (a child tax, a tax rule on the party) shows here, not in the books."""
        (row,) = self._read("sale.sale", [sale_id], ["tax_amount", "total_amount"])
        got = (_dec(row["tax_amount"]), _dec(row["total_amount"]))
        if got != expect:
            raise PermanentErpError(
                f"Tryton computes tax {got[0]} and total {got[1]} for the sale of {what} but the store charged tax "
                f"{expect[0]} and total {expect[1]}: check the Tryton taxes the store's tax titles map to (plain "
                "percentage taxes, no tax rules on the party), then retry"
            )

    def _is_cancelled(self, sale: dict) -> bool:
        if sale["state"] == "cancelled":
            return True
        if sale["state"] != "done":
            return False
        moves = self.rpc.call("sale.sale", "read", [sale["id"]], ["moves"])[0]["moves"]
        states = [m["state"] for m in self._read("stock.move", moves, ["state"])]
        states += [i["state"] for i in self._read("account.invoice", sale["invoices"], ["state"])]
        return bool(states) and all(state == "cancelled" for state in states)

    def _cancel_processing(self, sale: dict, label: str) -> None:
        sale_id = sale["id"]
        shipments = self._read("stock.shipment.out", sale["shipments"], ["state", "number"])
        invoices = self._read("account.invoice", sale["invoices"], ["state", "number"])
        shipped = [s["number"] or str(s["id"]) for s in shipments if s["state"] == "done"]
        if shipped:
            raise PermanentErpError(
                f"{label} is already shipped (shipment {', '.join(shipped)} done): Tryton cannot "
                "cancel it; make a return in Tryton or refund the order in the store"
            )
        booked = [i["number"] or str(i["id"]) for i in invoices if i["state"] in ("posted", "paid")]
        if booked:
            raise PermanentErpError(
                f"{label} has a posted invoice ({', '.join(booked)}): cancel or credit it in "
                "Tryton, then retry the cancellation"
            )
        open_shipments = [s["id"] for s in shipments if s["state"] != "cancelled"]
        if open_shipments:
            self.rpc.call("stock.shipment.out", "cancel", open_shipments, action=f"cancel the shipments of {label}")
        open_invoices = [i["id"] for i in invoices if i["state"] != "cancelled"]
        if open_invoices:
            self.rpc.call("account.invoice", "cancel", open_invoices, action=f"cancel the invoice of {label}")
        self.rpc.call("sale.sale", "process", [sale_id], action=f"process {label}")
        lines = self._search_read("sale.line", [("sale", "=", sale_id)], ["moves", "moves_ignored", "moves_recreated"])
        handled = {m for line in lines for m in (*line["moves_ignored"], *line["moves_recreated"])}
        move_ids = [m for line in lines for m in line["moves"] if m not in handled]
        cancelled = [m["id"] for m in self._read("stock.move", move_ids, ["state"]) if m["state"] == "cancelled"]
        if cancelled:
            self.rpc.wizard(
                "sale.handle.shipment.exception",
                "handle",
                {"ask": {"recreate_moves": [], "ignore_moves": cancelled, "domain_moves": cancelled}},
                "sale.sale",
                [sale_id],
                action=f"ignore the cancelled moves of {label}",
            )
        (row,) = self._read("sale.sale", [sale_id], ["invoices", "invoices_ignored", "invoices_recreated"])
        skip = set(row["invoices_ignored"]) | set(row["invoices_recreated"])
        dropped = [
            i["id"]
            for i in self._read("account.invoice", row["invoices"], ["state"])
            if i["state"] == "cancelled" and i["id"] not in skip
        ]
        if dropped:
            self.rpc.wizard(
                "sale.handle.invoice.exception",
                "handle",
                {"ask": {"recreate_invoices": [], "ignore_invoices": dropped, "domain_invoices": dropped}},
                "sale.sale",
                [sale_id],
                action=f"ignore the cancelled invoices of {label}",
            )

    # ---- notes: versions and payments ---------------------------------------------------------

    def _note(self, sale_id: int, text: str, data: dict) -> int:
        message = f"{text}\n{TAG} {json.dumps(data, sort_keys=True)}"
        (note_id,) = self.rpc.call(
            "ir.note",
            "create",
            [{"resource": f"sale.sale,{sale_id}", "message": message}],
            action="write a note on the sale",
        )
        return note_id

    def _notes(self, sale_id: int) -> list[tuple[int, dict]]:
        found = []
        for row in self._search_read(
            "ir.note", [("resource", "=", f"sale.sale,{sale_id}")], ["message"], order=[("id", "ASC")]
        ):
            for line in (row["message"] or "").splitlines():
                if line.startswith(TAG):
                    try:
                        data = json.loads(line[len(TAG) :])
                    except ValueError:
                        continue
                    if isinstance(data, dict):
                        found.append((row["id"], data))
        return found

    def _order_note(
        self, sale_id: int, order: Order, verb: str, booking: Booking, attribution: Attribution | None = None
    ) -> None:
        paid = order.presentment_total
        shown = f", buyer paid {paid}" if paid is not None and paid.currency != order.currency else ""
        total = order.totals.total
        credit = (
            {
                "channel": attribution.channel,
                "owner": attribution.owner,
                "owner_share": str(attribution.owner_share),
                "owner_credit": str(attribution.owner_credit(total).amount),
            }
            if attribution is not None
            else None
        )
        sentence = attribution.describe(total) if attribution is not None else ""
        said = f" {sentence[:1].upper()}{sentence[1:]}." if sentence else ""
        self._note(
            sale_id,
            f"{verb} from {order.source} store {order.store}, order {order.number} (payment "
            f"{order.payment.status}, store total {total}{shown}).{said}",
            {
                **({"attribution": credit} if credit else {}),
                "version": as_utc(order.updated_at).isoformat(),
                "payment_status": order.payment.status,
                "note": order.note,
                "line_taxes": booking.line_taxes,
                "fee_taxes": booking.fee_taxes,
                "taxes_included": order.taxes_included,
                "presentment": {"currency": paid.currency, "total": str(paid.amount)} if paid else None,
            },
        )

    def _meta(self, sale_id: int) -> dict:
        version, status, note, paid, failed = None, None, None, Decimal(0), False
        attribution = None  # the latest version note's that has one
        for _, data in self._notes(sale_id):
            failed = failed or "failed" in data
            if isinstance(data.get("attribution"), dict):
                attribution = data["attribution"]
            if "version" in data:
                stamp = as_utc(datetime.fromisoformat(data["version"]))
                if version is None or stamp >= version:
                    version, status, note = stamp, data.get("payment_status"), data.get("note")
            if "payment" in data:
                paid += Decimal(data.get("amount") or 0)
        return {
            "version": version,
            "payment_status": status,
            "note": note,
            "paid": paid,
            "failed": failed,
            "attribution": attribution,
        }

    # ---- master data --------------------------------------------------------------------------

    def _party_id(self, customer_id: str) -> int:
        try:
            return int(customer_id)
        except (TypeError, ValueError):
            raise PermanentErpError(
                f"customer id {customer_id!r} is not a Tryton party id; relink the customer"
            ) from None

    def _products(self, skus: list[str], order: Order | None = None, strict: bool = True) -> dict[str, dict]:
        wanted = sorted(set(skus))
        if not wanted:
            return {}
        rows = self._search_read("product.product", [("code", "in", wanted)], ["code", "sale_uom", "salable"])
        found = {r["code"]: r for r in rows}
        missing = [sku for sku in wanted if sku not in found]
        if strict and missing:
            where = f" (order {order.number})" if order else ""
            raise PermanentErpError(
                f"Tryton has no product with code {', '.join(missing)}{where}: create product code "
                f"{', '.join(missing)} in Tryton or map the SKU on /config#skus, then retry"
            )
        unsalable = [sku for sku in wanted if sku in found and not found[sku]["salable"]]
        if strict and unsalable:
            raise PermanentErpError(
                f"Tryton product {', '.join(unsalable)} is not salable: tick Salable on the "
                "product in Tryton, then retry"
            )
        return found

    def _service(self, code: str) -> int:
        key = f"service:{code}"
        if key not in self._cache:
            rows = self._search_read("product.product", [("code", "=", code)], ["id"], limit=1)
            if not rows:
                raise PermanentErpError(
                    f"Tryton has no product with code {code}: create a salable service product "
                    f"with code {code} in Tryton (it carries shipping and tax lines), then retry"
                )
            self._cache[key] = rows[0]["id"]
        return self._cache[key]

    def _unit(self) -> int:
        if "unit" not in self._cache:
            rows = self._read("product.product", [self._service(self.shipping_code)], ["sale_uom"])
            self._cache["unit"] = rows[0]["sale_uom"]
        return self._cache["unit"]

    def _currency(self, code: str) -> tuple[int, Decimal]:
        """The currency's id and its rounding step (0.01, 1 for JPY, 0.001 for KWD): Tryton rounds amounts
        to the step, so the connector computes with it too."""
        key = f"currency:{code}"
        if key not in self._cache:
            rows = self._search_read("currency.currency", [("code", "=", code)], ["rounding"], limit=1)
            if not rows:
                raise PermanentErpError(
                    f"Tryton has no currency {code}: add it (Currency > Currencies) with a rate, then retry"
                )
            self._cache[key] = (rows[0]["id"], _dec(rows[0]["rounding"]) or Decimal("0.01"))
        return self._cache[key]

    def _taxes(self, reload: bool = False) -> dict[int, TrytonTax]:
        """The company's top-level percentage taxes (what a store tax can be booked as)."""
        if reload or "taxes" not in self._cache:
            rows = self._search_read(
                "account.tax",
                [("parent", "=", None), ("type", "=", "percentage")],
                ["name", "description", "rate", "sequence"],
                order=[("id", "ASC")],
            )
            self._cache["taxes"] = {
                r["id"]: TrytonTax(r["id"], r["name"], _dec(r["rate"]), r["sequence"]) for r in rows
            }
            self._cache["tax_names"] = {
                r["id"]: {(r["name"] or "").strip().casefold(), (r["description"] or "").strip().casefold()} - {""}
                for r in rows
            }
        return self._cache["taxes"]

    def _tax_id(self, line: TaxLine, what: str) -> int:
        """The Tryton tax of a store tax line. With a mapped code (/config tax table): the tax whose name
        (or description) is that code. Without: the tax whose name or description is the store's title
        and whose rate is the store's. The lowest id wins a tie; a miss reloads the taxes once (a person
        may just have created it)."""
        for reload in (False, True):
            taxes, names = self._taxes(reload), self._cache["tax_names"]
            wanted = (line.code or line.title).strip().casefold()
            for tax_id, tax in taxes.items():
                if wanted in names[tax_id] and (line.code or abs(tax.rate - line.rate) < RATE_TOLERANCE):
                    return tax_id
        if line.code:
            raise PermanentErpError(
                f"{what}: Tryton has no percentage tax named {line.code!r} (the store's tax {line.title!r} is mapped "
                "to it on /config#mappings): create it in Tryton or fix the mapping, then retry"
            )
        raise PermanentErpError(
            f"{what}: Tryton has no percentage tax named {line.title!r} at {(line.rate * 100).normalize():f}% (the "
            "store's tax "
            f"{line.title!r}, rate {line.rate}): map the tax title to a Tryton tax on /config#mappings, or create "
            "that tax in Tryton, then retry"
        )

    def _tax_rounding(self) -> str:
        """Tryton's tax rounding (account configuration): "document" or "line"."""
        if "tax_rounding" not in self._cache:
            rows = self._read("account.configuration", [1], ["tax_rounding"])
            self._cache["tax_rounding"] = (rows[0]["tax_rounding"] if rows else None) or "document"
        return self._cache["tax_rounding"]

    def _add_email(self, party: dict, email: str | None) -> None:
        """A party found by phone learns the buyer's email, so the next order finds it by email."""
        email = normalise_email(email)
        if not email:
            return
        known = self._search_read(
            "party.contact_mechanism", [("party", "=", party["id"]), ("type", "=", "email")], ["value"]
        )
        if all((row["value"] or "").strip().lower() != email for row in known):
            self.rpc.call(
                "party.contact_mechanism",
                "create",
                [{"party": party["id"], "type": "email", "value": email}],
                action=f"add the email of party {party['name']}",
            )

    def _payment_term(self) -> int | None:
        """erp.payment_term by name, else Tryton's "Upon Receipt", else the first one (a party's own wins)."""
        if "term" not in self._cache:
            name = self.payment_term_name or "Upon Receipt"
            rows = self._search_read("account.invoice.payment_term", [("name", "=", name)], ["id"], limit=1)
            if not rows and self.payment_term_name:
                raise PermanentErpError(f"Tryton has no payment term {name!r}: create it or fix erp.payment_term")
            rows = rows or self._search_read("account.invoice.payment_term", [], ["id"], limit=1)
            self._cache["term"] = rows[0]["id"] if rows else None
        return self._cache["term"]

    def _warehouses(self, all_warehouses: bool = False, reload: bool = False) -> list[tuple[int, str]]:
        if reload or "warehouses" not in self._cache:
            rows = self._search_read(
                "stock.location", [("type", "=", "warehouse")], ["code", "name"], order=[("id", "ASC")]
            )
            self._cache["warehouses"] = [(r["id"], r["code"] or r["name"]) for r in rows]
        found = self._cache["warehouses"]
        if self.warehouse_names and not all_warehouses:
            found = [(wid, code) for wid, code in found if code in self.warehouse_names]
        return [(wid, self.warehouse_names.get(code, code)) for wid, code in found]

    def _warehouse_id(self, code: str) -> int:
        found = self._find_warehouse(code)
        if found is None:
            raise PermanentErpError(f"Tryton has no warehouse with code {code}: fix erp.warehouse")
        return found

    def _find_warehouse(self, code: str) -> int | None:
        """The warehouse with this code or reported name; a miss reloads them once (a person may just have
        created it: the adapter lives as long as its configuration)."""
        for reload in (False, True):
            for wid, name in self._warehouses(all_warehouses=True, reload=reload):
                if name == code or self.warehouse_names.get(code) == name:
                    return wid
        return None

    def _country(self, code: str) -> int | None:
        key = f"country:{code}"
        if key not in self._cache:
            rows = self._search_read("country.country", [("code", "=", code.upper())], ["id"], limit=1)
            self._cache[key] = rows[0]["id"] if rows else None
        return self._cache[key]

    def _address_values(self, party_name: str, address: Address) -> dict:
        country = self._country(address.country_code) if address.country_code else None
        city, subdivision = address.city, None
        if address.region and country:
            region = address.region.strip()
            key = f"subdivision:{country}:{region.upper()}"
            if key not in self._cache:
                rows = self._search_read(
                    "country.subdivision",
                    [
                        ("country", "=", country),
                        [
                            "OR",
                            ("code", "=", f"{address.country_code.upper()}-{region.upper()}"),
                            ("name", "ilike", region),
                        ],
                    ],
                    ["id"],
                    limit=1,
                )
                self._cache[key] = rows[0]["id"] if rows else None
            subdivision = self._cache[key]
        if address.region and not subdivision:
            city = f"{city} {address.region}".strip()
        name = " ".join(p for p in (address.first_name, address.last_name) if p)
        values = {
            "street_unstructured": "\n".join(p for p in (address.line1, address.line2) if p) or None,
            "postal_code": address.postal_code or None,
            "city": city or None,
            "country": country,
            "subdivision": subdivision,
            "party_name": None,
            "attn": None,
        }
        if address.company:
            values["party_name"], values["attn"] = address.company, (name or None)
        elif name and name.lower() != party_name.lower():
            values["party_name"] = name
        return values

    def _addresses(self, row: dict, order: Order) -> tuple[int, int]:
        """The invoice and shipment addresses for the order: the party's equal ones, else new ones."""
        party = row["id"]
        existing = self._search_read(
            "party.address",
            [("party", "=", party)],
            ["street_unstructured", "postal_code", "city", "country", "party_name"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        )

        def key(v: dict) -> tuple:
            return tuple(
                " ".join(str(v.get(f) or "").lower().split())
                for f in ("street_unstructured", "postal_code", "city", "country", "party_name")
            )

        def address_id(address: Address | None) -> int | None:
            if address is None:
                return None
            values = self._address_values(row["name"], address)
            for other in existing:
                if key(other) == key(values):
                    return other["id"]
            (new_id,) = self.rpc.call(
                "party.address", "create", [dict(values, party=party)], action=f"add an address to party {row['name']}"
            )
            existing.append(dict(values, id=new_id))
            return new_id

        billing = address_id(order.billing_address)
        shipping = address_id(order.shipping_address) or billing
        billing = billing or shipping
        if billing is None:
            if not existing:
                (new_id,) = self.rpc.call(
                    "party.address", "create", [{"party": party}], action=f"add an address to party {row['name']}"
                )
                existing.append({"id": new_id})
            billing = shipping = existing[0]["id"]
        return billing, shipping or billing

    # ---- rpc helpers --------------------------------------------------------------------------

    def _search_read(
        self,
        model: str,
        domain: list,
        fields: list[str],
        order: list | None = None,
        limit: int | None = None,
        context: dict | None = None,
    ) -> list[dict]:
        return self.rpc.call(
            model, "search_read", domain, 0, limit, order, fields, context=context, action=f"read {model}"
        )

    def _read(self, model: str, ids: list[int], fields: list[str], context: dict | None = None) -> list[dict]:
        if not ids:
            return []
        return self.rpc.call(model, "read", list(ids), fields, context=context, action=f"read {model}")


__all__ = ["TrytonErp", "TrytonUserError", "RetryableErpError", "parse_tracking"]
