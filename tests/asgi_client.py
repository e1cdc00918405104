"""A synchronous client for the ASGI app (connector.web.asgi), as tests want one: httpx's ASGI transport
on one event loop for the client's life, in a thread of its own, as in a served process; answers
shaped like Flask's test client's (status_code, json, is_json)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import httpx


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

    def get_data(self, as_text: bool = False) -> bytes | str:  # as Flask's test response has it
        return self.data.decode("utf-8", "replace") if as_text else self.data


class AsgiClient:
    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="asgi-client", daemon=True)
        self._thread.start()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://connector.test")

    def run(self, coroutine):  # type: ignore[no-untyped-def]
        """Run a coroutine on the client's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def request(
        self,
        method: str,
        path: str,
        data: bytes = b"",
        headers: dict[str, str] | None = None,
        chunks: Iterable[bytes] | None = None,
    ) -> AsgiResponse:
        """One HTTP request. `chunks`: the body in pieces and no Content-Length (chunked transfer)."""
        return self.run(self.arequest(method, path, data, headers, chunks))

    def post(
        self, path: str, data: bytes = b"", headers: dict[str, str] | None = None, chunks: Iterable[bytes] | None = None
    ) -> AsgiResponse:
        return self.request("POST", path, data, headers, chunks)

    def get(self, path: str, headers: dict[str, str] | None = None) -> AsgiResponse:
        return self.request("GET", path, b"", headers)

    async def arequest(
        self,
        method: str,
        path: str,
        data: bytes = b"",
        headers: dict[str, str] | None = None,
        chunks: Iterable[bytes] | None = None,
    ) -> AsgiResponse:
        content = data if chunks is None else _pieces(list(chunks))  # a stream: chunked, no Content-Length
        # Header values as bytes: HTTP carries latin-1 (obs-text), which httpx refuses in a str.
        raw = {k: v.encode("latin-1") for k, v in (headers or {}).items()}
        reply = await self.http.request(method, path, content=content, headers=raw)
        return AsgiResponse(reply.status_code, dict(reply.headers), reply.content)

    def close(self) -> None:
        """Close the app's inbox connection on its loop, then stop the loop."""
        self.run(self.http.aclose())
        writer = getattr(self.app, "writer", None)
        if writer is not None:
            self.run(writer.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


async def _pieces(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
