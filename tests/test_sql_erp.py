"""The SQL staging contract grows without breaking an ERP that implemented an earlier version of it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, text

from adapters.erp.sql import SqlStagingErp
from adapters.erp.sql_contract import OPTIONAL_CREDIT_NOTE_COLUMNS, OPTIONAL_ORDER_COLUMNS, erp_credit_notes, erp_orders
from platforms.shopify.mapping import order_from_shopify
from platforms.shopify.refunds import refund_from_shopify
from tests.conftest import load_fixture


def an_erp_without(tmp_path: Path, table: str, columns: tuple[str, ...]) -> SqlStagingErp:
    """An ERP that implemented the contract before these columns were added."""
    erp = SqlStagingErp(f"sqlite:///{tmp_path / 'old-erp.db'}")
    erp.create_tables()
    with erp.engine.begin() as conn:
        for column in columns:
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    return erp


def test_an_erp_without_the_newer_columns_still_takes_orders_with_every_fee_in_fee_total(tmp_path: Path) -> None:
    erp = an_erp_without(tmp_path, "erp_orders", OPTIONAL_ORDER_COLUMNS)
    order = order_from_shopify(load_fixture("shopify", "order_tip.json"), "acme-us")

    erp.push_order(order, erp.create_customer(order.customer, "shopify:acme-us:customer:1"))

    with erp.engine.connect() as conn:
        row = conn.execute(
            select(
                erp_orders.c.total,
                erp_orders.c.fee_total,
                erp_orders.c.subtotal,
                erp_orders.c.shipping_total,
                erp_orders.c.tax_total,
            )
        ).one()
    # 49.00 of goods + 6.00 shipping + 4.35 tax + the 7.35 tip, which the older contract knows as a fee
    assert (row.total, row.fee_total) == (Decimal("66.70"), Decimal("7.35"))
    assert row.subtotal + row.shipping_total + row.tax_total + row.fee_total == row.total
    erp.close()


def test_an_erp_without_the_credit_note_fee_columns_still_takes_a_refund_of_a_tip(tmp_path: Path) -> None:
    erp = an_erp_without(tmp_path, "erp_credit_notes", OPTIONAL_CREDIT_NOTE_COLUMNS)
    order = order_from_shopify(load_fixture("shopify", "order_tip.json"), "acme-us")
    erp.push_order(order, erp.create_customer(order.customer, "shopify:acme-us:customer:1"))
    refund = refund_from_shopify(load_fixture("shopify", "refunds/fee_refund_tip.json"), "acme-us", "USD")

    erp.create_credit_note(refund, order.external_ref)

    with erp.engine.connect() as conn:
        row = conn.execute(
            select(
                erp_credit_notes.c.total,
                erp_credit_notes.c.subtotal,
                erp_credit_notes.c.tax_total,
                erp_credit_notes.c.shipping_total,
                erp_credit_notes.c.adjustment,
            )
        ).one()
    # The beanie's 24.50 + 2.17 tax, and the 7.35 tip: the older contract reads the tip as what the parts leave
    assert row.total == Decimal("34.02")
    assert row.total - (row.subtotal + row.tax_total + row.shipping_total + row.adjustment) == Decimal("7.35")
    erp.close()


def test_a_possible_duplicate_is_looked_up_by_the_postcode_index_not_a_scan_of_every_customer(pg_databases) -> None:  # type: ignore[no-untyped-def]
    # A flash sale's every new buyer asks for customers with their name and postcode: a whole-table scan per
    # order slowed with each customer added (6.6 ms per lookup at 10,000 on PostgreSQL).
    import re
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from adapters.erp.sql import _SIMILAR
    from adapters.erp.sql_contract import erp_customers

    erp = SqlStagingErp(pg_databases[1])
    erp.create_tables()
    now = datetime.now(UTC)
    rows = [
        {"name": f"Ann Buyer{n}", "postcode": f"{n % 900 + 100} {n:05d}", "created_at": now, "updated_at": now}
        for n in range(5000)
    ]
    rows.append({"name": "Dana Whitfield", "postcode": "sw1a-1aa", "created_at": now, "updated_at": now})
    with erp.engine.begin() as conn:
        conn.execute(insert(erp_customers), rows)
        conn.execute(text("ANALYZE erp_customers"))
    (found,) = erp.similar_customers("dana  WHITFIELD", "SW1A 1AA")

    assert found.name == "Dana Whitfield"
    with erp.engine.connect() as conn:
        # The statement as psycopg is given it, planned as PostgreSQL plans a prepared statement once it settles on
        # a generic plan (psycopg prepares a statement after five runs): the index must serve that plan too.
        names: list[str] = []

        def numbered(found: re.Match) -> str:  # psycopg's %(name)s as PREPARE's $n
            if found[1] not in names:
                names.append(found[1])
            return f"${names.index(found[1]) + 1}"

        sql = re.sub(r"%\((\w+)\)s", numbered, _SIMILAR.sql(conn))
        given = {"postcode_key": "'SW1A1AA'", "fragment": "'whitfield'"}
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql("PREPARE similar_lookup AS " + sql)
        execute = f"EXECUTE similar_lookup({', '.join(given.get(name, '500') for name in names)})"
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + execute))
    assert "ix_erp_customers_postcode_key" in plan, plan
    erp.close()


def _payment(order, key: str, amount: str):  # type: ignore[no-untyped-def]
    from adapters.erp.base import PaymentRecord
    from mappings.canonical import Money

    return PaymentRecord(
        key, order.external_ref, Money(Decimal(amount), "USD"), "card", "shopify_payments", None, order.placed_at
    )


def test_a_new_order_and_its_payments_are_one_commit_and_a_replay_books_nothing_twice(tmp_path: Path) -> None:
    from sqlalchemy import event

    from adapters.erp.sql_contract import erp_payments

    erp = SqlStagingErp(f"sqlite:///{tmp_path / 'erp.db'}")
    erp.create_tables()
    order = order_from_shopify(load_fixture("shopify", "order_discount_multiline.json"), "acme-us")
    customer = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    ref = order.external_ref
    gift, card = _payment(order, f"{ref}:payment:1", "50.00"), _payment(order, f"{ref}:payment:2", "155.65")
    commits: list[object] = []
    event.listen(erp.engine, "commit", lambda conn: commits.append(conn))

    first = erp.push_order(order, customer, None, [gift])  # the gift card alone: not yet the total

    assert first.created and len(first.payments) == 1 and len(commits) == 1  # order, lines and payment together
    with erp.engine.connect() as conn:
        assert conn.execute(select(erp_orders.c.payment_status)).scalar_one() == "partially_paid"
    again = erp.push_order(order, customer, None, [gift, card])  # a replay of that version, with the card too
    assert not again.created and again.payments[0] == first.payments[0]
    with erp.engine.connect() as conn:
        booked = conn.execute(select(erp_payments.c.payment_ref, erp_payments.c.amount)).all()
        assert sorted((r, Decimal(a)) for r, a in booked) == [
            (gift.key, Decimal("50.00")),
            (card.key, Decimal("155.65")),
        ]
        assert conn.execute(select(erp_orders.c.payment_status)).scalar_one() == "paid"
    erp.close()


def test_on_postgresql_a_new_order_is_sent_in_one_go_and_a_refusal_or_a_race_leaves_one_whole_order(  # type: ignore[no-untyped-def]
    pg_databases, monkeypatch
) -> None:
    import dataclasses

    import pytest

    from adapters.erp import PermanentErpError, sql
    from adapters.erp.sql_contract import erp_order_lines, erp_payments, metadata
    from adapters.prepared import Sent

    erp = SqlStagingErp(pg_databases[1])
    erp.create_tables()
    with erp.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())

    def counts() -> tuple[int, int, int]:
        with erp.engine.connect() as conn:
            return tuple(  # type: ignore[return-value]
                conn.execute(select(text("count(*)")).select_from(table)).scalar_one()
                for table in (erp_orders, erp_order_lines, erp_payments)
            )

    order = order_from_shopify(load_fixture("shopify", "order_discount_multiline.json"), "acme-us")
    customer = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    ref, lines = order.external_ref, len(order.lines)
    paid = _payment(order, f"{ref}:payment:1", "205.65")

    # The last line too long for its column: refused where the statements end, and the order sent before it goes too
    too_long = dataclasses.replace(order.lines[-1], sku="S" * 200)
    with pytest.raises(PermanentErpError, match="value too long"):
        erp.push_order(dataclasses.replace(order, lines=(*order.lines[:-1], too_long)), customer, None, [paid])
    assert counts() == (0, 0, 0)

    # Another worker's write of the same order lands between this one's read and its write: the insert is refused
    # as a whole, and the second pass finds the order and books nothing twice
    written = erp.push_order(order, customer, None, [paid])
    assert written.created and counts() == (1, lines, 1)
    real, reads = sql._ORDER_VERSION.send, []

    def blind_once(conn, params):  # type: ignore[no-untyped-def]
        reads.append(params)
        return Sent(lambda: []) if len(reads) == 1 else real(conn, params)

    monkeypatch.setattr(sql._ORDER_VERSION, "send", blind_once)
    again = erp.push_order(order, customer, None, [paid])
    assert len(reads) == 2 and not again.created
    assert (again.erp_ref, again.payments) == (written.erp_ref, written.payments)
    assert counts() == (1, lines, 1)
    erp.close()
