"""The usual receiver we compare against: verify the HMAC, then enqueue the payload to RQ.

No inbox table, no dedupe: the webhook payload itself travels through Redis to a worker.
Env: REDIS_URL, WEBHOOK_SECRET.
"""

from __future__ import annotations

import os

from flask import Flask, request
from redis import Redis
from rq import Queue

from platforms.signatures import verify  # the very same HMAC check the connector runs

SECRET = os.environ["WEBHOOK_SECRET"]
queue = Queue("naive-webhooks", connection=Redis.from_url(os.environ["REDIS_URL"]))
app = Flask(__name__)


def process_order(payload: dict) -> None:
    """What a worker would run on the payload; no worker runs during the benchmark."""


@app.post("/webhooks/shopify/<store>")
def shopify(store: str) -> tuple[str, int]:
    body = request.get_data()
    if not verify(SECRET, body, request.headers.get("X-Shopify-Hmac-Sha256")):
        return "bad signature", 401
    queue.enqueue(process_order, request.get_json())  # the parsed order, as most tutorials do
    return "ok", 200
