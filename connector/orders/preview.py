"""Mapping preview: what a payload would become, canonical order and ERP document, writing nothing."""

from __future__ import annotations

from sqlalchemy import select

from adapters.erp import ErpError
from connector.base.models import Store
from connector.base.runtime import Runtime
from connector.orders.lifecycle import merchant_tables
from mappings.canonical_json import order_to_json
from mappings.errors import MappingError
from mappings.merchant import apply_tables
from platforms.registry import platform


def preview_order(rt: Runtime, slug: str, payload: object) -> dict:
    with rt.sessions() as session:
        store = session.scalars(select(Store).where(Store.slug == slug)).first()
    if store is None:
        return {"status": 404, "error": f"no store {slug!r}"}
    try:
        order = apply_tables(platform(store.platform).to_order(payload, slug), merchant_tables(rt, store.id))
    except MappingError as exc:
        return {"error": str(exc)}
    result: dict = {"canonical": order_to_json(order)}
    try:
        erp = rt.erp()
        preview = getattr(erp, "preview_order", None)
        result["erp_kind"] = erp.kind
        result["erp_document"] = preview(order) if preview else None
    except ErpError as exc:
        result["erp_error"] = str(exc)
    return result
