"""Which warehouse ships: the store's routing rules choose the ERP warehouse of each new order (or of each
line, when a split is allowed) through the real pipeline, once, and every later version keeps it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from adapters.erp import RetryableErpError
from connector.base.models import AuditEntry, OrderRouting, Store
from connector.base.stock import upsert_levels
from mappings.canonical import StockLevel
from tests.conftest import load_fixture
from tests.stack import STORE, Stack
from tests.test_api import sign_in
from tests.test_pages import field_error, form_post, html

# 3 x SOCK-MER-M-CHA, 1 x SHOE-TR2-42-SLT and a line without SKU, shipped to Boston (US-MA).
ORDER = load_fixture("shopify", "order_discount_multiline.json")
SOCK, SHOE = "SOCK-MER-M-CHA", "SHOE-TR2-42-SLT"
PLACED = "2026-11-20T10:15:00-05:00"
COUNTED = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)  # the ERP's stock count, an hour before the orders
RECOUNTED = COUNTED + timedelta(hours=3)
RULES = {"by_destination": {"US-MA": "BOS", "US": "NYC", "*": "MAIN"}, "warehouses": ["MAIN", "NYC"]}


def set_rules(stack: Stack, rules: dict) -> None:
    with stack.rt.sessions.begin() as session:
        store = session.scalars(select(Store).where(Store.slug == STORE)).one()
        store.settings = {**store.settings, "routing": rules}


def stock(stack: Stack, at: datetime = COUNTED, **by_warehouse: dict[str, int]) -> None:
    """The ERP's count at `at`, as the stock sync mirrors it: orders placed after it are not in it yet."""
    upsert_levels(
        stack.rt,
        [StockLevel(sku, w, Decimal(n), at) for w, levels in by_warehouse.items() for sku, n in levels.items()],
    )


def version(order_id: int, updated: str = PLACED, **changes) -> dict:  # type: ignore[no-untyped-def]
    payload = copy.deepcopy(ORDER)
    payload.update(id=order_id, name=f"#{order_id}", order_number=order_id, created_at=PLACED, updated_at=updated)
    payload.update(changes)
    return payload


def shipped_from(stack: Stack, order_id: int) -> tuple[str | None, list[tuple[str | None, str | None]]]:
    """The ERP order's warehouse and each line's (sku, warehouse)."""
    ref = f"shopify:{STORE}:{order_id}"
    (row,) = [r for r in stack.erp_orders() if r.external_ref == ref]
    return row.warehouse, [(line.sku, line.warehouse) for line in stack.erp_lines(ref)]


def routed_audit(stack: Stack) -> list[AuditEntry]:
    with stack.rt.sessions() as session:
        found = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "order.routed")))
        session.expunge_all()
    return found


def test_the_destination_names_the_warehouse_and_the_console_and_audit_log_say_why(stack: Stack) -> None:
    set_rules(stack, RULES)
    stack.post_shopify(version(9101))
    stack.run_jobs()

    assert shipped_from(stack, 9101) == ("BOS", [(SOCK, "BOS"), (SHOE, "BOS"), (None, "BOS")])
    (event,) = stack.events()
    assert event.status == "succeeded" and event.result["routing"] == "routed to BOS (destination US-MA)"
    (entry,) = routed_audit(stack)
    assert (entry.actor, entry.target, entry.detail["warehouse"]) == (f"rules:{STORE}", f"{STORE} #9101", "BOS")
    page = html(sign_in(stack).get(f"/console/events/{event.id}"))
    assert "Ships from" in page and "routed to BOS (destination US-MA)" in page


def test_a_store_without_rules_leaves_the_erps_default_warehouse(stack: Stack) -> None:
    stack.post_shopify(version(9102))
    stack.run_jobs()
    assert shipped_from(stack, 9102) == (None, [(SOCK, None), (SHOE, None), (None, None)])
    assert "routing" not in stack.events()[0].result and routed_audit(stack) == []


def test_with_the_stock_check_the_first_warehouse_with_every_line_ships(stack: Stack) -> None:
    set_rules(stack, {**RULES, "stock_check": True})
    stock(stack, BOS={SOCK: 3, SHOE: 0}, MAIN={SOCK: 2, SHOE: 5}, NYC={SOCK: 3, SHOE: 1})
    stack.post_shopify(version(9103))
    stack.run_jobs()
    assert shipped_from(stack, 9103)[0] == "NYC"
    assert stack.events()[0].result["routing"] == (
        "routed to NYC (destination US-MA, stock for every line, not at BOS)"
    )
    # The next order finds NYC's units held by the first (placed after the ERP's count): it has no shoe left.
    stack.post_shopify(version(9104))
    stack.run_jobs()
    assert shipped_from(stack, 9104)[0] == "BOS"  # none has it all now: the destination's warehouse
    assert "no warehouse has stock for every line" in stack.events()[1].result["routing"]


@pytest.mark.parametrize("split", [False, True], ids=["no-split", "split"])
def test_a_split_ships_each_line_from_the_warehouse_with_its_stock_only_when_allowed(stack: Stack, split: bool) -> None:
    set_rules(stack, {**RULES, "stock_check": True, "split": split})
    stock(stack, BOS={SOCK: 3}, MAIN={SHOE: 1})
    stack.post_shopify(version(9105))
    stack.run_jobs()
    if split:
        assert shipped_from(stack, 9105) == ("BOS", [(SOCK, "BOS"), (SHOE, "MAIN"), (None, "BOS")])
        (entry,) = routed_audit(stack)
        assert set(entry.detail["lines"].values()) == {"BOS", "MAIN"}
    else:
        assert shipped_from(stack, 9105) == ("BOS", [(SOCK, "BOS"), (SHOE, "BOS"), (None, "BOS")])


def test_a_replay_and_later_versions_keep_the_first_decision_after_stock_moved(stack: Stack) -> None:
    set_rules(stack, {**RULES, "stock_check": True})
    stock(stack, BOS={SOCK: 3}, MAIN={SOCK: 3, SHOE: 1})
    stack.post_shopify(version(9106))
    stack.post_shopify(version(9106), event_id="replayed-delivery")  # the same version again
    stack.run_jobs()
    assert shipped_from(stack, 9106)[0] == "MAIN"

    stock(stack, RECOUNTED, BOS={SOCK: 9, SHOE: 9}, MAIN={SOCK: 0, SHOE: 0})  # now only the destination's has it all
    later = version(9106, updated="2026-11-20T11:00:00-05:00", note="leave at the door")
    stack.post_shopify(later, topic="orders/updated")
    stack.run_jobs()

    assert shipped_from(stack, 9106) == ("MAIN", [(SOCK, "MAIN"), (SHOE, "MAIN"), (None, "MAIN")])
    assert all(e.status == "succeeded" for e in stack.events())
    assert len(routed_audit(stack)) == 1  # decided once
    with stack.rt.sessions() as session:
        assert session.scalars(select(OrderRouting.warehouse)).all() == ["MAIN"]


def test_a_retry_after_the_erp_write_was_lost_keeps_the_warehouse_the_erp_has(stack: Stack) -> None:
    """The ERP wrote the order but its answer was lost, and the stock moved before the retry: the retry
    writes the same warehouse, and the audit log has one decision."""
    set_rules(stack, {**RULES, "stock_check": True})
    stock(stack, BOS={SOCK: 3}, MAIN={SOCK: 3, SHOE: 1})
    calls: list[int] = []

    def lost_once(erp):  # type: ignore[no-untyped-def]
        real = erp.push_order

        def push(*args):  # type: ignore[no-untyped-def]
            calls.append(1)
            written = real(*args)
            if len(calls) == 1:
                stock(stack, RECOUNTED, BOS={SOCK: 9, SHOE: 9})
                raise RetryableErpError("the ERP's answer timed out")
            return written

        erp.push_order = push
        return erp

    stack.wrap_erp(lost_once)
    stack.post_shopify(version(9107))
    stack.run_jobs()
    stack.run_jobs(include_delayed=True)
    assert len(calls) == 2 and stack.events()[0].status == "succeeded"
    assert shipped_from(stack, 9107)[0] == "MAIN" and len(stack.erp_orders()) == 1
    assert len(routed_audit(stack)) == 1


def test_the_rules_are_set_on_the_config_page_checked_and_audited(sqlite_stack: Stack) -> None:
    admin = sign_in(sqlite_stack)
    base = [("active", "on"), ("shop_domain", f"{STORE}.myshopify.com"), ("api_version", "2026-01")]
    refused = form_post(admin, f"/config/stores/{STORE}", [*base, ("routing_by_destination", "Germany=BER")])
    assert refused.status_code == 400
    assert "Germany" in (field_error(html(refused), "routing") or html(refused))
    no_stock = form_post(admin, f"/config/stores/{STORE}", [*base, ("routing_split", "on")])
    assert no_stock.status_code == 400 and "only with stock_check" in html(no_stock)

    saved = form_post(
        admin,
        f"/config/stores/{STORE}",
        [
            *base,
            ("routing_by_destination", "de=BER, US-CA=LAX, *=MAIN"),
            ("routing_warehouses", "MAIN, BER"),
            ("routing_stock_check", "on"),
        ],
    )
    assert saved.status_code == 302
    with sqlite_stack.rt.sessions() as session:
        store = session.scalars(select(Store).where(Store.slug == STORE)).one()
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "store.update")).one()
    assert store.settings["routing"] == {
        "by_destination": {"DE": "BER", "US-CA": "LAX", "*": "MAIN"},
        "warehouses": ["MAIN", "BER"],
        "stock_check": True,
    }
    assert "routing" in entry.detail["changed"]
    page = html(admin.get(f"/config/stores/{STORE}"))
    assert 'value="DE=BER, US-CA=LAX, *=MAIN"' in page and 'name="routing_stock_check" checked' in page


def test_a_later_version_of_an_order_the_erp_had_before_the_rules_is_not_moved(stack: Stack) -> None:
    stack.post_shopify(version(9108))
    stack.run_jobs()
    set_rules(stack, RULES)
    later = version(9108, updated="2026-11-20T11:00:00-05:00")
    stack.post_shopify(later, topic="orders/updated")
    stack.run_jobs()
    assert shipped_from(stack, 9108)[0] is None and routed_audit(stack) == []
