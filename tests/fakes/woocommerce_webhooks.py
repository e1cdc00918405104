"""How the fake WooCommerce sends webhooks (docs/platforms.md#woocommerce-webhooks), apart from its REST API.

Like WooCommerce's Action Scheduler: an event queues a delivery after `delay` seconds unless the same
(webhook, resource) is already pending (so fast writes coalesce); the payload is built when it is sent
(current state); the body is `trim(wp_json_encode(...))` (compact, ASCII, escaped slashes) signed
base64 HMAC-SHA256 with the webhook's secret; headers are X-WC-Webhook-Source/-Topic/-Resource/-Event/
-Signature/-ID/-Delivery-ID (a fresh hash each time, not an event id). No retries: a failure counts, and
the 7th in a row (the count is already > 5) disables the webhook. A new webhook gets an unsigned,
form-encoded ping `webhook_id=<id>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

USER_AGENT = "WooCommerce/9.9.0 Hookshot (WordPress/6.8)"


def php_json(payload: Any) -> bytes:
    """trim(wp_json_encode(...)): compact, ASCII-only, with escaped slashes, like PHP's json_encode."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


class WebhookDispatcher:
    def __init__(
        self,
        webhooks: dict[int, dict],
        resource: Callable[[str, int], dict | None],
        lock: threading.RLock,
        source_url: str,
        delay: float = 0.0,
    ):
        self.webhooks, self.resource, self.lock = webhooks, resource, lock
        self.source_url, self.delay = source_url, delay
        self.deliveries: list[dict] = []  # what was sent: webhook_id, topic, resource_id, delivery_id, status, body
        self.pings: list[dict] = []
        self._queue: queue.Queue[tuple[float, int, str, int]] = queue.Queue()
        self._pending: set[tuple[int, int]] = set()
        self._flush = threading.Event()  # deliver_now(): everything queued is due at once
        self._stopping = False
        self._in_flight = 0
        self._sent = 0
        self._worker = threading.Thread(target=self._loop, name="fake-woo-webhooks", daemon=True)
        self._worker.start()

    def enqueue(self, topic: str, resource_id: int) -> None:
        """Called under the lock, once per resource a request changed."""
        for hook in self.webhooks.values():
            if hook["status"] != "active" or hook["topic"] != topic:
                continue
            if (hook["id"], resource_id) in self._pending:  # an identical action is already scheduled
                continue
            self._pending.add((hook["id"], resource_id))
            self._queue.put((time.monotonic() + self.delay, hook["id"], topic, resource_id))

    def ping(self, hook: dict) -> None:
        threading.Thread(target=self._ping, args=(hook,), daemon=True).start()

    def deliver_now(self) -> None:
        self._flush.set()

    def wait(self, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self._pending and not self._in_flight and self._queue.empty():
                    return
            time.sleep(0.01)
        raise TimeoutError("webhook deliveries still pending")

    def stop(self) -> None:
        self._stopping = True  # queued deliveries are dropped, not sent
        self._flush.set()
        self._queue.put((0.0, -1, "", 0))
        self._worker.join(timeout=5)

    def _ping(self, hook: dict) -> None:
        try:  # form-encoded, no X-WC headers, no signature; anything but 200 is an error in WC's admin
            status: int | str = requests.post(
                hook["delivery_url"],
                data={"webhook_id": hook["id"]},
                timeout=5,
                allow_redirects=False,
                headers={"User-Agent": USER_AGENT},
            ).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        with self.lock:
            self.pings.append({"webhook_id": hook["id"], "url": hook["delivery_url"], "status": status})

    def _loop(self) -> None:
        while True:
            due, wid, topic, resource_id = self._queue.get()
            while not self._flush.is_set() and time.monotonic() < due:
                self._flush.wait(due - time.monotonic())
            if wid < 0 or self._stopping:
                return
            with self.lock:
                self._pending.discard((wid, resource_id))
                if not self._pending:
                    self._flush.clear()
                hook = self.webhooks.get(wid)
                resource = self.resource(topic, resource_id)
                if hook is None or hook["status"] != "active" or resource is None:
                    continue
                self._in_flight += 1
                self._sent += 1
                body = php_json(resource)  # built now, at delivery time, not when the event fired
                delivery_id = hashlib.md5(f"{wid}{time.time()}{self._sent}".encode()).hexdigest()
                secret, url = hook["secret"], hook["delivery_url"]
            signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
            resource_name, _, event = topic.partition(".")
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "X-WC-Webhook-Source": f"{self.source_url}/",
                "X-WC-Webhook-Topic": topic,
                "X-WC-Webhook-Resource": resource_name,
                "X-WC-Webhook-Event": event,
                "X-WC-Webhook-Signature": signature,
                "X-WC-Webhook-ID": str(wid),
                "X-WC-Webhook-Delivery-ID": delivery_id,
            }
            try:
                status: int | str = requests.post(
                    url, data=body, headers=headers, timeout=60, allow_redirects=False
                ).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            with self.lock:
                self.deliveries.append(
                    {
                        "webhook_id": wid,
                        "topic": topic,
                        "resource_id": resource_id,
                        "delivery_id": delivery_id,
                        "status": status,
                        "body": body,
                    }
                )
                self._in_flight -= 1
                if wid in self.webhooks:
                    if isinstance(status, int) and (200 <= status < 300 or status in (300, 301, 302)):
                        hook["failure_count"] = 0
                    elif hook["failure_count"] > 5:  # woocommerce_max_webhook_delivery_failures
                        hook["status"] = "disabled"
                    else:
                        hook["failure_count"] += 1
