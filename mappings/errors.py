"""Errors a mapping raises: always permanent (the same payload would fail the same way again)."""

from __future__ import annotations


class MappingError(Exception):
    """The payload cannot become a canonical order; the message tells a person what to fix."""
