"""The attacker's and the careless sender's view of the connector, in one place.

One file a boundary (webhooks, sign-in, logs and Sentry, the API's edges, ERP back ends, config):
each test names the attack or the odd input, and asserts what must hold (nothing erased, leaked or
lost; a 4xx with a message, never a 5xx). Hostile input runs on PostgreSQL too (the `stack` fixture),
since production does. Add the next attack here.
"""
