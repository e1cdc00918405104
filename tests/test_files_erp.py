"""The file-drop (CSV) ERP back end: whole files only, idempotent writes, a ledger to read back, and
inbound files read by cursor and archived only once the cursor has moved past them."""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import json
import os
import re
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.erp import build_erp
from adapters.erp.base import PaymentRecord, PermanentErpError, RetryableErpError
from adapters.erp.files import ORDER_COLUMNS, SHIPMENT_COLUMNS, STOCK_COLUMNS, FileDropErp, safe_name
from mappings.canonical import Customer, Money, Refund, Shipment, ShipmentLine, StockLevel
from platforms.shopify.mapping import order_from_shopify
from platforms.shopify.refunds import refund_from_shopify
from tests.conftest import load_fixture
from tests.erp_backends.files import FilesHarness

ORDER_FILE = "order-shopify_acme-us_5987654321012.csv"
REF = "shopify:acme-us:5987654321012"


@pytest.fixture
def harness(tmp_path: Path):  # type: ignore[no-untyped-def]
    h = FilesHarness(tmp_path)
    yield h
    h.close()


@pytest.fixture
def order():  # type: ignore[no-untyped-def]
    return order_from_shopify(load_fixture("shopify", "order_discount_multiline.json"), "acme-us")


def read_csv(path: Path, delimiter: str = ",", encoding: str = "utf-8") -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\r\n"), f"{path.name} does not end with a complete row"
    return list(csv.DictReader(io.StringIO(raw.decode(encoding), newline=""), delimiter=delimiter))


def everything(folder: Path) -> list[str]:
    """Every name in a folder tree, dot files included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def pushed(harness: FilesHarness, order):  # type: ignore[no-untyped-def]
    erp = harness.adapter()
    return erp.push_order(order, erp.create_customer(order.customer, "shopify:acme-us:customer:1"))


def payment_of(order, key: str | None = None) -> PaymentRecord:  # type: ignore[no-untyped-def]
    return PaymentRecord(
        key=key or f"{order.external_ref}:payment",
        order_ref=order.external_ref,
        amount=order.totals.total,
        method="card",
        gateway="shopify_payments",
        transaction_ref="tx-1",
        paid_at=datetime(2026, 11, 20, 15, 20, tzinfo=UTC),
    )


# ---- orders out -------------------------------------------------------------------------------


def test_a_pushed_order_is_one_complete_csv_with_its_lines_and_totals(harness, order):
    result = pushed(harness, order)
    assert result.created and result.erp_ref == ORDER_FILE
    assert sorted(os.listdir(harness.outbound)) == ["customer-C000001.csv", ORDER_FILE]
    rows = read_csv(harness.outbound / ORDER_FILE)
    assert list(rows[0]) == list(ORDER_COLUMNS)
    assert [r["line_no"] for r in rows] == ["1", "2", "3"] and {r["line_count"] for r in rows} == {"3"}
    assert [r["sku"] for r in rows] == ["SOCK-MER-M-CHA", "SHOE-TR2-42-SLT", ""]
    assert [(r["quantity"], r["unit_price"], r["line_discount"], r["line_tax"], r["line_total"]) for r in rows] == [
        ("3", "12.50", "3.75", "2.11", "33.75"),
        ("1", "129.00", "12.90", "7.26", "116.10"),
        ("2", "18.75", "3.75", "2.11", "33.75"),
    ]
    head = rows[0]
    assert all({k: r[k] for k in ORDER_COLUMNS[:32]} == {k: head[k] for k in ORDER_COLUMNS[:32]} for r in rows)
    assert (head["external_ref"], head["order_number"], head["currency"], head["customer_id"]) == (
        REF,
        "#1001",
        "USD",
        "C000001",
    )
    assert head["customer_email"] == "dana.whitfield@example.com" and head["ship_to_postal_code"] == "02116"
    amounts = {k: Decimal(head[k]) for k in ("subtotal", "discount_total", "shipping_total", "tax_total", "total")}
    assert amounts == {
        "subtotal": Decimal("204.00"),
        "discount_total": Decimal("20.40"),
        "shipping_total": Decimal("9.95"),
        "tax_total": Decimal("12.10"),
        "total": Decimal("205.65"),
    }
    # the totals reconcile to the cent, from the file alone
    assert sum(Decimal(r["line_total"]) for r in rows) == Decimal("183.60")
    assert (
        amounts["subtotal"] - amounts["discount_total"] + amounts["shipping_total"] + amounts["tax_total"]
        == amounts["total"]
    )
    assert head["version"] == "2026-11-20T15:16:12+00:00" and head["taxes_included"] == "false"
    for column in ("subtotal", "total", "unit_price", "line_total"):  # plain decimal strings, no exponent
        assert all(
            "E" not in r[column].upper() and Decimal(r[column]) == Decimal(r[column]).quantize(Decimal("0.01"))
            for r in rows
        )


def test_pushing_twice_leaves_one_file_and_an_older_version_changes_nothing(harness, order):
    first = pushed(harness, order)
    before = (harness.outbound / ORDER_FILE).read_bytes()
    second = harness.adapter().push_order(order, "C000001")
    assert not second.created and not second.updated and second.erp_ref == first.erp_ref
    assert second.note == "the ERP already has this version"
    older = dataclasses.replace(order, updated_at=order.updated_at - timedelta(hours=1), note="older")
    assert not harness.adapter().push_order(older, "C000001").updated
    assert [n for n in os.listdir(harness.outbound) if n.startswith("order-")] == [ORDER_FILE]
    assert (harness.outbound / ORDER_FILE).read_bytes() == before


def test_an_update_before_pickup_rewrites_the_file(harness, order):
    pushed(harness, order)
    newer = dataclasses.replace(
        order,
        updated_at=order.updated_at + timedelta(hours=1),
        lines=order.lines[:2],
        note="leave at the door\nring twice",
    )
    result = harness.adapter().push_order(newer, "C000001")
    assert result.updated and not result.created and result.erp_ref == ORDER_FILE
    rows = read_csv(harness.outbound / ORDER_FILE)
    assert [r["line_no"] for r in rows] == ["1", "2"]
    assert {r["version"] for r in rows} == {"2026-11-20T16:16:12+00:00"}
    assert {r["note"] for r in rows} == {"leave at the door ring twice"}  # no field spans lines
    view = harness.adapter().get_order(REF)
    assert view.status == "new" and len(view.lines) == 2


def test_an_update_after_pickup_is_noted_in_the_ledger_and_writes_no_file(harness, order):
    pushed(harness, order)
    (harness.outbound / ORDER_FILE).unlink()  # the ERP took it
    newer = dataclasses.replace(order, updated_at=order.updated_at + timedelta(hours=1), lines=order.lines[:1])
    result = harness.adapter().push_order(newer, "C000001")
    assert not result.created and not result.updated
    assert "picked up" in result.note and "recorded, not applied" in result.note and ORDER_FILE in result.note
    assert os.listdir(harness.outbound) == ["customer-C000001.csv"]
    view = harness.adapter().get_order(REF)
    assert view.status == "imported" and len(view.lines) == 3 and view.total == Decimal("205.65")
    # a replay of the same change notes it once
    assert harness.adapter().push_order(newer, "C000001").note == result.note
    ledger = json.loads((harness.state / "orders" / "shopify_acme-us_5987654321012.json").read_text())
    assert [n["version"] for n in ledger["notes"]] == ["2026-11-20T16:16:12+00:00"]


# ---- atomicity ----------------------------------------------------------------------------------


def test_no_temporary_file_is_left_behind(harness, order):
    pushed(harness, order)
    erp = harness.adapter()
    erp.record_payment(payment_of(order))
    erp.cancel_order(REF, "customer")
    for folder in (harness.outbound, harness.state):
        assert not [n for n in everything(folder) if Path(n).name.startswith(".tmp-")]


def test_a_crash_between_write_and_rename_leaves_no_file_and_a_retry_writes_it(harness, order, monkeypatch):
    erp = harness.adapter()
    customer_id = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    real_replace = os.replace

    def crash(src, dst):  # type: ignore[no-untyped-def]
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(RetryableErpError, match="outbound"):
        erp.push_order(order, customer_id)
    assert everything(harness.outbound) == ["customer-C000001.csv"]  # no order file, no temp file
    assert erp.get_order(REF) is None
    monkeypatch.setattr(os, "replace", real_replace)
    assert erp.push_order(order, customer_id).created
    assert len(read_csv(harness.outbound / ORDER_FILE)) == 3


def test_a_full_disk_is_retryable_and_names_the_folder(harness, order, monkeypatch):
    erp = harness.adapter()
    customer_id = erp.create_customer(order.customer, "shopify:acme-us:customer:1")

    def full(fd):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(RetryableErpError, match=rf"outbound folder {harness.outbound} is full"):
        erp.push_order(order, customer_id)
    monkeypatch.undo()
    assert everything(harness.outbound) == ["customer-C000001.csv"]
    assert erp.push_order(order, customer_id).created


def test_an_unavailable_outbound_folder_is_retryable_then_works(harness, order):
    erp = harness.adapter()
    customer_id = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    with harness.down():
        with pytest.raises(RetryableErpError, match=rf"outbound folder {harness.outbound} is missing"):
            erp.push_order(order, customer_id)
        with pytest.raises(RetryableErpError, match="outbound"):
            erp.test_connection()
        with pytest.raises(RetryableErpError, match="outbound"):
            erp.create_customer(order.customer, "another")
    assert erp.get_order(REF) is None
    assert erp.push_order(order, customer_id).created
    assert erp.create_customer(order.customer, "another") == "C000002"  # no id was used up while down
    assert "writing to" in erp.test_connection()


# ---- payments, cancellations, credit notes, customers --------------------------------------------


def test_a_payment_is_one_file_once_and_marks_the_order_paid(harness, order):
    pushed(harness, order)
    erp = harness.adapter()
    first = erp.record_payment(payment_of(order))
    assert first == erp.record_payment(payment_of(order)) == "payment-shopify_acme-us_5987654321012_payment.csv"
    (row,) = read_csv(harness.outbound / first)
    assert row == {
        "payment_key": f"{REF}:payment",
        "order_ref": REF,
        "amount": "205.65",
        "currency": "USD",
        "method": "card",
        "gateway": "shopify_payments",
        "transaction_ref": "tx-1",
        "paid_at": "2026-11-20T15:20:00+00:00",
    }
    view = erp.get_order(REF)
    assert view.paid_total == Decimal("205.65") and view.payment_status == "paid"
    with pytest.raises(PermanentErpError, match="no order shopify:acme-us:404"):
        erp.record_payment(dataclasses.replace(payment_of(order), order_ref="shopify:acme-us:404"))


def test_a_cancellation_is_one_file_and_false_the_second_time(harness, order):
    pushed(harness, order)
    erp = harness.adapter()
    assert erp.cancel_order(REF, "customer changed their mind") is True
    assert erp.cancel_order(REF, "customer changed their mind") is False
    (row,) = read_csv(harness.outbound / "cancel-shopify_acme-us_5987654321012.csv")
    assert (row["order_ref"], row["order_number"], row["reason"]) == (REF, "#1001", "customer changed their mind")
    assert erp.get_order(REF).status == "cancelled"
    later = dataclasses.replace(order, updated_at=order.updated_at + timedelta(hours=2))
    result = erp.push_order(later, "C000001")
    assert not result.updated and "cancelled" in result.note
    with pytest.raises(PermanentErpError, match="import the order first"):
        erp.cancel_order("shopify:acme-us:404", "x")


def test_credit_notes_carry_their_lines_once_and_set_the_refund_status(harness, order):
    pushed(harness, order)
    erp = harness.adapter()
    partial = refund_from_shopify(load_fixture("shopify", "refunds", "refund_partial_line.json"), "acme-us", "USD")
    name = erp.create_credit_note(partial, REF)
    assert (
        name
        == erp.create_credit_note(partial, REF)
        == ("creditnote-shopify_acme-us_5987654321012_refund_9101234567001.csv")
    )
    assert len([n for n in os.listdir(harness.outbound) if n.startswith("creditnote-")]) == 1
    (row,) = read_csv(harness.outbound / name)
    assert (
        row["order_ref"],
        row["total"],
        row["line_no"],
        row["order_line_no"],
        row["sku"],
        row["quantity"],
        row["line_subtotal"],
        row["line_tax"],
        row["restock"],
    ) == (REF, "11.95", "1", "1", "SOCK-MER-M-CHA", "1", "11.25", "0.70", "true")
    assert erp.get_order(REF).payment_status == "partially_refunded"

    amount_only = refund_from_shopify(load_fixture("shopify", "refunds", "refund_amount_only.json"), "acme-us", "USD")
    (row,) = read_csv(harness.outbound / erp.create_credit_note(amount_only, REF))
    assert (row["total"], row["line_count"], row["line_no"], row["sku"]) == ("15.00", "0", "", "")
    rest = Refund(
        source="shopify",
        store="acme-us",
        order_external_id=order.external_id,
        external_id="rest",
        created_at=datetime(2026, 11, 25, tzinfo=UTC),
        currency="USD",
        lines=(),
        shipping=Money(Decimal("0"), "USD"),
        adjustment=Money(Decimal("178.70"), "USD"),
        total=Money(Decimal("178.70"), "USD"),
    )
    erp.create_credit_note(rest, REF)
    view = erp.get_order(REF)
    assert view.credited_total == Decimal("205.65") and view.payment_status == "refunded"


def test_customers_get_our_ids_and_are_matched_by_email_then_phone(harness, order):
    erp = harness.adapter()
    assert erp.find_customer("dana.whitfield@example.com", None) is None
    dana = erp.create_customer(order.customer, "shopify:acme-us:customer:1")
    other = erp.create_customer(
        Customer(email="sam@example.com", first_name="Sam", phone="+1 (617) 555-0142"), "shopify:acme-us:customer:2"
    )
    assert (dana, other) == ("C000001", "C000002")
    assert erp.find_customer(" Dana.Whitfield@EXAMPLE.com ", None) == dana
    assert erp.find_customer("sam@example.com", "+16175550142") == other  # email first
    assert erp.find_customer("nobody@example.com", "+16175550142") == dana  # then phone: the first one holding it
    (row,) = read_csv(harness.outbound / "customer-C000001.csv")
    assert (row["email"], row["phone"], row["name"], row["external_ref"]) == (
        "dana.whitfield@example.com",
        "+16175550142",
        "Dana Whitfield",
        "shopify:acme-us:customer:1",
    )
    with pytest.raises(PermanentErpError, match="no customer email, phone or name"):
        erp.create_customer(Customer(email=None), "x")


def test_concurrent_workers_never_share_a_customer_id(harness, order):
    ids: list[str] = []

    def work() -> None:
        erp = FileDropErp(harness.outbound, harness.inbound)  # one adapter per worker, one ledger
        for _ in range(10):
            ids.append(erp.create_customer(order.customer, "k"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ids) == [f"C{n:06d}" for n in range(1, 41)]
    assert len([n for n in os.listdir(harness.outbound) if n.startswith("customer-")]) == 40


def test_file_names_are_safe_and_never_collide():
    assert safe_name("shopify:acme-us:5987654321012") == "shopify_acme-us_5987654321012"
    names = {safe_name(ref) for ref in ("a:b", "a_b", "A:b", "a~5Fb", "a/b", "a\\b", "é:1")}
    assert len(names) == 7
    assert all(re.fullmatch(r"[a-z0-9._~+-]+", n) for n in names)
    assert sorted(names) == sorted(["a_b", "a~5fb", "~41_b", "a~7e5~46b", "a~2fb", "a~5cb", "~c3~a9_1"])
    long = safe_name("woocommerce:shop:" + "9" * 400)
    assert len(long) == 180 and long != safe_name("woocommerce:shop:" + "9" * 401)


def test_another_delimiter_and_encoding(tmp_path, order):
    h = FilesHarness(tmp_path, delimiter=";", encoding="cp1252")
    erp = h.adapter()
    accented = dataclasses.replace(order, customer=dataclasses.replace(order.customer, first_name="Zoë"))
    erp.push_order(accented, erp.create_customer(accented.customer, "k"))
    rows = read_csv(h.outbound / ORDER_FILE, delimiter=";", encoding="cp1252")
    assert rows[0]["customer_name"] == "Zoë Whitfield" and rows[0]["total"] == "205.65"
    h.seed_stock([StockLevel("SKU-É", "main", Decimal("4.5"), datetime.now(UTC))])
    assert [(s.sku, s.on_hand) for s in erp.stock_changes(None)[0]] == [("SKU-É", Decimal("4.5"))]
    emoji = dataclasses.replace(order, external_id="2", customer=dataclasses.replace(order.customer, first_name="🙂"))
    with pytest.raises(PermanentErpError, match="cp1252"):
        erp.push_order(emoji, "C000001")
    h.close()


def test_build_erp_makes_the_files_back_end(harness):
    erp = build_erp("files", harness.config(), {})
    assert isinstance(erp, FileDropErp) and erp.state == harness.state and erp.outbound == harness.outbound
    with pytest.raises(PermanentErpError, match="erp.inbound"):
        build_erp("files", {"outbound": str(harness.outbound)}, {})
    with pytest.raises(PermanentErpError, match="delimiter"):
        build_erp("files", {**harness.config(), "delimiter": ";;"}, {})
    with pytest.raises(PermanentErpError, match="encoding"):
        build_erp("files", {**harness.config(), "encoding": "klingon"}, {})


# ---- stock and shipments in -----------------------------------------------------------------------


def test_stock_is_read_by_cursor_and_archived_only_once_the_cursor_moved_past(harness):
    erp = harness.adapter()
    at = datetime(2026, 11, 21, 8, tzinfo=UTC)
    harness.seed_stock([StockLevel("A", "main", Decimal(5), at), StockLevel("B", "main", Decimal(0), at)])
    harness.seed_stock([StockLevel("C", "east", Decimal("12.5"), at)])
    first, second = sorted(os.listdir(harness.inbound))
    levels, cursor = erp.stock_changes(None)
    assert [(ln.sku, ln.warehouse, ln.on_hand) for ln in levels] == [
        ("A", "main", Decimal(5)),
        ("B", "main", Decimal(0)),
        ("C", "east", Decimal("12.5")),
    ]
    assert all(ln.updated_at.tzinfo is not None for ln in levels)
    assert cursor == second
    assert sorted(os.listdir(harness.inbound)) == [first, second]  # nothing archived yet
    # a consumer that crashed before saving its cursor reads the same again: nothing lost
    assert erp.stock_changes(None) == (levels, cursor)
    # the next call with the saved cursor: nothing new, cursor unchanged, and now the files are archived
    assert erp.stock_changes(cursor) == ([], cursor)
    assert os.listdir(harness.inbound) == ["archive"]
    assert sorted(os.listdir(harness.inbound / "archive")) == [first, second]
    harness.seed_stock([StockLevel("B", "main", Decimal(3), at)])
    levels, cursor2 = erp.stock_changes(cursor)
    assert [(ln.sku, ln.on_hand) for ln in levels] == [("B", Decimal(3))] and cursor2 > cursor


def test_the_limit_is_met_in_whole_files(harness):
    erp = harness.adapter()
    at = datetime.now(UTC)
    for n in range(3):
        harness.seed_stock([StockLevel(f"S{n}-{i}", "", Decimal(i), at) for i in range(2)])
    levels, cursor = erp.stock_changes(None, limit=3)
    assert [ln.sku for ln in levels] == ["S0-0", "S0-1"]  # a second file would pass the limit
    levels, cursor = erp.stock_changes(cursor, limit=1)
    assert [ln.sku for ln in levels] == ["S1-0", "S1-1"]  # one file is never split, even past the limit
    levels, cursor = erp.stock_changes(cursor)
    assert [ln.sku for ln in levels] == ["S2-0", "S2-1"]


def test_temporary_dot_and_other_files_are_ignored(harness):
    erp = harness.adapter()
    rows = [STOCK_COLUMNS, ("A", "", "1", "2026-11-21T08:00:00Z")]
    harness.drop_inbound("stock", rows, name="stock-20261121T080000Z.csv")
    for other in (
        ".stock-20261121T090000Z.csv",
        "stock-20261121T100000Z.csv.part",
        "stock-20261121T110000Z.txt",
        "readme.csv",
        "shipment-20261121T080000Z.csv",
    ):
        (harness.inbound / other).write_text("half a fi")
    levels, cursor = erp.stock_changes(None)
    assert [ln.sku for ln in levels] == ["A"] and cursor == "stock-20261121T080000Z.csv"
    assert levels[0].updated_at == datetime(2026, 11, 21, 8, tzinfo=UTC)


def test_a_bom_header_case_extra_columns_and_blank_lines_are_fine(harness):
    name = "stock-20261121T080000Z-0001.csv"
    (harness.inbound / name).write_bytes(
        "\ufeffSKU,Warehouse,On_Hand,Updated_At,Comment\r\nA,main,7,2026-11-21T08:00:00Z,ok\r\n\r\n".encode()
    )
    levels, cursor = harness.adapter().stock_changes(None)
    assert [(ln.sku, ln.warehouse, ln.on_hand) for ln in levels] == [("A", "main", Decimal(7))] and cursor == name


def test_shipments_are_grouped_by_ref_with_sorted_lines(harness, order):
    erp = harness.adapter()
    rows = [
        SHIPMENT_COLUMNS,
        (
            "SHIP-1",
            REF,
            "UPS",
            "1Z1",
            "https://ups.example/1Z1",
            "2026-11-21T10:00:00+01:00",
            "main",
            "2",
            "SHOE-TR2-42-SLT",
            "1",
        ),
        (
            "SHIP-1",
            REF,
            "UPS",
            "1Z1",
            "https://ups.example/1Z1",
            "2026-11-21T10:00:00+01:00",
            "main",
            "1",
            "SOCK-MER-M-CHA",
            "3",
        ),
        ("SHIP-2", REF, "", "", "", "2026-11-22T10:00:00", "", "1", "SOCK-MER-M-CHA", "2"),
    ]
    name = harness.drop_inbound("shipment", rows)
    shipments, cursor = erp.shipments(None)
    assert cursor == name
    assert [(s.ref, [(ln.sku, ln.quantity) for ln in s.lines]) for s in shipments] == [
        ("SHIP-1", [("SOCK-MER-M-CHA", 3), ("SHOE-TR2-42-SLT", 1)]),
        ("SHIP-2", [("SOCK-MER-M-CHA", 2)]),
    ]
    one = shipments[0]
    assert (one.order_ref, one.carrier, one.tracking_number, one.warehouse) == (REF, "UPS", "1Z1", "main")
    assert one.shipped_at == datetime(2026, 11, 21, 9, tzinfo=UTC)
    assert shipments[1].shipped_at == datetime(2026, 11, 22, 10, tzinfo=UTC)  # no zone: UTC
    assert erp.shipments(cursor) == ([], cursor)
    assert os.listdir(harness.inbound / "archive") == [name]


@pytest.mark.parametrize(
    "rows, problem",
    [
        ([STOCK_COLUMNS, ("A", "main", "five", "2026-11-21T08:00:00Z")], r"line 2: on_hand 'five' is not a number"),
        ([STOCK_COLUMNS, ("A", "main", "5", "yesterday")], r"line 2: updated_at 'yesterday' is not an ISO-8601"),
        (
            [STOCK_COLUMNS, ("A", "main", "5", "2026-11-21T08:00:00Z"), ("", "main", "5", "2026-11-21T08:00:00Z")],
            r"line 3: sku is empty",
        ),
        ([STOCK_COLUMNS, ("A", "main", "5")], r"line 2: 3 fields where the header has 4"),
        ([("sku", "qty")], r"line 1: missing column\(s\) warehouse, on_hand, updated_at"),
    ],
)
def test_a_malformed_stock_file_is_a_permanent_error_naming_file_and_line(harness, rows, problem):
    name = harness.drop_inbound("stock", rows)
    with pytest.raises(PermanentErpError, match=rf"{name} {problem}"):
        harness.adapter().stock_changes(None)
    assert os.listdir(harness.inbound) == [name]  # left where it is, for a person to fix


def test_good_files_before_a_malformed_one_still_come_through(harness):
    erp = harness.adapter()
    good = harness.drop_inbound("stock", [STOCK_COLUMNS, ("A", "", "1", "2026-11-21T08:00:00Z")])
    bad = harness.drop_inbound("stock", [STOCK_COLUMNS, ("B", "", "-", "2026-11-21T08:00:00Z")])
    levels, cursor = erp.stock_changes(None)
    assert [ln.sku for ln in levels] == ["A"] and cursor == good
    with pytest.raises(PermanentErpError, match=bad):
        erp.stock_changes(cursor)
    (harness.inbound / bad).unlink()  # the ERP team fixes it: a corrected file under a new name
    harness.drop_inbound("stock", [STOCK_COLUMNS, ("B", "", "2", "2026-11-21T08:00:00Z")])
    assert [ln.sku for ln in erp.stock_changes(cursor)[0]] == ["B"]


def test_malformed_shipments_and_bad_bytes_are_permanent(harness):
    erp = harness.adapter()
    head = ("SHIP-1", REF, "UPS", "1Z1", "", "2026-11-21T10:00:00Z", "main")
    name = harness.drop_inbound("shipment", [SHIPMENT_COLUMNS, (*head, "1", "A", "1.5")])
    with pytest.raises(PermanentErpError, match=rf"{name} line 2: quantity '1.5' is not a whole number"):
        erp.shipments(None)
    (harness.inbound / name).unlink()
    name = harness.drop_inbound(
        "shipment",
        [SHIPMENT_COLUMNS, (*head, "1", "A", "1"), ("SHIP-1", "shopify:acme-us:2", *head[2:], "2", "B", "1")],
    )
    with pytest.raises(PermanentErpError, match=rf"{name} line 3: shipment SHIP-1 has rows that disagree"):
        erp.shipments(None)
    (harness.inbound / name).unlink()
    (harness.inbound / "shipment-9.csv").write_bytes(",".join(SHIPMENT_COLUMNS).encode() + b"\r\n\xff\xfe\r\n")
    with pytest.raises(PermanentErpError, match="shipment-9.csv is not valid utf-8"):
        erp.shipments(None)


def test_a_foreign_cursor_is_refused_and_a_missing_inbound_is_retryable(harness):
    erp = harness.adapter()
    with pytest.raises(PermanentErpError, match="reset the sync cursor"):
        erp.stock_changes("2026-11-21T08:00:00+00:00|SKU|main")
    with pytest.raises(PermanentErpError, match="reset the sync cursor"):
        erp.shipments("stock-1.csv")
    harness.inbound.rmdir()
    with pytest.raises(RetryableErpError, match=rf"inbound folder {harness.inbound} is missing"):
        erp.stock_changes(None)


def test_the_harness_plays_the_erp(harness, order):
    pushed(harness, order)
    harness.seed_shipment(
        Shipment(
            ref="S1",
            order_ref=REF,
            lines=(ShipmentLine("SOCK-MER-M-CHA", 3),),
            shipped_at=datetime(2026, 11, 21, tzinfo=UTC),
            carrier="UPS",
        )
    )
    erp = harness.adapter()
    (shipment,), cursor = erp.shipments(None)
    assert (shipment.ref, shipment.carrier, shipment.lines) == ("S1", "UPS", (ShipmentLine("SOCK-MER-M-CHA", 3),))
    with harness.down():
        assert harness.outbound.is_file()
        assert erp.get_order(REF).status == "new"  # read from the ledger, while the share is away
    assert harness.outbound.is_dir() and ORDER_FILE in os.listdir(harness.outbound)
