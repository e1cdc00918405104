"""How customers are recognised across checkouts: normalised email and phone, and the weaker name and
postcode (pure functions)."""

from __future__ import annotations

import re


def normalise_email(email: str | None) -> str | None:
    """Trimmed and lower-cased: mail providers treat the address case-insensitively in practice."""
    email = (email or "").strip().lower()
    return email if "@" in email else None


def normalise_phone(phone: str | None) -> str | None:
    """Digits only, with a leading + kept (or made from a 00 prefix); None when too short to mean anything."""
    if not phone:
        return None
    text = phone.strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits, text = digits[2:], "+"
    if len(digits) < 6:
        return None
    return ("+" + digits) if text.startswith("+") else digits


def normalise_name(name: str | None) -> str:
    """Case and spacing do not tell two people apart: "Dana  WHITFIELD" is "dana whitfield"."""
    return " ".join((name or "").casefold().split())


def normalise_postcode(postcode: str | None) -> str:
    """Upper-cased without spaces or dashes: "sw1a 1aa" is "SW1A1AA", "12345-6789" is "123456789"."""
    return re.sub(r"[\s-]", "", postcode or "").upper()


def same_person_maybe(name_a: str | None, postcode_a: str | None, name_b: str | None, postcode_b: str | None) -> bool:
    """The weak match: the same name at the same postcode, both known."""
    a, b = normalise_name(name_a), normalise_name(name_b)
    pa, pb = normalise_postcode(postcode_a), normalise_postcode(postcode_b)
    return bool(a and pa and a == b and pa == pb)
