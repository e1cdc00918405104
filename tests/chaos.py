"""Chaos: the product as it runs in production, under faults, and the proof afterwards.

Real processes (gunicorn, RQ workers, the RQ cron scheduler) on PostgreSQL and a Redis of its own;
two fake Shopify stores and a fake WooCommerce store; a fake REST ERP. While the webhooks flow (some
sent twice, some out of order, some never sent), the ERP fails a share of its calls (half of them
after carrying them out) and goes down for a while, Redis is restarted empty, and workers are killed
with SIGKILL (a supervisor starts new ones, as a process manager would). Then the faults stop, each
store is reconciled once, and the harness waits until the ERP holds every order exactly once with
the right totals and payments: `converge_seconds` is how long that took. Meanwhile the back office acts
in the ERP (tests/chaos_feeds.py): finance records cash-on-delivery money and the returns desk credits orders,
and the receipts and refunds syncs, killed partway now and then, must carry each to its store exactly once;
one store's approval rule holds orders for an approver, another's routing rule picks their warehouse.

`run(Plan(...))` is used by tests/test_chaos.py (a reduced run in CI) and bench/chaos.py (the full
run, with figures).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import requests
from redis.exceptions import RedisError
from sqlalchemy import create_engine, text

from connector.base.runtime import Runtime
from connector.base.settings import Settings
from connector.orders import approvals
from platforms.signatures import sign
from tests.chaos_feeds import BackOffice, FeedTally, wait_settled
from tests.fakes.rest_erp import FakeRestErp
from tests.fakes.shopify import FakeShopify
from tests.storefronts import WOO_KEY, WOO_KEY_SECRET, fake_woo
from tests.test_processes import BIN, free_port, wait_for

FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ERP_TOKEN = "chaos-erp-token"
REVIEWED_STORE = "chaos-a"  # its approval rule holds orders tagged "review"
ROUTED_STORE = "chaos-b"  # its routing rule ships by destination; some of its orders are cash on delivery
ROUTES = {"US": "EAST", "*": "EU"}
COD = "Cash on Delivery (COD)"
SHOPIFY_TEMPLATES = ("order_discount_multiline.json", "order_tax_included.json", "order_presentment_currency.json")


@dataclass(frozen=True)
class Plan:
    orders_per_store: int = 40
    customers: int = 25  # orders share customers (within and across stores): one ERP customer each
    update_share: float = 0.5  # orders whose payment is captured later (a second webhook)
    duplicate_share: float = 0.2  # deliveries sent again later
    reorder_share: float = 0.1  # orders whose update arrives before their creation
    undelivered_share: float = 0.05  # orders never delivered at all: left for reconciliation
    erp_failure_rate: float = 0.2
    outage_seconds: float = 3.0
    worker_kills: int = 3
    redis_restarts: int = 1
    workers: int = 2
    senders: int = 6
    send_seconds: float = 15.0  # the deliveries are spread over this long; the faults happen meanwhile
    converge_timeout: float = 240.0
    lease_seconds: int = 15  # how soon an event held by a killed worker is reclaimed
    review_share: float = 0.15  # Shopify orders tagged for review: held by an approval rule until approved
    approval_rounds: int = 3  # an approver approves what waits this many times while the faults go on
    cod_share: float = 0.25  # the routed store's orders left unpaid (cash on delivery): finance records the money
    credit_share: float = 0.2  # the reviewed store's paid orders the ERP's returns desk credits itself
    feed_rounds: int = 3  # the receipts and refunds syncs run this often while the faults go on
    seed: int = 1


@dataclass
class Report:
    plan: Plan
    orders: int = 0
    deliveries: int = 0
    duplicates: int = 0
    reordered: int = 0
    undelivered: int = 0
    answers: Counter = field(default_factory=Counter)
    erp_requests: int = 0
    erp_requests_while_faulty: int = 0
    erp_injected_failures: int = 0
    erp_max_in_flight: int = 0
    worker_kills: int = 0
    redis_restarts: int = 0
    process_restarts: Counter = field(default_factory=Counter)
    send_seconds: float = 0.0
    converge_seconds: float | None = None
    reconciled_new: int = 0
    events: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    # What the ERP and the inbox hold once it is over (Chaos.tally):
    paid_orders: int = 0  # placed orders whose last state is paid: one payment each is expected
    buyers: int = 0  # distinct buyers' emails: one ERP customer each is expected
    erp_orders: int = 0
    orders_right: int = 0  # placed orders the ERP holds with their total, tax and exactly their payments
    erp_payments: int = 0
    erp_customers: int = 0
    inbox_from_webhooks: int = 0  # events stored by the receivers (a duplicate stopped at the door adds none)
    inbox_from_reconciliation: int = 0
    reordered_right: int = 0  # of the orders whose update arrived before their creation, those right in the ERP
    review_orders: int = 0  # orders an approval rule held
    approvals: int = 0  # approvals given (each order once: an order approved twice would count twice)
    held_right: int = 0  # of the held orders, those right in the ERP
    undelivered_right: int = 0  # of the orders never sent, those right in the ERP (reconciliation's doing)
    office: FeedTally = field(default_factory=FeedTally)  # receipts, ERP credit notes, routing (tests/chaos_feeds.py)

    @property
    def duplicates_stopped(self) -> int:
        """Deliveries that stored no event: the re-deliveries the receivers recognised."""
        return self.deliveries - self.inbox_from_webhooks

    def lines(self) -> list[str]:
        p = self.plan
        return [
            f"orders {self.orders} over 3 stores; deliveries {self.deliveries} "
            f"({self.duplicates} duplicates, {self.reordered} orders out of order, {self.undelivered} never sent)",
            f"answers {dict(self.answers)}; sending took {self.send_seconds:.1f} s",
            f"ERP: {self.erp_requests} requests, {self.erp_requests_while_faulty} of them while faulty, of which "
            f"{self.erp_injected_failures} failed on purpose ({p.erp_failure_rate:.0%}) besides an outage of "
            f"{p.outage_seconds:g} s; at most {self.erp_max_in_flight} at once",
            f"faults: {self.worker_kills} workers killed (SIGKILL), Redis restarted {self.redis_restarts}x; "
            f"processes restarted by the supervisor {dict(self.process_restarts)}",
            f"reconciliation fed {self.reconciled_new} new event(s); inbox {dict(self.events)}",
            f"ERP: {self.orders_right} of {self.orders} orders right (total, tax, payments), "
            f"{self.erp_orders} orders in all; {self.erp_payments} payments for {self.paid_orders} paid orders; "
            f"{self.erp_customers} customers for {self.buyers} buyers",
            f"approvals: {self.approvals} given for {self.review_orders} orders held for review, "
            f"{self.held_right} of them right in the ERP",
            self.office.line(),
            f"handled: {self.duplicates_stopped} of {self.duplicates} duplicates stopped at the door "
            f"({self.inbox_from_webhooks} events stored for {self.deliveries} deliveries); "
            f"{self.reordered_right} of {self.reordered} out-of-order orders right; "
            f"{self.undelivered_right} of {self.undelivered} never-sent orders right "
            f"(reconciliation stored {self.inbox_from_reconciliation} events)",
            "converged in "
            + (
                f"{self.converge_seconds:.1f} s after the faults stopped"
                if self.converge_seconds is not None
                else "NOT converged"
            ),
            *(f"PROBLEM: {problem}" for problem in self.problems[:20]),
        ]


@dataclass
class Expected:
    ref: str
    total: Decimal
    tax: Decimal
    paid: bool
    email: str


@dataclass
class Delivery:
    store: str
    topic: str
    body: bytes
    event_id: str  # Shopify's X-Shopify-Event-Id (the same on a re-delivery); unused for WooCommerce


def _fixture(*parts: str) -> dict:
    return json.loads(FIXTURES.joinpath(*parts).read_text())


class PrivateRedis:
    """A redis-server of the run's own, so restarting it disturbs nothing else on the machine."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.kill()
        time.sleep(0.5)
        self.start()


class Supervisor:
    """Starts the product's processes and starts a new one whenever one dies, as a process manager would."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, list[str]] = {}
        self.restarts: Counter = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def add(self, name: str, *args: str) -> None:
        self.commands[name] = [str(BIN / "connector"), *args]
        self._spawn(name)

    def _spawn(self, name: str) -> None:
        with open(self.logs / f"{name}.log", "ab") as log:  # the child keeps its own copy
            self.procs[name] = subprocess.Popen(
                self.commands[name], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start(self) -> None:
        self._thread.start()

    def kill(self, name: str) -> None:
        with self._lock:
            proc = self.procs[name]
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

    def _watch(self) -> None:
        while not self._stop.wait(0.3):
            with self._lock:
                for name, proc in self.procs.items():
                    if proc.poll() is not None:
                        self.restarts[name.rstrip("0123456789")] += 1
                        self._spawn(name)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


class Chaos:
    def __init__(self, plan: Plan, workdir: Path):
        self.plan, self.workdir = plan, workdir
        self.rng = random.Random(plan.seed)
        self.report = Report(plan)
        self.expected: dict[str, Expected] = {}
        self.deliveries: list[Delivery] = []
        self.reordered_refs: set[str] = set()
        self.undelivered_refs: set[str] = set()
        self.review_refs: set[str] = set()
        self.stores = {
            "chaos-a": FakeShopify(shop_domain="chaos-a.myshopify.com"),
            "chaos-b": FakeShopify(shop_domain="chaos-b.myshopify.com", shop_utc_offset_hours=9),
            "chaos-w": fake_woo(),
        }
        self.secrets = {slug: f"whsec-{slug}-0123456789" for slug in self.stores}
        self.erp = FakeRestErp(token=ERP_TOKEN)
        shops = {slug: store for slug, store in self.stores.items() if isinstance(store, FakeShopify)}
        self.office = BackOffice(self.erp, shops, ROUTES)
        self.office_rng = random.Random(plan.seed + 1)  # apart, so the orders and deliveries stay as they were

    # ---- the orders and their deliveries --------------------------------------------------------

    def _customer(self, k: int) -> tuple[str, str]:
        return f"buyer{k}@chaos.example", f"+1555{k:07d}"

    def _shopify_orders(self, slug: str, shop: FakeShopify, start: datetime) -> list[tuple[str, list[Delivery]]]:
        per_order = []
        for n in range(self.plan.orders_per_store):
            order = _fixture("shopify", SHOPIFY_TEMPLATES[n % len(SHOPIFY_TEMPLATES)])
            k = self.rng.randrange(self.plan.customers)
            email, phone = self._customer(k)
            order_id = shop.next_id("order")
            placed = start + timedelta(seconds=n)
            order.update(
                id=order_id,
                admin_graphql_api_id=f"gid://shopify/Order/{order_id}",
                name=f"#{slug}-{n}",
                order_number=10_000 + n,
                email=email,
                contact_email=email,
                phone=None,
                created_at=shop.stamp(placed),
                processed_at=shop.stamp(placed),
            )
            # Buyers differ by name too: two people of one name at one postcode would be asked about (a
            # possible duplicate customer), which is for a person, not this run, to decide.
            order["customer"] = {
                **(order.get("customer") or {}),
                "id": 9_100_000 + k,
                "email": email,
                "phone": phone,
                "last_name": f"Buyer{k}",
            }
            for address in ("billing_address", "shipping_address"):
                if order.get(address):
                    order[address].update(phone=phone, last_name=f"Buyer{k}")
            if slug == REVIEWED_STORE and self.rng.random() < self.plan.review_share:
                order["tags"] = "review"  # the store's approval rule holds it
                self.review_refs.add(f"shopify:{slug}:{order_id}")
            ref = f"shopify:{slug}:{order_id}"
            self._back_office(slug, ref, order_id, order)
            final = copy.deepcopy(order)
            final["updated_at"] = shop.stamp(placed + timedelta(minutes=5))
            shop.orders[order_id] = final  # what the store's API shows: the latest state
            self.expected[ref] = Expected(
                ref,
                Decimal(final["total_price"]),
                Decimal(final["total_tax"]),
                final["financial_status"] == "paid",
                email,
            )
            sends = []
            if self.rng.random() < self.plan.update_share:  # created unpaid, paid five minutes later
                first = {**copy.deepcopy(order), "financial_status": "pending", "updated_at": shop.stamp(placed)}
                sends.append(self._shopify(slug, "orders/create", first))
                sends.append(self._shopify(slug, "orders/updated", final))
            else:
                sends.append(self._shopify(slug, "orders/create", final))
            per_order.append((ref, sends))
        return per_order

    def _back_office(self, slug: str, ref: str, order_id: int, order: dict) -> None:
        """The routed store's order is routed by its destination, and may be cash on delivery (unpaid until
        finance records the money in the ERP); a paid order of the reviewed store may be credited by the ERP."""
        if slug == ROUTED_STORE:
            self.office.routed[ref] = (order.get("shipping_address") or {}).get("country_code") or ""
            if self.office_rng.random() < self.plan.cod_share:
                order.update(financial_status="pending", gateway=COD, payment_gateway_names=[COD])
                self.office.cod[ref] = order_id
        elif slug == REVIEWED_STORE and order["financial_status"] == "paid":
            if self.office_rng.random() < self.plan.credit_share:
                self.office.credit[ref] = order_id
                self.office.skus[ref] = order["line_items"][0]["sku"]

    def _shopify(self, slug: str, topic: str, payload: dict) -> Delivery:
        return Delivery(slug, topic, json.dumps(payload).encode(), str(uuid.uuid4()))

    def _woo_orders(self, slug: str, start: datetime) -> list[tuple[str, list[Delivery]]]:
        woo = self.stores[slug]
        per_order = []
        for n in range(self.plan.orders_per_store):
            doc = _fixture("woocommerce", "order_processing_coupon.json")
            k = self.rng.randrange(self.plan.customers)
            email, phone = self._customer(k)
            doc.pop("id")
            doc.update(customer_id=5_000 + k, refunds=[])
            doc["billing"].update(email=email, phone=phone, last_name=f"Buyer{k}")
            placed = start + timedelta(seconds=n)
            order_id = woo.add_order(doc=doc, modified=placed + timedelta(minutes=5))
            final = woo.orders[order_id]
            final.update(
                number=str(order_id), **woo._stamps("date_created", placed), **woo._stamps("date_paid", placed)
            )
            ref = f"woocommerce:{slug}:{order_id}"
            self.expected[ref] = Expected(ref, Decimal(final["total"]), Decimal(final["total_tax"]), True, email)
            sends = []
            if self.rng.random() < self.plan.update_share:  # awaiting payment, then paid
                first = {
                    **copy.deepcopy(final),
                    "status": "pending",
                    **woo._stamps("date_modified", placed),
                    "date_paid": None,
                    "date_paid_gmt": None,
                }
                sends.append(Delivery(slug, "order.created", json.dumps(first).encode(), ""))
                sends.append(Delivery(slug, "order.updated", json.dumps(final).encode(), ""))
            else:
                sends.append(Delivery(slug, "order.created", json.dumps(final).encode(), ""))
            per_order.append((ref, sends))
        return per_order

    def plan_deliveries(self) -> None:
        """Every order's deliveries in a stream: near each other, some swapped, some repeated, some left out."""
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        per_order: list[tuple[str, list[Delivery]]] = []
        for slug, store in self.stores.items():
            if isinstance(store, FakeShopify):
                per_order += self._shopify_orders(slug, store, start)
            else:
                per_order += self._woo_orders(slug, start)
        self.rng.shuffle(per_order)
        keyed: list[tuple[float, Delivery]] = []
        for n, (ref, sends) in enumerate(per_order):
            if self.rng.random() < self.plan.undelivered_share:
                self.report.undelivered += 1
                self.undelivered_refs.add(ref)
                continue
            if len(sends) == 2 and self.rng.random() < self.plan.reorder_share / self.plan.update_share:
                sends = [sends[1], sends[0]]
                self.report.reordered += 1
                self.reordered_refs.add(ref)
            for m, delivery in enumerate(sends):
                at = n + m * self.rng.uniform(1, 15)
                keyed.append((at, delivery))
                if self.rng.random() < self.plan.duplicate_share:  # a re-delivery, a little later
                    keyed.append((at + self.rng.uniform(1, 40), delivery))
                    self.report.duplicates += 1
        keyed.sort(key=lambda pair: pair[0])
        self.deliveries = [delivery for _, delivery in keyed]
        self.report.orders, self.report.deliveries = len(self.expected), len(self.deliveries)

    # ---- sending ----------------------------------------------------------------------------------

    def _post(self, base: str, delivery: Delivery) -> list[int]:
        """Every answer the delivery got (0: no answer at all)."""
        signature = sign(self.secrets[delivery.store], delivery.body)
        if delivery.topic.startswith(("order.", "product.")):
            resource, event = delivery.topic.split(".", 1)
            url = f"{base}/webhooks/woocommerce/{delivery.store}"
            headers = {
                "X-WC-Webhook-Source": f"{self.stores[delivery.store].url}/",
                "X-WC-Webhook-Topic": delivery.topic,
                "X-WC-Webhook-Resource": resource,
                "X-WC-Webhook-Event": event,
                "X-WC-Webhook-ID": "31",
                "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
                "X-WC-Webhook-Signature": signature,
            }
            tries = 1  # WooCommerce never sends a delivery again
        else:
            url = f"{base}/webhooks/shopify/{delivery.store}"
            headers = {
                "X-Shopify-Topic": delivery.topic,
                "X-Shopify-API-Version": "2026-01",
                "X-Shopify-Shop-Domain": f"{delivery.store}.myshopify.com",
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": delivery.event_id,
                "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "X-Shopify-Hmac-Sha256": signature,
            }
            tries = 4  # Shopify sends again what was not answered 2xx (a few times, here)
        headers["Content-Type"] = "application/json"
        answers = []
        for _ in range(tries):
            try:
                answers.append(requests.post(url, data=delivery.body, headers=headers, timeout=10).status_code)
            except requests.RequestException:
                answers.append(0)
            if 200 <= answers[-1] < 300:
                break
            time.sleep(0.5)
        return answers

    def send_all(self, base: str) -> None:
        started = time.monotonic()
        pace = self.plan.send_seconds / max(len(self.deliveries), 1)
        lock = threading.Lock()

        def send(n: int) -> None:
            delay = started + n * pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            answers = self._post(base, self.deliveries[n])
            with lock:
                self.report.answers.update(answers)

        with ThreadPoolExecutor(self.plan.senders) as pool:
            list(pool.map(send, range(len(self.deliveries))))
        self.report.send_seconds = time.monotonic() - started

    # ---- faults -----------------------------------------------------------------------------------

    def approve_waiting(self) -> None:
        """An approver approves every order that waits, as from the console's bulk approval (in this process,
        on the connector's database and Redis; a Redis restarted meanwhile only loses the wake-up, which the
        sweep makes up for)."""
        with contextlib.suppress(RedisError):  # the approval is committed before the wake-up; the sweep runs it
            approvals.approve(self.runtime, flt=approvals.ApprovalFilter(), actor="chaos")

    def faults(self, supervisor: Supervisor, redis: PrivateRedis) -> None:
        """The fault timeline over the sending time: kills spread out, the outage, the Redis restarts."""
        p = self.plan
        actions: list[tuple[float, str]] = [
            ((k + 1) / (p.worker_kills + 1) * 0.9, "kill") for k in range(p.worker_kills)
        ]
        actions.append((0.3, "outage"))
        actions += [((k + 1) / (p.redis_restarts + 1) * 0.8 + 0.1, "redis") for k in range(p.redis_restarts)]
        actions += [((k + 1) / (p.approval_rounds + 1), "approve") for k in range(p.approval_rounds)]
        started = time.monotonic()
        for share, action in sorted(actions):
            delay = started + share * p.send_seconds - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if action == "kill":
                supervisor.kill(f"worker{self.rng.randrange(p.workers)}")
                self.report.worker_kills += 1
            elif action == "approve":
                self.approve_waiting()
            elif action == "outage":
                self.erp.down = True
                time.sleep(p.outage_seconds)
                self.erp.down = False
            else:
                redis.restart()
                self.report.redis_restarts += 1

    def back_office_rounds(self, env: dict[str, str], logs: Path) -> None:
        """Finance and the returns desk act, and the syncs carry it to the stores, a few times over the sending
        time; each round's refunds sync is killed partway (the next round, or the last run, finishes it)."""
        p = self.plan
        started = time.monotonic()
        for k in range(p.feed_rounds):
            delay = started + (k + 1) / (p.feed_rounds + 1) * p.send_seconds - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.office.decide()
            self.office.sync(env, BIN / "connector", logs, kill=True)

    # ---- the proof --------------------------------------------------------------------------------

    def _erp(self) -> tuple[dict[str, dict], list[dict], list[dict]]:
        """A copy of what the fake ERP holds: orders by ref, payments, customers."""
        with self.erp._lock:
            orders = {ref: copy.deepcopy(doc) for ref, doc in self.erp.orders.items()}
            payments = [dict(p) for p in self.erp.payments.values()]
            customers = [dict(c) for c in self.erp.customers.values()]
        return orders, payments, customers

    def _order_problems(self, orders: dict[str, dict], payments: list[dict]) -> dict[str, list[str]]:
        """Each placed order's problems in the ERP; none when it is there with its total, tax and payments."""
        paid: dict[str, list[Decimal]] = {}
        for payment in payments:
            paid.setdefault(payment["order_ref"], []).append(Decimal(payment["amount"]))
        problems: dict[str, list[str]] = {}
        for ref, want in self.expected.items():
            doc = orders.get(ref)
            problems[ref] = found = [] if doc is not None else [f"{ref} is missing"]
            if doc is None:
                continue
            total, tax = Decimal(doc["totals"]["total"]), Decimal(doc["totals"]["tax_total"])
            if (total, tax) != (want.total, want.tax):
                found.append(f"{ref}: total {total} tax {tax}, expected {want.total} and {want.tax}")
            got = paid.get(ref, [])
            if want.paid and got != [want.total]:
                found.append(f"{ref}: payments {got}, expected one of {want.total}")
            if not want.paid and got:
                found.append(f"{ref}: payments {got} on an order not paid")
        return problems

    def differences(self) -> list[str]:
        """What the ERP holds that it should not, or lacks; empty when every order is there exactly once."""
        orders, payments, customers = self._erp()
        by_ref = self._order_problems(orders, payments)
        problems = [problem for ref in self.expected for problem in by_ref[ref]]
        problems += [f"{ref} is in the ERP but was never placed" for ref in orders if ref not in self.expected]
        emails = Counter((c.get("email") or "").lower() for c in customers)
        problems += [f"customer {email} exists {n} times" for email, n in emails.items() if n > 1]
        return problems

    def tally(self, engine) -> None:  # type: ignore[no-untyped-def]
        """The report's figures of the end state: the ERP's orders, payments and customers against what was
        placed, each kind of fault's orders that ended right, and where the inbox's events came from."""
        orders, payments, customers = self._erp()
        wrong = self._order_problems(orders, payments)
        right = {ref for ref, problems in wrong.items() if not problems}
        r = self.report
        r.paid_orders = sum(want.paid for want in self.expected.values())
        r.buyers = len({want.email.lower() for want in self.expected.values()})
        r.erp_orders, r.erp_payments, r.erp_customers = len(orders), len(payments), len(customers)
        r.orders_right = len(right)
        r.reordered_right = len(self.reordered_refs & right)
        r.undelivered_right = len(self.undelivered_refs & right)
        r.review_orders, r.held_right = len(self.review_refs), len(self.review_refs & right)
        with engine.connect() as conn:
            r.approvals = conn.execute(
                text("SELECT count(*) FROM audit_log WHERE action = 'order.approve'")
            ).scalar_one()
        with engine.connect() as conn:
            sources = dict(
                conn.execute(
                    text(
                        "SELECT coalesce(headers->>'X-Connector-Source', '') = 'reconciliation', count(*) "
                        "FROM inbox_events GROUP BY 1"
                    )
                ).all()
            )
        r.inbox_from_webhooks, r.inbox_from_reconciliation = sources.get(False, 0), sources.get(True, 0)

    def inbox(self, engine) -> Counter:  # type: ignore[no-untyped-def]
        with engine.connect() as conn:
            return Counter(dict(conn.execute(text("SELECT status, count(*) FROM inbox_events GROUP BY status")).all()))

    def converge(self, env: dict[str, str], engine) -> None:  # type: ignore[no-untyped-def]
        stopped = time.monotonic()
        for slug in self.stores:  # the scheduler's next reconciliation run, now
            out = subprocess.run(
                [str(BIN / "connector"), "reconcile", slug], env=env, capture_output=True, text=True, timeout=120
            )
            if out.returncode != 0:
                self.report.problems.append(f"reconcile {slug} failed: {out.stdout}{out.stderr}")
            else:
                self.report.reconciled_new += int(out.stdout.split(" order(s) seen, ")[1].split(" ")[0])
        deadline = stopped + self.plan.converge_timeout
        while time.monotonic() < deadline:
            events = self.inbox(engine)
            if events["held"]:  # held by the rule since the approver's last round (or by reconciliation)
                self.approve_waiting()
                continue
            if not events["pending"] and not events["processing"] and not self.differences():
                self.report.converge_seconds = time.monotonic() - stopped
                break
            if events["failed"] and not events["pending"] and not events["processing"]:
                break  # parked events will not move by themselves
            time.sleep(0.5)
        self.report.events = self.inbox(engine)
        wait_settled(self.office, env, BIN / "connector", self.workdir / "logs", 60)
        self.report.problems += self.differences() + self.office.problems()
        self.report.office = self.office.tally
        self.tally(engine)
        if self.report.events["failed"]:
            with engine.connect() as conn:
                reasons = conn.execute(
                    text("SELECT id, topic, last_error FROM inbox_events WHERE status = 'failed' ORDER BY id LIMIT 10")
                ).all()
            self.report.problems += [f"event {r.id} ({r.topic}) parked: {r.last_error}" for r in reasons]

    # ---- the whole run ----------------------------------------------------------------------------

    def run(self) -> Report:
        p = self.plan
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        db = f"chaos_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
        db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db}"
        redis = PrivateRedis()
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": db_url.replace("+psycopg", ""),
            "REDIS_URL": redis.url,
            "CONNECTOR_ENCRYPTION_KEY": "chaos-key",
            "CONNECTOR_QUEUE": "chaos",
            "CONNECTOR_INSTANCE_PATH": str(self.workdir / "instance"),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "CONNECTOR_MAX_ATTEMPTS": "30",
            "CONNECTOR_RETRY_BASE_SECONDS": "1",
            "CONNECTOR_RETRY_CAP_SECONDS": "4",
            "CONNECTOR_LEASE_SECONDS": str(p.lease_seconds),
            "CONNECTOR_SWEEP_GRACE_SECONDS": "3",
            "WEB_CONCURRENCY": "2",
        }
        supervisor = Supervisor(env, logs)
        engine = create_engine(db_url)
        try:
            self._configure(env)
            self.runtime = Runtime.from_settings(Settings.from_env(env))
            supervisor.add("web", "web", "--port", str(port))
            for n in range(p.workers):
                supervisor.add(f"worker{n}", "worker")
            supervisor.add("scheduler", "scheduler", "--sweep-every", "2")
            supervisor.start()
            wait_for(f"http://127.0.0.1:{port}/healthz", 30)
            self.plan_deliveries()
            self.erp.fail_randomly(p.erp_failure_rate, seed=p.seed)
            faults = threading.Thread(target=self.faults, args=(supervisor, redis), name="faults")
            office = threading.Thread(target=self.back_office_rounds, args=(env, logs), name="back-office")
            faults.start()
            office.start()
            self.send_all(f"http://127.0.0.1:{port}")
            faults.join()
            office.join()
            self.erp.fail_randomly(0)
            self.report.erp_requests_while_faulty = sum(self.erp.hits.values())
            self.report.erp_injected_failures = self.erp.injected
            self.converge(env, engine)
        finally:
            if hasattr(self, "runtime"):
                self.runtime.engine.dispose()
            supervisor.stop()
            self.report.process_restarts = supervisor.restarts
            self.report.erp_requests = sum(self.erp.hits.values())
            self.report.erp_max_in_flight = self.erp.max_in_flight
            engine.dispose()
            redis.kill()
            for store in self.stores.values():
                store.stop()
            self.erp.stop()
            with admin.connect() as conn:
                conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"))
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}"'))
            admin.dispose()
        return self.report

    def _configure(self, env: dict[str, str]) -> None:
        stores = []
        for slug, store in self.stores.items():
            if isinstance(store, FakeShopify):
                stores.append(
                    {
                        "slug": slug,
                        "platform": "shopify",
                        "shop_domain": store.shop_domain,
                        "webhook_secret": self.secrets[slug],
                        "access_token": store.token,
                        "api_version": "2026-01",
                        "api_base_url": store.url,
                        **({"approval": {"tags": ["review"]}} if slug == REVIEWED_STORE else {}),
                        **({"routing": {"by_destination": ROUTES}} if slug == ROUTED_STORE else {}),
                    }
                )
            else:
                stores.append(
                    {
                        "slug": slug,
                        "platform": "woocommerce",
                        "url": store.url,
                        "webhook_secret": self.secrets[slug],
                        "consumer_key": WOO_KEY,
                        "consumer_secret": WOO_KEY_SECRET,
                    }
                )
        config = self.workdir / "chaos.yaml"
        config.write_text(
            json.dumps(
                {
                    "erp": {
                        "kind": "rest",
                        "base_url": self.erp.url,
                        "auth": {"type": "bearer"},
                        "token": ERP_TOKEN,
                        "timeout_seconds": 3,
                        "max_tries": 3,
                        "retry_base_seconds": 0.05,
                        "max_wait_seconds": 1,
                    },
                    "stores": stores,
                }
            )
        )
        for args in (("db", "upgrade"), ("config", "load", str(config))):
            subprocess.run([str(BIN / "connector"), *args], env=env, check=True, capture_output=True, timeout=120)


def run(plan: Plan, workdir: Path) -> Report:
    return Chaos(plan, workdir).run()
