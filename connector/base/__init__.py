"""What every part of the connector stands on: settings, the database and its models, the queue, the
runtime that holds them, sealed secrets, audit, cursors, and the stores' API clients and tokens."""
