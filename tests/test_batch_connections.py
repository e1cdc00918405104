"""A drain's batch holds its database connections instead of taking one from the pool per statement (issue 18),
and a held connection the server dropped costs one statement, not the rest of the batch."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from adapters.erp import ErpError
from tests.conftest import load_fixture
from tests.stack import Stack

ORDER = load_fixture("shopify", "order_discount_multiline.json")
ORDERS = 6


def _order(n: int) -> dict:
    order = copy.deepcopy(ORDER)
    order["id"] = 9_100_000 + n
    order["name"] = f"#H{n}"
    order["email"] = order["contact_email"] = f"held{n}@example.com"
    # A buyer of their own: account, email and name (the same name at the same postcode would be held as a
    # possible duplicate of the first)
    last = f"Held{n}"
    order["customer"] = {**order["customer"], "id": 9_200_000 + n, "email": order["email"], "last_name": last}
    order["customer"]["phone"] = None
    for key in ("billing_address", "shipping_address"):
        order[key] = {**order[key], "last_name": last, "name": f"Dana {last}", "phone": None}
    return order


def test_a_batch_of_new_buyers_orders_takes_a_few_connections_not_one_per_statement(stack: Stack) -> None:
    for n in range(ORDERS):
        stack.post_shopify(_order(n))
    erp_engine = stack.rt.erp().engine  # type: ignore[attr-defined]
    taken = {"connector": 0, "erp": 0}
    listeners = [
        (stack.rt.engine, lambda *_: taken.__setitem__("connector", taken["connector"] + 1)),
        (erp_engine, lambda *_: taken.__setitem__("erp", taken["erp"] + 1)),
    ]
    for engine, count in listeners:
        event.listen(engine, "checkout", count)
    try:
        stack.run_jobs()
    finally:
        for engine, count in listeners:
            event.remove(engine, "checkout", count)

    assert sorted(o.number for o in stack.erp_orders()) == sorted(f"#H{n}" for n in range(ORDERS))
    assert len(stack.erp_customers()) == ORDERS
    # Each order runs ~10 statements on each database: one checkout per statement would be 60 on each. The ERP's
    # two held connections serve the whole batch; the connector's statements share one, its transactions (the
    # claim, each order's binding, the outcomes) take their own.
    assert taken["erp"] <= 2, taken
    assert taken["connector"] <= 4 * ORDERS, taken


def test_a_held_connection_the_server_dropped_fails_one_statement_and_the_next_gets_a_fresh_one(stack: Stack) -> None:
    if stack.kind != "postgres":
        pytest.skip("a server that drops connections is PostgreSQL's case")
    rt = stack.rt
    with rt.batch():
        with rt.autocommit_connection() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with rt.engine.connect() as other:
            other.execute(text(f"SELECT pg_terminate_backend({pid})"))
        with pytest.raises(OperationalError):
            for _ in range(50):  # the server ends the session asynchronously
                with rt.autocommit_connection() as conn:
                    conn.execute(text("SELECT 1"))
        with rt.autocommit_connection() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid

        erp = rt.erp()
        assert erp.find_customer("nobody@example.com", None) is None  # the batch's held ERP connection, opened
        with stack.erp_engine.connect() as other:
            other.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        with pytest.raises(ErpError):
            for _ in range(50):
                erp.find_customer("nobody@example.com", None)
        assert erp.find_customer("nobody@example.com", None) is None  # the next statement goes through
