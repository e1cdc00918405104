"""Clients of other systems over the wire (storefronts, ERPs). No business rules."""
