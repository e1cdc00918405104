"""A synchronous client for the ASGI app (connector.asgi), as tests want one: one event loop for the
client's life, in a thread of its own, as in a served process; answers shaped like Flask's test
client's (status_code, json, is_json)."""
from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class AsgiResponse:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""

    @property
    def is_json(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/json")

    @property
    def json(self) -> dict:
        return json.loads(self.data)

    def get_json(self) -> dict:
        return self.json


class AsgiClient:
    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="asgi-client", daemon=True)
        self._thread.start()

    def run(self, coroutine):  # type: ignore[no-untyped-def]
        """Run a coroutine on the client's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def request(self, method: str, path: str, data: bytes = b"", headers: dict[str, str] | None = None,
                chunks: Iterable[bytes] | None = None) -> AsgiResponse:
        """One HTTP request. `chunks`: the body in pieces and no Content-Length (chunked transfer)."""
        return self.run(self.arequest(method, path, data, headers, chunks))

    def post(self, path: str, data: bytes = b"", headers: dict[str, str] | None = None,
             chunks: Iterable[bytes] | None = None) -> AsgiResponse:
        return self.request("POST", path, data, headers, chunks)

    def get(self, path: str, headers: dict[str, str] | None = None) -> AsgiResponse:
        return self.request("GET", path, b"", headers)

    async def arequest(self, method: str, path: str, data: bytes = b"", headers: dict[str, str] | None = None,
                       chunks: Iterable[bytes] | None = None) -> AsgiResponse:
        url = urlsplit(path)
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        if chunks is None:
            pieces = [data]
            raw_headers.append((b"content-length", str(len(data)).encode()))
        else:
            pieces = list(chunks) or [b""]
        messages = [{"type": "http.request", "body": piece, "more_body": n < len(pieces) - 1}
                    for n, piece in enumerate(pieces)]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": url.path, "raw_path": url.path.encode(), "root_path": "",
                 "query_string": url.query.encode(), "headers": raw_headers,
                 "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 5000)}
        response = AsgiResponse(0)
        parts: list[bytes] = []

        async def receive() -> dict:
            if messages:
                return messages.pop(0)
            await asyncio.Event().wait()  # nothing more to send: as a client that keeps waiting
            raise AssertionError("unreachable")

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                response.status_code = message["status"]
                response.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.app(scope, receive, send)
        response.data = b"".join(parts)
        return response

    def close(self) -> None:
        """Close the app's inbox connection on its loop, then stop the loop."""
        writer = getattr(self.app, "writer", None)
        if writer is not None:
            self.run(writer.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
