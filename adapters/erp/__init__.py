"""ERP back ends behind one contract (adapters.erp.base.ErpAdapter)."""
from __future__ import annotations

from typing import Any

from adapters.erp.base import (ErpAdapter, ErpError, OrderResult, PaymentRecord, PermanentErpError,
                               RetryableErpError)

KINDS = ("sql",)


def build_erp(kind: str, settings: dict[str, Any], secrets: dict[str, str]) -> ErpAdapter:
    if kind == "sql":
        from adapters.erp.sql import SqlStagingErp

        url = secrets.get("url") or settings.get("url")
        if not url:
            raise PermanentErpError("the sql ERP connection has no url: set erp.url in the configuration")
        return SqlStagingErp(url=url, lock_timeout=float(settings.get("lock_timeout_seconds", 10)))
    raise PermanentErpError(f"unknown ERP kind {kind!r}; expected one of {', '.join(KINDS)}")


__all__ = ["ErpAdapter", "ErpError", "OrderResult", "PaymentRecord", "PermanentErpError", "RetryableErpError",
           "build_erp"]
