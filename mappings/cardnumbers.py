"""Card numbers and security codes: found and masked before anything is stored, logged or reported.

The platforms send none (Shopify dropped `payment_details` from orders and their webhooks in 2023-04;
a transaction's card number comes masked, `•••• •••• •••• 4242`; WooCommerce orders carry the gateway,
its title and `transaction_id`). A full number can still arrive in text someone typed or a plugin
wrote: a checkout field in `note_attributes`, a line item property, a gateway plugin's `meta_data`.
Pure, no I/O: the receiver masks a body before its inbox row is written, the log and Sentry filters
mask their text, and a test can check any stored value with `find`.

What counts as a card number (PAN), and how look-alikes are left alone:
- 13 to 19 digits whose first digits and length are a card network's (Visa 4: 13, 16, 19; Mastercard
  51–55 and 2221–2720: 16; Amex 34, 37: 15; Diners 30, 36, 38, 39: 14–19; JCB 35: 16–19; Maestro,
  Discover, UnionPay, RuPay 50, 56–69: 13–19) and whose check digit is right (Luhn). A run starting
  with 0, 1, 7, 8 or 9 is no card: national phone numbers (0…), North American GTINs (0…, 1…).
- Written without separators, or grouped as cards are (4-4-4-4…, Amex 4-6-5, Diners 4-6-4) by spaces
  or dashes; `402-1234567-1234567` (a marketplace order number) or `555-123-4567` is not.
- Not part of a longer run of digits, letters or a path: not after `+` (a phone), `/` (a Shopify gid,
  a URL), a letter or `_` (a token).
- 13 digits that are also a valid EAN-13 are a barcode (13-digit Visa numbers are no longer issued).
- In a payload only strings are read (ids and amounts are JSON numbers), and never the fields that
  hold identifiers (`id`, `*_id`, `sku`, `barcode`, tokens, phones).
A field named like a security code (`cvv`, `cvc`, `security_code`, `card_code`, …; not Shopify's
`cvv_result_code`, a one-letter result) loses its value whatever it holds, and one named like a card
number (`card_number`, `cc_number`, `pan`) keeps only its last four digits whatever their check digit.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import orjson

MASK = "•"
# Shaped like a card: 13 or more digits, alone or in groups split by one space or dash, first digit 2–6
# (longer grouped runs too: a number followed by its expiry is a card number and two more groups).
_RUN = r"(?<![0-9A-Za-z_/+])(?<![0-9][ -])[2-6](?:[ -]?[0-9]){12,30}(?![ -]?[0-9])(?![A-Za-z_])"
_CANDIDATE = re.compile(_RUN)
_SEPARATORS = re.compile(r"[ -]")
# The receiver's quick look at a whole body, in C-speed passes (a Python regex over 15 kB costs more than
# the rest of a delivery). First one translation of it for every pattern below: letters in lower case, digits
# as "0", spaces and dashes dropped (a field's name then matches with or without them, which may only find more).
_LOOK = bytes(ord("0") if c in b"0123456789" else c + 32 if 65 <= c <= 90 else c for c in range(256))
# Names of security-code and card-number fields. Split in three: a pattern that starts with one literal ("c")
# is searched at C speed, an alternation of several is tried at every byte (ten times slower on 15 kB); and
# the two words as patterns too, whose search beats `in` (3 us against 6).
_NAMED = re.compile(rb"c(?:v[vcn]|sc|ard.?(?:n[ou]|code|verif)|c.?num)")
_SECUR, _PAN = re.compile(rb"secur"), re.compile(rb'"pan"')
# A run of 13 or more digits that the loop over the runs would look at: one not after "/" (a gid) and not a
# JSON number (after ":", "[" or ",", and before ",", "}" or "]"). Most bodies have none: their long runs are
# all ids. The pattern starts with 13 literal "0"s so that the regex engine skips ahead to them; the
# lookbehinds then see the byte before.
_THIRTEEN = b"0" * 13
_LOOKED_AT = re.compile(
    _THIRTEEN + rb"(?:(?<![0/:,\[]" + _THIRTEEN + rb")|(?<=[:,\[]" + _THIRTEEN + rb")(?=0*(?:[^0,}\]]|\Z)))"
)
# The loop's own view: digits, spaces and dashes become "0", anything else "."; a run of 13 "0"s is where a
# card number could be.
_DIGITISH = bytes(ord("0") if c in b"0123456789 -" else ord(".") for c in range(256))
# A security code written out in text ("CVV: 123"): the digits after the word.
_THREE_DIGITS = re.compile(r"[0-9]{3}")  # the least either needs: a quick way past most text
_CVV_TEXT = re.compile(r"(?i)\b(?:cvv2?|cvc2?|cvn|csc|security code)\b\W{0,3}(\d{3,4})\b")

# (first digits, lengths) of the networks; longest prefix first is not needed: the ranges do not overlap.
_NETWORKS: tuple[tuple[range, int, frozenset[int]], ...] = (
    (range(4, 5), 1, frozenset({13, 16, 19})),  # Visa
    (range(51, 56), 2, frozenset({16})),  # Mastercard
    (range(2221, 2721), 4, frozenset({16})),  # Mastercard's 2-series
    (range(34, 35), 2, frozenset({15})),  # American Express
    (range(37, 38), 2, frozenset({15})),
    (range(30, 31), 2, frozenset(range(14, 20))),  # Diners Club
    (range(36, 37), 2, frozenset(range(14, 20))),
    (range(38, 40), 2, frozenset(range(14, 20))),
    (range(35, 36), 2, frozenset(range(16, 20))),  # JCB
    (range(50, 51), 2, frozenset(range(13, 20))),  # Maestro
    (range(56, 70), 2, frozenset(range(13, 20))),  # Maestro, Discover, UnionPay, RuPay
)
# Groups a person or a form writes a card number in.
_GROUPINGS = ((4, 6, 5), (4, 6, 4))

_ID_KEYS = re.compile(r"^(id|.*_id|sku|barcode|gtin|ean|upc|isbn|mpn)$|token|phone")
_CVV_KEYS = re.compile(r"cvv|cvc|cvn|securitycode|cardcode|cardverification")
_PAIR_VALUES = ("value", "display_value")  # WooCommerce meta_data shows a value twice
_PAN_KEYS = re.compile(r"cardnumber|cardnum|cardno|ccnumber|ccnum|^pan$")


def luhn_ok(digits: str) -> bool:
    """The Luhn check digit of a string of digits is right."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def ean13_ok(digits: str) -> bool:
    """A valid EAN-13 (GTIN-13): weights 1 and 3 from the left, then the check digit."""
    if len(digits) != 13:
        return False
    total = sum((ord(c) - 48) * (3 if i % 2 else 1) for i, c in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == ord(digits[12]) - 48


def _network_length(digits: str) -> bool:
    return any(int(digits[:width]) in first and len(digits) in lengths for first, width, lengths in _NETWORKS)


def _grouped_like_a_card(text: str) -> bool:
    groups = tuple(len(g) for g in _SEPARATORS.split(text))
    if len(groups) == 1 or groups in _GROUPINGS:
        return True
    return all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4 and len(set(_SEPARATORS.findall(text))) == 1


def is_pan(text: str) -> bool:
    """`text` (digits, perhaps grouped by spaces or dashes) is a card number by the rules above."""
    digits = _SEPARATORS.sub("", text)
    return (
        digits.isdigit()
        and _network_length(digits)
        and _grouped_like_a_card(text)
        and luhn_ok(digits)
        and not ean13_ok(digits)
    )


def _card_in(run: str) -> str | None:
    """The card number a run of digits starts with: the whole run, or for a grouped one the run without its
    last groups (`4111 1111 1111 1111 12 26`: a number, then its expiry), or None."""
    if is_pan(run):
        return run
    ends = [m.start() for m in _SEPARATORS.finditer(run)]
    return next((run[:end] for end in reversed(ends) if is_pan(run[:end])), None)


def find(text: str) -> list[str]:
    """The card numbers in a text, as written."""
    return [card for m in _CANDIDATE.finditer(text) if (card := _card_in(m.group(0)))]


def _masked(number: str) -> str:
    """Every digit but the last four masked, the rest kept: `•••• •••• •••• 4242`, as Shopify shows one."""
    keep = sum(c.isdigit() for c in number) - 4
    out = []
    for char in number:
        if char.isdigit() and keep > 0:
            out.append(MASK)
            keep -= 1
        else:
            out.append(char)
    return "".join(out)


def _mask_run(run: str) -> str:
    card = _card_in(run)
    return run if card is None else _masked(card) + run[len(card) :]


def mask(text: str) -> str:
    """The text with each card number in it masked (last four digits kept), and any security code written
    after its name (`CVV: 123` becomes `CVV: •••`)."""
    if len(text) < 7 or not _THREE_DIGITS.search(text):
        return text
    text = _CVV_TEXT.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + MASK * len(m.group(1)), text)
    return text if len(text) < 13 else _CANDIDATE.sub(lambda m: _mask_run(m.group(0)), text)


@functools.lru_cache(maxsize=4096)
def _field(key: str) -> str:
    """What a field's name says it holds: "cvv", "pan", "id", or "" for anything else."""
    normal = re.sub(r"[^a-z0-9]", "", key.lower())
    if _CVV_KEYS.search(normal) and "result" not in normal:
        return "cvv"
    if _PAN_KEYS.search(normal):
        return "pan"
    return "id" if _ID_KEYS.search(key.lower()) else ""


def _where(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


def _clean(value: Any, key: str, path: tuple[str | int, ...], found: list[str]) -> Any:
    field = _field(key) if key else ""
    if field == "cvv" and value not in (None, ""):
        found.append(_where(path))
        return MASK * 3
    if isinstance(value, dict):
        # A name/value pair (Shopify note_attributes and line item properties, WooCommerce meta_data):
        # the value is read as if its field were called by the pair's name.
        named = value.get("key", value.get("name"))
        name = named if isinstance(named, str) else None
        return {
            k: _clean(v, name if name is not None and k in _PAIR_VALUES else k, (*path, k), found)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_clean(v, key, (*path, i), found) for i, v in enumerate(value)]
    if isinstance(value, str) and len(value) >= 7 and field != "id":
        if field == "pan" and sum(c.isdigit() for c in value) >= 12:
            found.append(_where(path))
            return _masked(value)
        masked = mask(value)
        if masked != value:
            found.append(_where(path))
        return masked
    return value


def mask_payload(payload: Any) -> tuple[Any, list[str]]:
    """A copy of a JSON payload with card numbers and security codes masked, and where they were
    (`note_attributes[0].value`); the payload itself when there were none."""
    found: list[str] = []
    cleaned = _clean(payload, "", (), found)
    return (cleaned, found) if found else (payload, found)


def _may_hold_card_data(body: bytes) -> bool:
    look = _look(body)
    if _NAMED.search(look) or _SECUR.search(look) or _PAN.search(look):
        return True
    return _LOOKED_AT.search(look) is not None and _runs_hold_card_data(body)


def _look(body: bytes) -> bytes:
    return body.translate(_LOOK, b" -")


def _runs_hold_card_data(body: bytes) -> bool:
    """A run of 13 or more digits, perhaps with spaces and dashes, that holds a card number (ids and gids aside)."""
    digitish = body.translate(_DIGITISH)
    start = digitish.find(_THIRTEEN)
    while start != -1:
        end = digitish.find(b".", start)
        end = len(body) if end == -1 else end
        if len(body[start:end].translate(None, b" -")) < 13:  # indentation, a phone number: too few digits
            start = digitish.find(_THIRTEEN, end)
            continue
        # With the two bytes before it and the one after: what the card-number pattern looks behind and ahead.
        # Between `:` and `,` it is a JSON number (an id), which no card number is sent as; after `/`, a gid.
        before, after = body[start - 1 : start], body[end : end + 1]
        skip = before == b"/" or (before in (b":", b"[", b",") and after in (b",", b"}", b"]"))
        if not skip and find(body[max(0, start - 2) : end + 1].decode("utf-8", "replace")):
            return True
        start = digitish.find(_THIRTEEN, end)
    return False


def mask_body(body: bytes, payload: object) -> tuple[bytes, list[str]]:
    """The webhook body to store: `body` itself (the same bytes) unless it holds card data, else the
    payload re-serialised with it masked, or for a body that is no JSON its text with numbers masked.
    `payload` is the body parsed (None when it is not JSON). A quick look at the bytes decides first."""
    if not _may_hold_card_data(body):
        return body, []
    if payload is None:
        text = body.decode("utf-8", "surrogateescape")
        masked = mask(text)
        return (masked.encode("utf-8", "surrogateescape"), ["body"]) if masked != text else (body, [])
    cleaned, found = mask_payload(payload)
    return (orjson.dumps(cleaned), found) if found else (body, found)
