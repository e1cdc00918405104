"""Debian's headless Chromium under Playwright, and the app on a real port with its queue thread running.

Playwright's own browser download (`playwright install`) cannot work here (no internet but the package
registries), so the test drives /usr/bin/chromium from Debian's `chromium` package; scripts/test.sh
installs it when it is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from platforms.signatures import sign

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def ensure_chromium() -> tuple[str | None, str]:
    """(path, "") for Chromium, installing Debian's package if it is missing; (None, why) when it is missing
    and cannot be installed."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, f"{CHROMIUM} is missing and apt-get cannot run here (not root, or not Debian)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()[-300:]
            return None, f"{CHROMIUM} is missing and `{' '.join(command)}` failed: {output}"
    if not os.access(CHROMIUM, os.X_OK):
        return None, f"apt-get installed chromium but {CHROMIUM} is still missing"
    return CHROMIUM, ""


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def live_app(stack) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Serve the stack's app on a free loopback port, with the embedded queue's thread processing jobs
    (as `connector run` does). Yields the base URL."""
    server = make_server("127.0.0.1", 0, stack.app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="live-app", daemon=True)
    stack.rt.queue.start()
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        stack.rt.queue.stop()


@contextlib.contextmanager
def chromium_page(user_data_dir: Path, executable: str = CHROMIUM) -> Iterator:  # type: ignore[type-arg]
    """A page in a fresh Chromium profile (Playwright with Debian's browser, never its own download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            locale="en-GB",
            timezone_id="UTC",
        )
        context.set_default_timeout(15_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # a full-page shot after a jump to #anchor keeps the header on top
    page.screenshot(path=str(path), full_page=True)
    return path


def deliver_shopify_order(base: str, slug: str, secret: str, body: bytes, event_id: str, shop_domain: str = "") -> None:
    """Shopify delivers a signed orders/create for the store `slug` to the running app; it answers 200."""
    delivered = requests.post(
        f"{base}/webhooks/shopify/{slug}",
        data=body,
        timeout=10,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": sign(secret, body),
            "X-Shopify-Shop-Domain": shop_domain or f"{slug}.myshopify.com",
            "X-Shopify-Event-Id": event_id,
            "X-Shopify-Webhook-Id": f"wh-{event_id}",
            "X-Shopify-API-Version": "2026-01",
        },
    )
    assert delivered.status_code == 200, delivered.text
