"""What every fake server shares: a quiet threaded WSGI server on a free loopback port."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server


@dataclass
class Failure:
    """An injected failure: the answer's status and, when set, its Retry-After."""

    status: int
    retry_after: str | None


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        return None


class Served:
    """Serves `app` on 127.0.0.1 in a background thread until `stop()`; `url` is its base URL."""

    def __init__(self, app: Any, name: str):
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
