"""How customers are recognised across checkouts: normalised email and phone (pure functions)."""

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
