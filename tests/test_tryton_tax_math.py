"""The mirror of Tryton's sale tax arithmetic (adapters.erp.tryton_tax) and the pure tax choices of refund
lines (adapters.erp.tryton_lines), checked against figures worked out by hand with Tryton 8.2's rules
(account.tax TaxableMixin): no Tryton needed."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from adapters.erp.tryton_lines import booked_fee_taxes, tax_inside
from adapters.erp.tryton_tax import TaxableLine, TrytonTax, tax_corrections, tryton_tax_amounts
from mappings.canonical import Money, RefundFee

CENT = D("0.01")
MA = TrytonTax(1, "MA State Tax", D("0.0625"))
GST, PST = TrytonTax(2, "GST", D("0.05")), TrytonTax(3, "PST", D("0.07"))
TAXES = {t.id: t for t in (MA, GST, PST)}


def test_per_document_rounds_the_sum_and_per_line_each_line():
    lines = [TaxableLine(D("0.10"), D(1), (1,))] * 3  # 0.00625 a line
    assert tryton_tax_amounts(lines, TAXES, "document", CENT) == {1: D("0.02")}  # 0.01875
    assert tryton_tax_amounts(lines, TAXES, "line", CENT) == {1: D("0.03")}


def test_negative_lines_are_rounded_apart_from_positive_ones():
    lines = [TaxableLine(D("0.10"), D(1), (1,)), TaxableLine(D("0.10"), D(-1), (1,))]
    # 0.00625 -> 0.01 and -0.00625 -> -0.01, each group alone: 0, not round(0) of a sum
    assert tryton_tax_amounts(lines, TAXES, "document", CENT) == {1: D("0.00")}
    lines = [TaxableLine(D("0.10"), D(1), (1,)), TaxableLine(D("0.09"), D(-1), (1,))]
    assert tryton_tax_amounts(lines, TAXES, "document", CENT) == {1: D("0.00")}  # 0.01 - 0.01


def test_two_taxes_on_a_line_give_back_what_rounding_both_up_added():
    # 0.30 at 5% = 0.015 -> 0.02 (half-even), at 7% = 0.021 -> 0.02: rounded 0.04 for 0.036 -> the
    # remainder 0.004 rounds to 0.00, nothing to give back
    assert tryton_tax_amounts([TaxableLine(D("0.30"), D(1), (2, 3))], TAXES, "line", CENT) == {
        2: D("0.02"),
        3: D("0.02"),
    }
    # 0.10 at 5% = 0.005 -> 0.00, at 7% = 0.007 -> 0.01: 0.01 for 0.012, remainder -0.002 -> 0.00
    assert tryton_tax_amounts([TaxableLine(D("0.10"), D(1), (2, 3))], TAXES, "line", CENT) == {
        2: D("0.00"),
        3: D("0.01"),
    }


def test_a_correction_line_brings_each_tax_to_the_target():
    lines = [TaxableLine(D("0.10"), D(1), (1,))] * 3
    assert tax_corrections(lines, TAXES, {1: D("0.03")}, "document", CENT) == [(1, D("0.16"))]
    assert tax_corrections(lines, TAXES, {1: D("0.03")}, "line", CENT) == []
    # a refund: the line and its correction are negative, their own group
    back = [TaxableLine(D("0.10"), D(-1), (1,))] * 3
    assert tax_corrections(back, TAXES, {1: D("-0.03")}, "document", CENT) == [(1, D("-0.16"))]


def test_yen_and_fils_steps():
    assert tryton_tax_amounts([TaxableLine(D("333.3333"), D(3), (1,))], TAXES, "document", D(1)) == {1: D("62")}
    assert tryton_tax_amounts([TaxableLine(D("7.777"), D(1), (1,))], TAXES, "document", D("0.001")) == {
        1: D("0.486")
    }  # 0.4860625


def test_a_zero_rate_cannot_carry_tax():
    zero = {9: TrytonTax(9, "Exempt", D(0))}
    with pytest.raises(ValueError, match="rate 0"):
        tax_corrections([TaxableLine(D("10"), D(1), (9,))], zero, {9: D("1.00")}, "document", CENT)


def test_the_tax_inside_refunded_shipping_is_the_stores_tax_of_its_net():
    # 9.95 + MA 6.25% 0.621875 -> 0.62 = 10.57; 10.57 / 1.0625 = 9.948... -> 9.95, so 0.62 again
    assert tax_inside(D("10.57"), (1,), TAXES, CENT) == D("0.62")
    # GST 5% + PST 7% on 10.00: 0.50 + 0.70 = 11.20 -> 1.20 for both (split by rate later)
    assert tax_inside(D("11.20"), (2, 3), TAXES, CENT) == D("1.20")
    assert tax_inside(D("10.57"), (), TAXES, CENT) == D(0)  # untaxed shipping stays whole


def test_a_refunded_fee_finds_its_order_fee_by_store_line_then_by_kind_and_title():
    booked = [
        {"kind": "tip", "line": "L9", "title": "Tip", "taxes": []},
        {"kind": "duty", "line": "L1", "title": "Duty: Scarf", "taxes": [2]},
        {"kind": "fee", "line": None, "title": "Gift wrap", "taxes": [1]},
    ]

    def fee(kind: str, title: str, line: str | None = None) -> RefundFee:
        return RefundFee(kind, title, Money(D("5.00"), "USD"), Money(D("0.50"), "USD"), line)

    assert booked_fee_taxes(booked, fee("duty", "Duty refunded", "L1")) == (2,)
    assert booked_fee_taxes(booked, fee("fee", "Gift wrap", "7315")) == (1,)  # WooCommerce: no line on the order
    assert booked_fee_taxes(booked, fee("tip", "Tip", "L9")) == ()
    assert booked_fee_taxes(booked, fee("fee", "Rush handling")) is None
    assert booked_fee_taxes(booked, fee("additional_fee", "Gift wrap")) is None  # another kind is another fee
    assert booked_fee_taxes([], fee("fee", "Gift wrap")) is None  # a sale noted before fees' taxes were kept


def test_the_tax_table_names_the_erp_tax_on_goods_shipping_and_fees():
    from mappings.merchant import MerchantTables, apply_tables
    from platforms.woocommerce.mapping import order_from_woocommerce
    from tests.conftest import load_fixture

    order = order_from_woocommerce(load_fixture("woocommerce", "order_processing_coupon.json"), "acme")
    mapped = apply_tables(order, MerchantTables(tax={"Sales tax": "NY Sales Tax"}))
    charged = [t for part in (*mapped.lines, *mapped.shipping_lines, *mapped.fee_lines) for t in part.tax_lines]
    assert charged and {t.code for t in charged} == {"NY Sales Tax"}
    assert {t.code for t in mapped.tax_lines} == {"NY Sales Tax"}
