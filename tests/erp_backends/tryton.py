"""The Tryton back end against a real trytond 8.2 (scripts/tryton.py) over JSON-RPC.

Once per test session: `scripts/tryton.py setup .tryton` (a venv and an initialised database, about a
minute the first time, a second when .tryton/ exists) and a free port on 127.0.0.1. Each harness
instance resets the database to the setup snapshot and starts trytond on it (about a second), so every
test starts from the same clean ERP. The server is stopped when the session ends.

The adapter logs in as `connector`, the non-admin user setup makes with only the groups the connector
needs; the harness's own client (`rpc`) is the admin, playing the merchant's staff.

The ERP side (products, stock, shipments, receipts, returns) is done the way a Tryton user would: product
templates, a stock inventory on the warehouse's storage location, the sale's own customer shipment picked,
packed and done with the tracking number in its `reference`, its invoice posted and paid with the Pay
wizard, and returns made with the sale's Return wizard.

Set TRYTON_DIR to use another folder than .tryton/. Setup is skipped (the tests skip with the reason)
only when Tryton cannot be installed from PyPI; any other setup failure fails the tests.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from adapters.erp import build_erp
from adapters.erp.tryton import TrytonErp
from adapters.erp.tryton_rpc import TrytonRpc
from mappings.canonical import ErpRefund, Receipt, Shipment, ShipmentLine, StockLevel, Undelivered
from mappings.utc import as_utc

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "tryton.py"
TRYTON_DIR = Path(os.environ.get("TRYTON_DIR") or ROOT / ".tryton")
INSTALL_FAILED = 75  # scripts/tryton.py's exit status when PyPI cannot deliver Tryton
DATABASE = "erp"
CONNECTOR_LOGIN = "connector"  # scripts/tryton.py's user with only the connector's groups
PRICE = Decimal("0.0001")  # sale.line unit_price digits


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900)


class _Server:
    """One trytond for the whole test session (module-level singleton)."""

    instance: _Server | None = None

    def __init__(self) -> None:
        self.skip_reason: str | None = None
        self.error: str | None = None
        self.port = _free_port()
        self.setup_output = ""
        result = _script("setup", str(TRYTON_DIR))
        self.setup_output = result.stdout + result.stderr
        if result.returncode == INSTALL_FAILED:
            self.skip_reason = (
                f"Tryton could not be installed from PyPI (outside our control):\n{self.setup_output[-2000:]}"
            )
        elif result.returncode != 0:
            self.error = f"scripts/tryton.py setup {TRYTON_DIR} failed:\n{self.setup_output[-4000:]}"
        else:
            atexit.register(self.stop)
        ready = not (self.skip_reason or self.error)
        self.password = (TRYTON_DIR / "admin.pass").read_text().strip() if ready else ""
        # the connector logs in as the non-admin user scripts/tryton.py made for it
        self.connector_password = (TRYTON_DIR / "connector.pass").read_text().strip() if ready else ""

    @classmethod
    def get(cls) -> _Server:
        if cls.instance is None:
            cls.instance = cls()
        server = cls.instance
        if server.skip_reason:
            pytest.skip(server.skip_reason)
        if server.error:
            raise RuntimeError(server.error)
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fresh(self) -> None:
        self._run("reset", str(TRYTON_DIR))
        self.start()

    def start(self) -> None:
        self._run("start", str(TRYTON_DIR), "--port", str(self.port))

    def stop(self) -> None:
        _script("stop", str(TRYTON_DIR))

    def _run(self, *args: str) -> None:
        result = _script(*args)
        if result.returncode != 0:
            raise RuntimeError(f"scripts/tryton.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


class TrytonHarness:
    kind = "tryton"
    validates_skus = True
    knows_warehouses = True
    default_warehouse = "WH"  # the sale's: setup makes only WH, so Tryton gives it to every sale

    def __init__(self, tmp_path: Path | None = None):
        self.server = _Server.get()
        self.server.fresh()
        self.rpc = TrytonRpc(self.server.url, DATABASE, "admin", self.server.password)
        self._adapter: TrytonErp | None = None

    def adapter(self) -> TrytonErp:
        if self._adapter is None:
            cfg = self.config()
            settings = {k: v for k, v in cfg.items() if k not in ("kind", "password")}
            self._adapter = build_erp("tryton", settings, {"password": cfg["password"]})  # type: ignore[assignment]
        return self._adapter  # type: ignore[return-value]

    def config(self) -> dict:
        return {
            "kind": "tryton",
            "url": self.server.url,
            "database": DATABASE,
            "username": CONNECTOR_LOGIN,
            "password": self.server.connector_password,
            "connect_timeout_seconds": 2,
            "read_timeout_seconds": 30,
        }

    # ---- the ERP side ---------------------------------------------------------------------------

    def add_products(self, skus: list[str]) -> None:
        wanted = sorted({sku for sku in skus if sku})
        known = {
            r["code"]
            for r in self.rpc.call("product.product", "search_read", [("code", "in", wanted)], 0, None, None, ["code"])
        }
        missing = [sku for sku in wanted if sku not in known]
        if not missing:
            return
        (category,) = self.rpc.call("product.category", "search", [("name", "=", "Storefront goods")], 0, 1, None)
        unit = self._unit()
        self.rpc.call(
            "product.template",
            "create",
            [
                {
                    "name": sku,
                    "type": "goods",
                    "salable": True,
                    "default_uom": unit,
                    "sale_uom": unit,
                    "list_price": Decimal("10"),
                    "account_category": category,
                    "products": [["create", [{"suffix_code": sku}]]],
                }
                for sku in missing
            ],
        )

    def booked(self, order_ref: str) -> dict:
        """The sale's money as Tryton holds it: its total and tax, and each fee kind's lines by their product
        (Tryton has no fee total; the buyer's currency is named in the description only when it differs)."""
        return self._money(order_ref, Decimal(1))

    def credited(self, refund_ref: str) -> dict:
        """The credit note (the return sale whose reference is the refund's) as positive amounts: its total and
        tax, and the tips, duties and additional fees given back by their lines' products."""
        return self._money(refund_ref, Decimal(-1))

    def _money(self, reference: str, sign: Decimal) -> dict:
        """A sale's total, tax and fee kinds; `sign` -1 reads a return sale (negative lines) as positive."""
        (sale,) = self.rpc.call(
            "sale.sale",
            "search_read",
            [("reference", "=", reference)],
            0,
            1,
            None,
            ["total_amount", "tax_amount", "lines"],
        )
        lines = self.rpc.call("sale.line", "read", sale["lines"], ["product.code", "quantity", "unit_price"])
        kinds = {"TIP": "tip_total", "DUTY": "duty_total", "ADDITIONAL_FEE": "additional_fee_total"}
        money = {
            "total": sign * Decimal(sale["total_amount"]),
            "tax_total": sign * Decimal(sale["tax_amount"]),
            **dict.fromkeys(kinds.values(), Decimal(0)),
        }
        for line in lines:
            kind = kinds.get((line.get("product.") or {}).get("code"))
            if kind:
                money[kind] += sign * Decimal(str(line["quantity"])) * Decimal(line["unit_price"])
        return money

    def set_owner(self, customer_id: str, owner: str) -> None:
        """As a Tryton user would: the party gets the category "Owner / <owner>" (made when missing)."""
        parent = self.rpc.call("party.category", "search", [("name", "=", "Owner"), ("parent", "=", None)], 0, 1, None)
        if not parent:
            parent = self.rpc.call("party.category", "create", [{"name": "Owner"}])
        child = self.rpc.call(
            "party.category", "search", [("name", "=", owner), ("parent", "=", parent[0])], 0, 1, None
        )
        if not child:
            child = self.rpc.call("party.category", "create", [{"name": owner, "parent": parent[0]}])
        self.rpc.call("party.party", "write", [int(customer_id)], {"categories": [["add", child]]})

    def add_warehouse(self, code: str) -> None:
        """A second warehouse the way a Tryton user makes one: a copy of WH, which copies its input, output
        and storage locations. Add it after pushing orders: with two warehouses Tryton no longer picks a
        default one for a sale (the connector's erp.warehouse setting does then)."""
        if self.rpc.call("stock.location", "search", [("code", "=", code)], 0, 1, None):
            return
        (warehouse,) = self.rpc.call("stock.location", "search", [("code", "=", "WH")], 0, 1, None)
        self.rpc.call("stock.location", "copy", [warehouse], {"name": f"Warehouse {code}", "code": code})

    def returned_to(self, refund_ref: str) -> dict[str, str | None]:
        """{SKU: code of the warehouse whose return shipment takes it back}: the return sale's customer return
        shipments, which Tryton makes for its restocked goods lines in the sale's warehouse."""
        (sale,) = self.rpc.call(
            "sale.sale", "search_read", [("reference", "=", refund_ref)], 0, 1, None, ["shipment_returns"]
        )
        returned: dict[str, str | None] = {}
        for shipment in self.rpc.call(
            "stock.shipment.out.return", "read", sale["shipment_returns"], ["warehouse.code", "incoming_moves"]
        ):
            for move in self.rpc.call("stock.move", "read", shipment["incoming_moves"], ["product.code"]):
                returned[move["product."]["code"]] = shipment["warehouse."]["code"]
        return returned

    def staff_note(self, refund_ref: str) -> str:
        """The return sale's comment."""
        (sale,) = self.rpc.call("sale.sale", "search_read", [("reference", "=", refund_ref)], 0, 1, None, ["comment"])
        return sale["comment"] or ""

    def seed_stock(self, levels: list[StockLevel]) -> None:
        self.add_products([level.sku for level in levels])
        codes = [level.sku for level in levels]
        products = {
            r["code"]: r["id"]
            for r in self.rpc.call("product.product", "search_read", [("code", "in", codes)], 0, None, None, ["code"])
        }
        by_location: dict[int, list[dict]] = {}
        for level in levels:
            location = self._storage(level.warehouse)
            by_location.setdefault(location, []).append(
                {"product": products[level.sku], "quantity": float(level.on_hand)}
            )
        for location, lines in by_location.items():
            (inventory,) = self.rpc.call(
                "stock.inventory", "create", [{"location": location, "lines": [["create", lines]]}]
            )
            self.rpc.call("stock.inventory", "confirm", [inventory])

    def seed_shipment(self, shipment: Shipment) -> None:
        """Ship these lines of the order's sale: the sale's open customer shipment, picked for exactly
        these quantities (the rest goes to a new shipment when Tryton processes the sale), then done."""
        (sale,) = self.rpc.call(
            "sale.sale", "search_read", [("reference", "=", shipment.order_ref)], 0, 1, None, ["shipments"]
        )
        rows = self.rpc.call("stock.shipment.out", "read", sale["shipments"], ["state"])
        open_ = [r for r in rows if r["state"] in ("draft", "waiting", "assigned")]
        assert open_, f"the sale of {shipment.order_ref} has no open shipment to send"
        ship_id, state = open_[0]["id"], open_[0]["state"]
        if state in ("draft", "assigned"):
            self.rpc.call("stock.shipment.out", "wait", [ship_id])
        (ship,) = self.rpc.call("stock.shipment.out", "read", [ship_id], ["inventory_moves", "outgoing_moves"])
        move_ids = ship["inventory_moves"] or ship["outgoing_moves"]
        wanted = Counter({line.sku: line.quantity for line in shipment.lines})
        writes: list = []
        for move in self.rpc.call("stock.move", "read", move_ids, ["product.code", "quantity"]):
            code = (move.get("product.") or {}).get("code")
            take = min(wanted[code], int(move["quantity"]))
            wanted[code] -= take
            writes += [[move["id"]], {"quantity": float(take)}]
        self.rpc.call("stock.move", "write", *writes)
        reference = f"{shipment.carrier}:{shipment.tracking_number}" if shipment.carrier else shipment.tracking_number
        shipped_on: date = shipment.shipped_at.date()
        self.rpc.call("stock.shipment.out", "write", [ship_id], {"reference": reference, "effective_date": shipped_on})
        for step in ("assign_force", "pick", "pack", "do"):
            self.rpc.call("stock.shipment.out", step, [ship_id])
        self.rpc.call("sale.sale", "process", [sale["id"]])

    def seed_undelivered(self, parcel: Undelivered) -> str:
        """The warehouse's way: the sale's whole customer shipment sent (done), then cancelled when the
        parcel comes back, which puts the goods back in stock."""
        (sale,) = self.rpc.call(
            "sale.sale", "search_read", [("reference", "=", parcel.order_ref)], 0, 1, None, ["shipments", "lines"]
        )
        lines = self.rpc.call("sale.line", "read", sale["lines"], ["product.code", "quantity"])
        sent = tuple(ShipmentLine(ln["product."]["code"], int(ln["quantity"])) for ln in lines if ln.get("product."))
        self.seed_shipment(Shipment(parcel.ref, parcel.order_ref, sent, parcel.returned_at))
        (sale,) = self.rpc.call("sale.sale", "read", [sale["id"]], ["shipments"])
        rows = self.rpc.call("stock.shipment.out", "read", sale["shipments"], ["state", "number"])
        (done,) = [r for r in rows if r["state"] == "done"]
        self.rpc.call("stock.shipment.out", "cancel", [done["id"]])
        return f"shipment:{done['number']}"

    def seed_receipt(self, receipt: Receipt) -> str:
        """Finance's way: the sale's invoice posted, then paid in full through the Pay wizard (cash payment
        method) on the receipt's date, its reference as the payment's description."""
        (sale,) = self.rpc.call(
            "sale.sale", "search_read", [("reference", "=", receipt.order_ref)], 0, 1, None, ["invoices"]
        )
        invoice_id = sale["invoices"][0]
        # The connector books the store's taxes, not the products' defaults: Tryton warns on post, and the
        # accountant answers "yes" (the warning's key is Tryton's own: res.user.warning.format).
        key = hashlib.md5(f"account.invoice,{invoice_id}".encode()).hexdigest() + ".invoice_taxes"
        (admin,) = self.rpc.call("res.user", "search", [("login", "=", "admin")], 0, 1, None)
        self.rpc.call("res.user.warning", "create", [{"user": admin, "name": key, "always": False}])
        self.rpc.call("account.invoice", "post", [invoice_id])
        (invoice,) = self.rpc.call(
            "account.invoice",
            "read",
            [invoice_id],
            ["number", "amount_to_pay", "currency", "company", "party", "account"],
        )
        start = {
            "payee": invoice["party"],
            "amount": invoice["amount_to_pay"],
            "currency": invoice["currency"],
            "description": receipt.reference or receipt.ref,
            "company": invoice["company"],
            "invoice_account": invoice["account"],
            "payment_method": self._payment_method(invoice["company"]),
            "date": receipt.received_at.date(),
        }
        self.rpc.wizard("account.invoice.pay", "pay", {"start": start}, "account.invoice", [invoice_id])
        return f"invoice:{invoice['number']}"

    def seed_offline_refund(self, refund: ErpRefund) -> ErpRefund:
        """The returns desk's way: the Return wizard on the order's sale, its copy trimmed to the refund's units
        (each priced so that with its taxes it comes to the refund's amount) and shipping, described with the
        reason and taken back into the lines' warehouse (made when missing), then quoted and confirmed. Returns
        the credit note the way Tryton tells it: ref "return:<number>", made when the return sale was."""
        (sale,) = self.rpc.call(
            "sale.sale", "search_read", [("reference", "=", refund.order_ref)], 0, 1, None, ["currency.rounding"]
        )
        opened = self.rpc.wizard("sale.return_sale", "return_", {}, "sale.sale", [sale["id"]])
        (return_id,) = opened["actions"][0][1]["res_id"]  # the action opening the return sale
        back = {line.sku: (line.quantity, line.amount.amount) for line in refund.lines}
        if refund.shipping.amount:
            back["SHIPPING"] = (1, refund.shipping.amount)
        step = Decimal(str(sale["currency."]["rounding"]))
        keep, drop = [], []
        for line in self.rpc.call(
            "sale.line", "search_read", [("sale", "=", return_id)], 0, None, None, ["product.code", "taxes.rate"]
        ):
            code = (line.get("product.") or {}).get("code")
            if code not in back:
                drop.append(line["id"])
                continue
            units, gross = back[code]
            rate = sum((Decimal(str(t["rate"])) for t in line["taxes."]), Decimal(0))
            net = (gross / (1 + rate) / step).quantize(Decimal(1), ROUND_HALF_EVEN) * step
            keep += [[line["id"]], {"quantity": -float(units), "unit_price": (net / units).quantize(PRICE)}]
        header: dict = {"description": refund.reason, "lines": [["delete", drop]]}
        (warehouse,) = {line.warehouse for line in refund.lines if line.restock} or {None}
        if warehouse:
            self.add_warehouse(warehouse)
            (header["warehouse"],) = self.rpc.call("stock.location", "search", [("code", "=", warehouse)], 0, 1, None)
        self.rpc.call("sale.sale", "write", [return_id], header)
        self.rpc.call("sale.line", "write", *keep)
        for button in ("quote", "confirm"):
            self.rpc.call("sale.sale", button, [return_id])
        (done,) = self.rpc.call("sale.sale", "read", [return_id], ["number", "state", "create_date"])
        assert done["state"] == "processing", done
        return dataclasses.replace(refund, ref=f"return:{done['number']}", created_at=as_utc(done["create_date"]))

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        self.server.stop()
        try:
            yield
        finally:
            self.server.start()

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
        self.rpc.close()

    # ---- helpers ----------------------------------------------------------------------------------

    def _unit(self) -> int:
        (unit,) = self.rpc.call("product.uom", "search", [("symbol", "=", "u")], 0, 1, None)
        return unit

    def _payment_method(self, company: int) -> int:
        """A cash payment method for the Pay wizard (setup makes none): the cash journal and account 1.1.1."""
        found = self.rpc.call("account.invoice.payment.method", "search", [], 0, 1, None)
        if found:
            return found[0]
        (journal,) = self.rpc.call("account.journal", "search", [("type", "=", "cash")], 0, 1, None)
        (cash,) = self.rpc.call("account.account", "search", [("code", "=", "1.1.1")], 0, 1, None)
        (method,) = self.rpc.call(
            "account.invoice.payment.method",
            "create",
            [{"name": "Cash", "company": company, "journal": journal, "credit_account": cash, "debit_account": cash}],
        )
        return method

    def _storage(self, warehouse: str) -> int:
        domain: list = [("type", "=", "warehouse")] + ([("code", "=", warehouse)] if warehouse else [])
        rows = self.rpc.call("stock.location", "search_read", domain, 0, 1, [("id", "ASC")], ["storage_location"])
        assert rows, f"Tryton has no warehouse {warehouse!r}"
        return rows[0]["storage_location"]
