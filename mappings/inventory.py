"""What a store may sell: the ERP's stock less what is promised, kept back and shared (pure).

For one SKU at one store location:
    sellable = floor((Σ on hand in the location's warehouses − reserved − safety stock) × share)
never below zero. `reserved` is what orders already took that the ERP's figure does not show yet
(orders placed after the ERP last counted the SKU); `share` is the store's allocation of a
warehouse that several stores sell from. Rounding down means the shares never add up to more than
the stock: the last unit goes to nobody rather than to two buyers.
"""
from __future__ import annotations

import math
from decimal import Decimal


def sellable(on_hand: Decimal, reserved: Decimal, safety_stock: Decimal, share: Decimal = Decimal(1)) -> int:
    free = on_hand - reserved - safety_stock
    if free <= 0 or share <= 0:
        return 0
    return max(0, math.floor(free * min(share, Decimal(1))))
