"""The platform contract's token seam: a platform whose API tokens expire issues and renews them.

The core (connector.base.tokens) keeps the issued token sealed with the store's secrets and makes sure one
process at a time renews it; the platform says whether a store's token is issued at all (else it is a
fixed token the merchant gave) and asks its platform for a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from adapters.grants import Grant


class Tokens(Protocol):
    def issued(self, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> bool:
        """Whether this store's tokens are issued (and renewed) by the platform."""

    def issue(
        self, settings: Mapping[str, Any], secrets: Mapping[str, str], held: Grant | None, now: datetime
    ) -> Grant:
        """A new token: by refreshing `held` where that still works, else afresh."""
