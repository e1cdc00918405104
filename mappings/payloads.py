"""Reading a stored webhook body into a payload, refusing what no handler can safely take.

Every body whose signature verified is stored as it came, whatever it holds; this is where the worker
and the pages read it back. A body nested deeper than any real order, or holding a NUL character
(which PostgreSQL text and most ERPs cannot store), is refused here with a reason that names where,
so the event is parked at once instead of failing deep inside a mapping or a database write.
"""

from __future__ import annotations

import orjson

MAX_DEPTH = 32  # a real order is about 6 levels deep (order › line › tax line › price set › money)


class UnreadablePayload(ValueError):
    """The body cannot be taken as a payload; the message says why, for a person."""


def read(body: bytes) -> dict:
    """The body as a JSON object, checked by `problem`; UnreadablePayload when it is not one."""
    try:
        payload = orjson.loads(body)  # never a RecursionError: orjson refuses over 1024 levels itself
    except orjson.JSONDecodeError as exc:
        raise UnreadablePayload(f"the body is not valid JSON ({exc}); nothing was imported") from None
    if not isinstance(payload, dict):
        raise UnreadablePayload(
            f"the body is JSON but not an object (got {type(payload).__name__}); nothing was imported"
        )
    # JSON can spell a NUL only as the escape \u0000 (a raw control character is not valid JSON): a body
    # without one holds none, and only the depth is walked for.
    found = problem(payload, nul_possible=b"\\u0000" in body)
    if found:
        raise UnreadablePayload(found)
    return payload


def problem(payload: object, nul_possible: bool = True) -> str | None:
    """Why this payload must not be processed, or None. Walks without recursion, so any depth is safe.
    `nul_possible`: False when the body it was read from shows it holds no NUL."""
    if _clean(payload, nul_possible):
        return None
    return _where(payload)


def _clean(payload: object, nul_possible: bool) -> bool:
    """Whether the payload is within MAX_DEPTH and holds no NUL: the walk every event takes, keeping no path
    (only a payload with a problem is walked again, by `_where`, to say where it is). Only objects and arrays
    go on the stack; strings are looked at where they are found."""
    if isinstance(payload, str):
        return not (nul_possible and "\x00" in payload)
    stack: list[tuple[object, int]] = [(payload, 1)] if isinstance(payload, dict | list) else []
    while stack:
        value, depth = stack.pop()
        if depth >= MAX_DEPTH:
            return False
        if isinstance(value, dict):
            if nul_possible and any("\x00" in key for key in value):
                return False
            items = value.values()
        else:
            items = value  # type: ignore[assignment]
        for item in items:
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))
            elif nul_possible and isinstance(item, str) and "\x00" in item:
                return False
    return True


def _where(payload: object) -> str | None:
    stack: list[tuple[object, str, int]] = [(payload, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return (
                f"the payload is nested more than {MAX_DEPTH} levels deep (at {_short(path) or 'the top'}); "
                "no order is: nothing was imported. Skip the event, or ask the store what sent it"
            )
        if isinstance(value, str):
            if "\x00" in value:
                return _nul(path or "the body")
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    return _nul(f"a field name under {path or 'the top'}")
                stack.append((item, where, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{n}]", depth + 1) for n, item in enumerate(value))
    return None


def _nul(where: str) -> str:
    return (
        f"{_short(where)} holds a NUL character (U+0000), which the database and the ERP "
        "cannot store: nothing was imported. Correct the value in the store and save the order again "
        "(it is sent anew), or skip this event"
    )


def _short(path: str) -> str:
    """A path fit for a message: a hostile payload's field names can be any length and any character."""
    path = printable(path)
    return path if len(path) <= 120 else path[:60] + "…" + path[-59:]


def printable(text: str) -> str:
    """Text a database column can hold: NUL shown as U+FFFD (the replacement character)."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text
