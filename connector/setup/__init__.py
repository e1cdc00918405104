"""Setting stores up: configuration as code, connecting a store, its webhooks and "test connection"."""
