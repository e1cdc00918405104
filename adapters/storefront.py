"""What storefront clients raise."""
from __future__ import annotations


class StorefrontError(Exception):
    """A storefront API call failed; `retryable` says whether the same call may succeed later."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable
