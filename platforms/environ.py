"""Request headers as both front doors hand them to a receiver: WSGI environ keys."""

from __future__ import annotations

from collections.abc import Mapping

# Headers kept with every delivery, whatever the platform.
KEPT = {"CONTENT_TYPE": "Content-Type", "HTTP_USER_AGENT": "User-Agent"}


def environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def signature_keys(header: str) -> tuple[str, str]:
    """A signature header's environ keys in both styles: "X-Name" and the newer "Name"."""
    return environ_key(header), environ_key(header[2:])


def pick(environ: Mapping[str, str], keys: Mapping[str, str]) -> dict[str, str]:
    """{header name: value} of the environ keys present, then the kept ones."""
    found = {name: environ[key] for key, name in keys.items() if key in environ}
    found.update({name: environ[key] for key, name in KEPT.items() if key in environ})
    return found
