"""Card numbers are found wherever a person or a plugin may write one, and look-alikes are left alone."""

from __future__ import annotations

import json
import random

import orjson
import pytest

from mappings import cardnumbers
from mappings.cardnumbers import find, is_pan, luhn_ok, mask, mask_body, mask_payload
from tests.conftest import FIXTURES

# The networks' published test numbers (Stripe's and the networks' own).
TEST_CARDS = {
    "visa": "4242424242424242",
    "visa 13": "4222222222222",
    "visa 19": "4000000000000000006",
    "mastercard": "5555555555554444",
    "mastercard 2-series": "2223003122003222",
    "amex": "378282246310005",
    "diners 14": "36227206271667",
    "discover": "6011111111111117",
    "jcb": "3530111333300000",
    "unionpay": "6200000000000005",
    "maestro": "6759649826438453",
}


def with_check_digit(partial: str) -> str:
    return next(partial + d for d in "0123456789" if luhn_ok(partial + d))


@pytest.mark.parametrize("number", TEST_CARDS.values(), ids=TEST_CARDS.keys())
def test_every_network_s_numbers_are_found(number: str) -> None:
    assert luhn_ok(number) and is_pan(number)
    assert find(f"paid with {number}, thanks") == [number]
    assert mask(f"paid with {number}") == f"paid with {'•' * (len(number) - 4)}{number[-4:]}"


@pytest.mark.parametrize(
    "written",
    ["4242 4242 4242 4242", "4242-4242-4242-4242", "3782 822463 10005", "3622 720627 1667", "4000 0000 0000 0000 006"],
)
def test_numbers_grouped_as_cards_are_written_are_found_and_keep_their_shape(written: str) -> None:
    assert find(f"card: {written}.") == [written]
    masked = mask(written)
    assert masked.endswith(written[-4:]) and len(masked) == len(written)
    assert [i for i, c in enumerate(masked) if c in " -"] == [i for i, c in enumerate(written) if c in " -"]


def test_a_number_followed_by_its_expiry_and_code_is_still_found() -> None:
    text = "4111 1111 1111 1111 12 28 cvv 737"
    assert find(text) == ["4111 1111 1111 1111"]
    assert mask(text) == "•••• •••• •••• 1111 12 28 cvv •••"
    assert mask("CVC2: 9876, security code 123") == "CVC2: ••••, security code •••"


def test_a_wrong_check_digit_is_no_card() -> None:
    assert not luhn_ok("4242424242424241")
    assert find("4242424242424241 4242 4242 4242 4241") == []


@pytest.mark.parametrize(
    "text",
    [
        "5987654321012",  # a Shopify order id (13 digits, starting like Maestro)
        "gid://shopify/Order/4242424242424242",  # a gid: after a slash
        "https://acme.myshopify.com/orders/4242424242424242/authenticate",
        "tok_4242424242424242",  # a token: after a letter or an underscore
        "4242424242424242abc",
        "+44 7700 900123",
        "+4915112345678",  # an international phone, whatever its check digit
        "07700 900123",  # national: starts with 0
        "4006381333931",  # an EAN-13 barcode
        "4006381333924",  # an EAN-13 whose Luhn digit is right too: a barcode, since Visa issues no 13 digits now
        "0012345678905",  # a UPC as GTIN-13
        "402-1234567-1234567",  # a marketplace order number, not grouped as cards are
        "21232-09512356-12342575",
        "42424242424242424242424",  # 23 digits: longer than any card
        "1Z999AA10123456784",  # a UPS tracking number
        "ch_3MmlLrLkdIwHu7ix0snN0B15",  # a Stripe charge id
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert find(text) == [] and mask(text) == text


def test_random_cards_are_all_found_and_random_phones_never() -> None:
    rng = random.Random(16)
    for prefix, length in [("4", 16), ("51", 16), ("2221", 16), ("37", 15), ("6011", 16), ("62", 19)]:
        for _ in range(200):
            number = with_check_digit(
                prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
            )
            grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
            assert find(f"x {number} y {grouped}") == [number, grouped]
    for _ in range(2000):  # E.164 as the stores send phones, and national numbers
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(10, 14)))
        assert find(f"+{digits[:2]} {digits[2:]}") == [] and find("0" + digits) == []


def test_a_payload_keeps_its_ids_and_loses_card_data() -> None:
    payload = {
        "id": 4242424242424242,  # a JSON number: ids and amounts are never read
        "admin_graphql_api_id": "gid://shopify/Order/4242424242424242",
        "note": "Please charge 4242 4242 4242 4242, exp 12/28",
        "note_attributes": [{"name": "CVV", "value": "737"}, {"name": "Card no.", "value": "4242424242424241"}],
        "line_items": [
            {"id": 1, "sku": "4242424242424242", "properties": [{"name": "Gift message", "value": "5555555555554444"}]}
        ],
        "payment_details": {
            "credit_card_number": "•••• •••• •••• 4242",
            "cvv_result_code": "M",
            "credit_card_bin": "424242",
        },
        "meta_data": [{"id": 7, "key": "_wc_gateway_card_cvc", "value": "999"}],
        "billing": {"phone": "4242424242424242"},
    }
    cleaned, found = mask_payload(payload)
    assert found == [
        "note",
        "note_attributes[0].value",
        "note_attributes[1].value",  # named a card number: masked whatever its check digit
        "line_items[0].properties[0].value",
        "meta_data[0].value",
    ]
    assert cleaned["note"] == "Please charge •••• •••• •••• 4242, exp 12/28"
    assert cleaned["note_attributes"] == [
        {"name": "CVV", "value": "•••"},
        {"name": "Card no.", "value": "••••••••••••4241"},
    ]
    assert cleaned["line_items"][0]["properties"][0]["value"] == "••••••••••••4444"
    assert cleaned["meta_data"][0] == {"id": 7, "key": "_wc_gateway_card_cvc", "value": "•••"}
    # What is not card data stays: ids, the SKU, Shopify's own masked number and its result codes, a phone.
    for key in ("id", "admin_graphql_api_id", "payment_details", "billing"):
        assert cleaned[key] == payload[key]
    assert cleaned["line_items"][0]["sku"] == "4242424242424242"
    assert payload["note"].startswith("Please charge 4242")  # the caller's payload is not changed


def test_the_first_pass_of_the_quick_look_passes_no_body_the_loop_would_stop() -> None:
    # The receiver looks at the runs of digits in a body only when one pass at C speed finds one worth it: that
    # pass may only say "none" where the loop over them would find no card number either.
    rng = random.Random(18)
    pieces = [
        *("4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242", "378282246310005", "5987654321012"),
        *(" ", "  ", "-", "/", ":", ",", "[", "]", "}", "{", '"', "x", "+", "\n", "0", "12", "gid://shopify/Order/"),
    ]
    outcomes = {(True, True): 0, (True, False): 0, (False, False): 0}
    for _ in range(20000):
        body = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))).encode()
        first_pass = cardnumbers._LOOKED_AT.search(cardnumbers._look(body)) is not None
        card = cardnumbers._runs_hold_card_data(body)
        assert first_pass or not card, body
        outcomes[first_pass, card] += 1
    assert min(outcomes.values()) > 1000, outcomes  # each case came up often: cards, near misses, ids alone


def test_a_clean_body_is_stored_byte_for_byte() -> None:
    for path in sorted(FIXTURES.rglob("*.json")):  # every realistic order, refund and return we have
        body = path.read_bytes()
        stored, found = mask_body(body, orjson.loads(body))
        assert stored is body and found == [], path


def test_a_body_with_card_data_is_stored_masked() -> None:
    order = json.loads((FIXTURES / "shopify" / "order_guest.json").read_text())
    order["note_attributes"] = [
        {"name": "Card number", "value": "4242 4242 4242 4242"},
        {"name": "cvc", "value": "123"},
    ]
    body = json.dumps(order).encode()
    stored, found = mask_body(body, orjson.loads(body))
    assert found == ["note_attributes[0].value", "note_attributes[1].value"]
    assert b"4242 4242 4242 4242" not in stored and "•••• •••• •••• 4242".encode() in stored
    assert orjson.loads(stored) == {
        **order,
        "note_attributes": [{"name": "Card number", "value": "•••• •••• •••• 4242"}, {"name": "cvc", "value": "•••"}],
    }

    text = b"card=4242424242424242&cvc=123"  # not JSON: its text is masked
    stored, found = mask_body(text, None)
    assert found == ["body"] and stored == "card=••••••••••••4242&cvc=•••".encode()
