"""What storefront clients raise."""

from __future__ import annotations


class StorefrontError(Exception):
    """A storefront API call failed; `retryable` says whether the same call may succeed later."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class AccessRevoked(StorefrontError):
    """The store refused our credentials outright (401): the app was uninstalled or the key revoked."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)
