"""Storefront platforms, each one folder behind one contract (platforms.base).

The core (intake, pipeline, lifecycle, sync, console) names no platform: it asks the registry
(platforms.registry) for the one a store is on. Layers: a platform uses `mappings` and `adapters`,
never `connector`; `connector` uses platforms only through the contract.
"""
