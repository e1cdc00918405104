"""ERP back ends behind one contract (adapters.erp.base.ErpAdapter)."""

from __future__ import annotations

from typing import Any, TypedDict

from adapters.erp.base import (
    ErpAdapter,
    ErpError,
    ErpUnreachable,
    OrderResult,
    PaymentRecord,
    PermanentErpError,
    RetryableErpError,
)
from adapters.erp.files import FileDropErp
from adapters.erp.rest import RestErp
from adapters.erp.sql import SqlStagingErp
from adapters.erp.tryton import TrytonErp

KINDS = ("sql", "rest", "files", "tryton")
# Every back end's defaults, in seconds (erp.connect_timeout_seconds, erp.timeout_seconds): a server
# that accepts a connection and then says nothing holds an event this long, not a job's whole life.
CONNECT_TIMEOUT = 5.0
CALL_TIMEOUT = 30.0


class _RestLimits(TypedDict):
    """RestErp's timeout and retry keywords, as read from the erp settings."""

    timeout_seconds: float
    connect_timeout_seconds: float
    max_tries: int
    retry_base_seconds: float
    max_wait_seconds: float


def _seconds(settings: dict[str, Any], name: str, default: float) -> float:
    raw = settings.get(name, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not 0 < value <= 600:
        raise PermanentErpError(
            f"erp.{name} must be a number of seconds between 0 and 600, got {raw!r}; fix it on /config"
        )
    return value


def build_erp(kind: str, settings: dict[str, Any], secrets: dict[str, str]) -> ErpAdapter:
    if kind == "sql":
        url = secrets.get("url") or settings.get("url")
        if not url:
            raise PermanentErpError("the sql ERP connection has no url: set erp.url in the configuration")
        return SqlStagingErp(
            url=url,
            lock_timeout=_seconds(settings, "lock_timeout_seconds", 10),
            connect_timeout=_seconds(settings, "connect_timeout_seconds", CONNECT_TIMEOUT),
            statement_timeout=_seconds(settings, "timeout_seconds", CALL_TIMEOUT),
        )
    if kind == "tryton":
        # `url` counts as a secret in the configuration loader (it may carry credentials): read both.
        url = secrets.get("url") or settings.get("url")
        missing = [
            name
            for name, value in (
                ("url", url),
                ("database", settings.get("database")),
                ("username", settings.get("username")),
                ("password", secrets.get("password")),
            )
            if not value
        ]
        if missing:
            raise PermanentErpError(
                f"the tryton ERP connection has no {', '.join(missing)}: set erp."
                f"{', erp.'.join(missing)} in the configuration (password is a secret)"
            )
        return TrytonErp(
            url=str(url),
            database=str(settings["database"]),
            username=str(settings["username"]),
            password=secrets["password"],
            warehouse=settings.get("warehouse"),
            warehouse_names=settings.get("warehouse_names"),
            shipping_product=settings.get("shipping_product", "SHIPPING"),
            tax_product=settings.get("tax_product", "TAX"),
            tip_product=settings.get("tip_product", "TIP"),
            duty_product=settings.get("duty_product", "DUTY"),
            additional_fee_product=settings.get("additional_fee_product", "ADDITIONAL_FEE"),
            fee_product=settings.get("fee_product"),
            payment_term=settings.get("payment_term"),
            confirm=bool(settings.get("confirm", True)),
            owner_category=settings.get("owner_category") or "Owner",
            connect_timeout=_seconds(settings, "connect_timeout_seconds", CONNECT_TIMEOUT),
            read_timeout=_seconds(settings, "read_timeout_seconds", CALL_TIMEOUT),
        )
    if kind == "files":
        missing = [key for key in ("outbound", "inbound") if not settings.get(key)]
        if missing:
            raise PermanentErpError(
                f"the files ERP has no {' or '.join(missing)} folder: set "
                f"{', '.join('erp.' + key for key in missing)} in the configuration"
            )
        return FileDropErp(
            outbound=settings["outbound"],
            inbound=settings["inbound"],
            state=settings.get("state"),
            delimiter=settings.get("delimiter", ","),
            encoding=settings.get("encoding", "utf-8"),
        )
    if kind == "rest":
        auth = settings.get("auth") or {}
        if isinstance(auth, str):  # `auth: bearer` for short
            auth = {"type": auth}
        if not isinstance(auth, dict):
            raise PermanentErpError("erp.auth must be a mapping such as {type: bearer}; fix it on /config")

        def secret(name: str) -> str | None:  # a secret, or (username) a plain setting
            return secrets.get(name) or settings.get(name) or None

        try:
            limits: _RestLimits = {
                "timeout_seconds": _seconds(settings, "timeout_seconds", 10),
                "connect_timeout_seconds": _seconds(settings, "connect_timeout_seconds", CONNECT_TIMEOUT),
                "max_tries": int(settings.get("max_tries", 3)),
                "retry_base_seconds": float(settings.get("retry_base_seconds", 0.25)),
                "max_wait_seconds": float(settings.get("max_wait_seconds", 30)),
            }
        except (TypeError, ValueError) as exc:
            raise PermanentErpError(
                f"an ERP timeout or retry setting is not a number ({exc}); fix it on /config"
            ) from None
        return RestErp(
            str(settings.get("base_url") or secrets.get("base_url") or ""),
            paths=settings.get("paths") or None,
            auth_type=str(auth.get("type") or settings.get("auth_type") or "bearer"),
            auth_header=auth.get("header") or settings.get("auth_header"),
            token=secret("token"),
            username=secret("username"),
            password=secret("password"),
            api_key=secret("api_key"),
            **limits,
        )
    raise PermanentErpError(f"unknown ERP kind {kind!r}; expected one of {', '.join(KINDS)}")


__all__ = [
    "ErpAdapter",
    "ErpError",
    "ErpUnreachable",
    "OrderResult",
    "PaymentRecord",
    "PermanentErpError",
    "RetryableErpError",
    "build_erp",
]
