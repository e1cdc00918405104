"""The floor: a Flask app that reads the webhook body and answers 200, doing nothing else."""

from __future__ import annotations

from flask import Flask, request

app = Flask(__name__)


@app.post("/webhooks/shopify/<store>")
def shopify(store: str) -> tuple[str, int]:
    request.get_data()  # read the 15 kB body like the other two apps, so only the work after it differs
    return "ok", 200
