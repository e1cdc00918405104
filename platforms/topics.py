"""What each webhook topic's payload must look like before anything acts on it.

Shopify and WooCommerce sign the body only: the topic header is not covered by the signature, so a
body captured under one topic verifies under any other (docs/platforms.md#only-the-body-is-signed).
Each topic's schema asks for the fields that tell its payload apart from every other topic's, so that
a signed order re-sent as `shop/redact` or `order.deleted` is refused with a reason instead of being
acted on. The shapes are the platforms' documented ones (docs/platforms.md#shopify-webhook-topics and
docs/platforms.md#woocommerce-webhook-topics); unknown fields are let through where the platforms add
fields over time, and refused where the shape is the whole point (`shop/redact`, WooCommerce's
`{"id"}` for a deleted resource).
"""

from __future__ import annotations

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validates_schema

from mappings.errors import MappingError
from platforms.shopify.returns import STATUSES as RETURN_STATUSES


class _Open(Schema):
    class Meta:
        unknown = INCLUDE


class _Closed(Schema):
    class Meta:
        unknown = RAISE


def _id(required: bool = True) -> fields.Integer:
    return fields.Integer(strict=True, required=required)


def _rows() -> fields.List:
    return fields.List(fields.Dict(), required=True)


class Order(_Open):  # Shopify's REST order and WooCommerce's wc/v3 order agree on these
    id = _id()
    line_items = _rows()
    currency = fields.String(required=True)


class ShopifyRefund(_Open):
    id = _id()
    order_id = _id()
    refund_line_items = _rows()


class _LineDelta(_Open):
    id = _id()
    delta = fields.Integer(strict=True, required=True)


class _LineChanges(_Open):
    additions = fields.List(fields.Nested(_LineDelta), load_default=list)
    removals = fields.List(fields.Nested(_LineDelta), load_default=list)


class _OrderEditBody(_Open):
    id = _id()
    order_id = _id()
    line_items = fields.Nested(_LineChanges, load_default=dict)


class ShopifyOrderEdit(_Open):  # orders/edited sends what an edit changed, not the order
    order_edit = fields.Nested(_OrderEditBody, required=True)


class _OrderNamed(_Open):
    id = _id()


class ShopifyReturn(_Open):  # returns/*: the return itself, naming its order one of two ways
    id = _id()
    status = fields.String(required=True)
    order = fields.Nested(_OrderNamed)  # returns/request, approve, decline
    order_id = _id(required=False)  # returns/cancel, close, reopen

    @validates_schema
    def _names_its_order(self, data: dict, **_: object) -> None:
        if str(data.get("status", "")).lower() not in RETURN_STATUSES:
            raise ValidationError(f"not one of {', '.join(RETURN_STATUSES)}", "status")
        if "order" not in data and "order_id" not in data:
            raise ValidationError("a return names its order (order.id or order_id)", "order")


class ShopifyInventoryLevel(_Open):
    inventory_item_id = _id()
    location_id = _id()
    available = fields.Integer(strict=True, required=True, allow_none=True)


class _Customer(_Open):
    id = fields.Integer(strict=True, required=True, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    phone = fields.String(load_default=None, allow_none=True)


class _Compliance(_Open):
    shop_id = _id()
    shop_domain = fields.String(required=True)


class ShopifyDataRequest(_Compliance):
    customer = fields.Nested(_Customer, required=True)
    orders_requested = fields.List(fields.Integer(strict=True), required=True)
    data_request = fields.Dict(required=True)


class ShopifyCustomerRedact(_Compliance):
    customer = fields.Nested(_Customer, required=True)
    orders_to_redact = fields.List(fields.Integer(strict=True), required=True)


class ShopifyShopRedact(_Closed):
    shop_id = _id()
    shop_domain = fields.String(required=True)


class ShopifyShop(_Open):  # app/uninstalled sends the Shop object
    id = _id()
    myshopify_domain = fields.String(required=True)


class WooDeleted(_Closed):
    id = _id()


class WooProduct(_Open):  # a product or a variation (product.* fires for both)
    id = _id()
    sku = fields.String(required=True, allow_none=True)
    manage_stock = fields.Raw(required=True, allow_none=True)  # true, false or "parent" for a variation
    stock_quantity = fields.Raw(required=True, allow_none=True)


# Topics whose payload is a return (platforms.shopify.returns); they need the read_returns scope.
SHOPIFY_RETURN_TOPICS = (
    "returns/request",
    "returns/approve",
    "returns/decline",
    "returns/cancel",
    "returns/close",
    "returns/reopen",
)
# Topics whose payload is the whole order as it stands.
SHOPIFY_ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    }
)
WOO_ORDER_TOPICS = frozenset({"order.created", "order.updated", "order.restored"})
SCHEMAS: dict[tuple[str, str], Schema] = {
    **{("shopify", topic): Order() for topic in SHOPIFY_ORDER_TOPICS},
    ("shopify", "refunds/create"): ShopifyRefund(),
    ("shopify", "orders/edited"): ShopifyOrderEdit(),
    **{("shopify", topic): ShopifyReturn() for topic in SHOPIFY_RETURN_TOPICS},
    ("shopify", "inventory_levels/update"): ShopifyInventoryLevel(),
    ("shopify", "customers/data_request"): ShopifyDataRequest(),
    ("shopify", "customers/redact"): ShopifyCustomerRedact(),
    ("shopify", "shop/redact"): ShopifyShopRedact(),
    ("shopify", "app/uninstalled"): ShopifyShop(),
    **{("woocommerce", topic): Order() for topic in WOO_ORDER_TOPICS},
    ("woocommerce", "order.deleted"): WooDeleted(),
    ("woocommerce", "product.updated"): WooProduct(),
}
COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
# Topics that must name the store they were delivered to, and the field that names it.
SHOP_NAMED_BY = {**dict.fromkeys(COMPLIANCE_TOPICS, "shop_domain"), "app/uninstalled": "myshopify_domain"}


def check(platform: str, topic: str, payload: dict, shop_domain: str | None = None) -> None:
    """Raise MappingError (permanent: the same body fails the same way) unless `payload` has the shape
    of `topic`. Shopify's privacy topics must also name the store they were delivered to."""
    schema = SCHEMAS.get((platform, topic))
    if schema is None:
        return  # no handler acts on it: it is recorded as ignored
    try:
        schema.load(payload)
    except ValidationError as exc:
        raise MappingError(
            f"this body is not a {platform} {topic} payload ({_fields(exc.messages)}); nothing "
            "was done. Only the body is signed, not the topic: a body sent under another topic "
            "than its own may be a replay. Skip the event unless the store confirms it"
        ) from None
    if platform == "shopify" and topic in SHOP_NAMED_BY:
        named = str(payload.get(SHOP_NAMED_BY[topic]) or "").strip().lower()
        if not shop_domain or named != shop_domain.strip().lower():
            raise MappingError(
                f"this {topic} request names the shop {named[:100]!r}, not this store's "
                f"{shop_domain or '(no shop domain configured)'}; nothing was done"
            )


def _fields(messages: object) -> str:
    if not isinstance(messages, dict):
        return str(messages)[:200]
    parts = [f"{str(name)[:40]}: {_first(problem)}" for name, problem in list(messages.items())[:5]]
    return "; ".join(parts)


def _first(problem: object) -> str:
    if isinstance(problem, list) and problem:
        return str(problem[0])[:80]
    if isinstance(problem, dict):
        return _fields(problem)
    return str(problem)[:80]
