"""The core's side of the platform contract for one event: what a platform's topic handler may ask of
the connector (platforms.base.Core), bound to the event's store and id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.base.clients import sync_client
from connector.base.runtime import Runtime, StoreInfo
from connector.orders import compliance, disconnect, lifecycle, reported
from connector.orders.locations import restock_warehouses
from mappings.canonical import Order, Refund
from mappings.canonical_json import order_to_json
from mappings.merchant import apply_tables
from platforms.base import Named, RiskSource, TransactionSource
from platforms.registry import platform

PRIVACY = {
    "data_request": compliance.data_request,
    "customers_redact": compliance.customers_redact,
    "shop_redact": compliance.shop_redact,
}


class EventCore:
    def __init__(self, rt: Runtime, store: StoreInfo, event_id: int):
        self.rt, self.info, self.event_id = rt, store, event_id
        self.store = store.slug
        self.settings: Mapping[str, Any] = store.settings
        self.has_api = platform(store.platform).has_api(store.settings, store.secrets)

    def client(self) -> Any:
        return sync_client(self.info)

    def take_order(
        self, order: Order, status: str, transactions: TransactionSource | None = None, risk: RiskSource | None = None
    ) -> dict:
        order = apply_tables(order, lifecycle.merchant_tables(self.rt, self.info.id))
        taken = lifecycle.apply_order(self.rt, self.info, order, status, self.event_id, transactions, risk)
        return {"order": order_to_json(order), **taken}

    def take_refund(self, refund: Refund) -> dict:
        return lifecycle.apply_refund(self.rt, self.info, refund, self.event_id)

    def credited(self, order: Order, refund_id: str) -> bool:
        return lifecycle.credited(self.rt, self.info.id, order, refund_id)

    def order_currency(self, order_id: str) -> str | None:
        return lifecycle.order_currency(self.rt, self.info.id, order_id)

    def warehouses_of(self, location_ids: set[str]) -> dict[str, str | None]:
        return restock_warehouses(self.rt, self.info, location_ids)

    def erp_ref_of(self, order_id: str) -> str | None:
        return lifecycle.erp_ref_of(self.rt, self.info.id, order_id)

    def order_as_taken(self, order_id: str) -> tuple[str | None, dict]:
        return lifecycle.order_as_taken(self.rt, self.info.id, order_id)

    def cancel_deleted(self, order_id: str) -> dict:
        return lifecycle.cancel_deleted(self.rt, self.info, order_id, self.event_id)

    def stock_of_item(self, item_id: str, location: str, quantity: int) -> dict:
        return reported.item_reported(self.rt, self.info, item_id, location, quantity)

    def stock_of_product(self, product_id: str, sku: str, managed: bool, quantity: object) -> dict:
        return reported.product_reported(self.rt, self.info, product_id, sku, managed, quantity)

    def privacy(self, request: str, payload: dict, person: Named) -> dict:
        return PRIVACY[request](self.rt, self.info, payload, person, self.event_id)

    def uninstalled(self, payload: dict) -> dict:
        return disconnect.app_uninstalled(self.rt, self.info, payload, self.event_id)
