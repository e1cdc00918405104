"""An ERP credit note as a WooCommerce refund request (platforms.woocommerce.refund_request)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from platforms.woocommerce.refund_request import Unplaceable, woo_refund

ORDER = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce" / "order_cod_guest.json").read_text()
)
# 3 x SAV-MRS-300 (line 22140, 25.00 + 5.00 VAT), 1 x HUI-OLV-500 (22141, 12.42 + 2.48), shipping 22142 (4.90 + 0.98)


def credit(lines: list[tuple[str, int, str, bool]], shipping: str = "0") -> dict:
    total = sum((Decimal(a) for _, _, a, _ in lines), Decimal(shipping))
    return {
        "total": str(total),
        "shipping": shipping,
        "lines": [{"sku": s, "quantity": q, "amount": a, "restock": r} for s, q, a, r in lines],
    }


def test_lines_and_shipping_carry_their_tax_and_add_up_to_the_amount() -> None:
    made = woo_refund(
        credit([("SAV-MRS-300", 2, "20.00", True), ("HUI-OLV-500", 1, "14.90", True)], "5.88"), ORDER, [], {}, "n"
    )
    body = made.body
    assert (body["amount"], body["api_refund"], body["api_restock"], made.restocked) == ("40.78", True, True, 3)
    itemised = sum(
        Decimal(e["refund_total"]) + sum((Decimal(t["refund_total"]) for t in e["refund_tax"]), Decimal(0))
        for e in body["line_items"]
    )
    assert itemised == Decimal("40.78")
    soap, oil, ship = body["line_items"]
    assert (soap["id"], soap["quantity"], soap["refund_total"], soap["refund_tax"]) == (
        22140,
        2,
        "16.67",
        [{"id": 3, "refund_total": "3.33"}],
    )
    assert (oil["id"], oil["refund_total"]) == (22141, "12.42")
    assert (ship["id"], "quantity" in ship, ship["refund_total"]) == (22142, False, "4.90")


def test_a_unit_not_back_in_stock_restocks_none_and_one_item_appears_once() -> None:
    made = woo_refund(
        credit([("SAV-MRS-300", 1, "10.00", True), ("SAV-MRS-300", 1, "10.00", False)]), ORDER, [], {}, "n"
    )
    (soap,) = made.body["line_items"]
    assert (soap["quantity"], soap["refund_total"], made.body["api_restock"], made.units, made.restocked) == (
        2,
        "16.66",
        False,
        2,
        0,
    )


def test_the_store_sku_table_and_earlier_refunds_decide_what_is_left() -> None:
    earlier = [
        {
            "amount": "20.00",
            "line_items": [
                {
                    "quantity": -2,
                    "total": "-16.67",
                    "total_tax": "-3.33",
                    "meta_data": [{"key": "_refunded_item_id", "value": "22140"}],
                }
            ],
        }
    ]
    made = woo_refund(credit([("SOAP", 1, "10.00", False)]), ORDER, earlier, {"SAV-MRS-300": "SOAP"}, "n")
    assert made.body["line_items"][0]["quantity"] == 1
    with pytest.raises(Unplaceable, match="2 x SOAP is more than the order has left"):
        woo_refund(credit([("SOAP", 2, "20.00", False)]), ORDER, earlier, {"SAV-MRS-300": "SOAP"}, "n")
    with pytest.raises(Unplaceable, match="more than the 30.78 EUR the order has left"):
        woo_refund(credit([("HUI-OLV-500", 1, "30.79", False)]), ORDER, earlier, {}, "n")
    with pytest.raises(Unplaceable, match="has more decimals than EUR"):
        woo_refund(credit([("HUI-OLV-500", 1, "1.005", False)]), ORDER, [], {}, "n")
