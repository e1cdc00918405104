"""Reading a stored body: what is refused (NUL, too deep) and what only looks like it."""

import json

import pytest

from mappings.payloads import MAX_DEPTH, UnreadablePayload, read


def _nested(depth: int, leaf: object = "x") -> bytes:
    value: object = leaf
    for _ in range(depth - 1):
        value = {"a": value}
    return json.dumps(value).encode()


def test_a_body_that_spells_backslash_u0000_as_text_holds_no_nul_and_is_read():
    # In JSON "\\u0000" is a backslash followed by the letters u0000, not the escape of a NUL.
    assert read(json.dumps({"note": "C:\\u0000 path"}).encode()) == {"note": "C:\\u0000 path"}


@pytest.mark.parametrize("body", [{"note": "a\x00b"}, {"lines": [{"sku": "x", "name": ["\x00"]}]}, {"k\x00": 1}])
def test_a_nul_anywhere_is_refused_naming_where(body):
    with pytest.raises(UnreadablePayload, match="NUL"):
        read(json.dumps(body).encode())


def test_depth_is_checked_in_a_body_without_any_nul():
    assert read(_nested(MAX_DEPTH - 1))
    with pytest.raises(UnreadablePayload, match="nested more than"):
        read(_nested(MAX_DEPTH + 1))
    with pytest.raises(UnreadablePayload, match="nested more than"):
        read(_nested(MAX_DEPTH + 1, leaf=[1, "two", {"three": None}]))
