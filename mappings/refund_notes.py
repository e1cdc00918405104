"""The note a store refund carries when the connector made it from a credit note the ERP wrote itself.

It is how that refund is recognised afterwards: by the refunds sync after a try whose answer was lost, and
by the refunds/create webhook that follows, which must not credit the ERP a second time.
"""

from __future__ import annotations

PREFIX = "ERP credit note "


def erp_refund_note(ref: str, reason: str = "") -> str:
    return f"{PREFIX}{ref}" + (f" - {reason}" if reason else "")


def names_credit_note(note: str, ref: str) -> bool:
    """Whether a store refund's note is the one we wrote for this ERP credit note."""
    marker = erp_refund_note(ref)
    return note == marker or note.startswith(f"{marker} - ")
