"""A Tryton return sale read as the ERP's own credit note (adapters.erp.tryton_returns), with figures worked out by
hand the way Tryton 8.2 holds a return sale (negative quantities and untaxed amounts, tax per document): no
Tryton needed. The real return_sale wizard is in tests/test_erp_contract.py and tests/test_tryton_e2e.py."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from adapters.erp.tryton_returns import ReturnLine, erp_refund
from adapters.erp.tryton_tax import TrytonTax
from mappings.canonical import ErpRefundLine, Money

AT = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
MA = TrytonTax(1, "MA State Tax", D("0.0625"))


def read(total: str, *lines: ReturnLine):  # type: ignore[no-untyped-def]
    return erp_refund(
        "return:7",
        "shopify:acme-us:1",
        "USD",
        D(total),
        list(lines),
        shipping_code="SHIPPING",
        warehouse="WH",
        taxes={MA.id: MA},
        step=D("0.01"),
        created_at=AT,
    )


def test_goods_come_back_restocked_tax_included_and_shipping_apart():
    refund = read(
        "34.48",  # minus Tryton's total: 22.50 + 9.95 untaxed, tax round(32.45 x 0.0625 = 2.028125) = 2.03
        ReturnLine("SOCK", True, D(-2), D("-22.50"), (1,)),
        ReturnLine("SHIPPING", False, D(-1), D("-9.95"), (1,)),
    )
    # 22.50 + 1.40625 -> 23.91 and 9.95 + 0.621875 -> 10.57: 34.48, Tryton's total to the cent
    assert refund.lines == (ErpRefundLine("SOCK", 2, Money(D("23.91"), "USD"), True, "WH"),)
    assert refund.shipping == Money(D("10.57"), "USD")


def test_the_cent_tryton_rounds_otherwise_goes_on_the_largest_line():
    # Three socks of 0.10: per line 0.10625 -> 0.11 each (0.33); Tryton rounds the document's 0.01875 tax to 0.02.
    refund = read(
        "0.32",
        ReturnLine("A", True, D(-1), D("-0.10"), (1,)),
        ReturnLine("B", True, D(-1), D("-0.10"), (1,)),
        ReturnLine("C", True, D(-1), D("-0.10"), (1,)),
    )
    assert [ln.amount.amount for ln in refund.lines] == [D("0.10"), D("0.11"), D("0.11")]
    assert refund.total == Money(D("0.32"), "USD")


def test_services_lines_without_product_and_goods_going_out_are_money_only():
    refund = read(
        "7.00",
        ReturnLine("SOCK", True, D(-1), D("-10.00"), ()),
        ReturnLine("TIP", False, D(-1), D("-2.00"), ()),
        ReturnLine("", False, D(-1), D("-1.00"), ()),
        ReturnLine("SHOE", True, D(1), D("6.00"), ()),  # an exchange: the other size goes out
    )
    assert refund.lines == (
        ErpRefundLine("SOCK", 1, Money(D("10.00"), "USD"), True, "WH"),
        ErpRefundLine("TIP", 0, Money(D("2.00"), "USD"), False, ""),
        ErpRefundLine("", 0, Money(D("1.00"), "USD"), False, ""),
        ErpRefundLine("SHOE", 0, Money(D("-6.00"), "USD"), False, ""),
    )
