"""Shared by the mapping fuzz tests: walk a payload, replace one value, check what the mapping does."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from mappings.errors import MappingError

DELETE = object()  # "remove the key" as a replacement value
HOSTILE = [None, "x", [], {}, "", True, -1, 10**30, float("nan"), "1e400", DELETE]


def paths(node: Any, skip: frozenset[str] | set[str] = frozenset(), path: tuple = ()) -> Iterator[tuple]:
    """Every key/index path in a JSON tree, parents before children; `skip` subtrees are not entered."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield (*path, key)
        if key not in skip:
            yield from paths(child, skip, (*path, key))


def replaced(payload: dict, path: tuple, value: Any) -> dict:
    mutated = copy.deepcopy(payload)
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return mutated


def survives(call: Callable[[], Any], expected: type) -> str | None:
    """None when the call returns an `expected` or raises a MappingError with a message; else what went wrong."""
    try:
        result = call()
    except MappingError as exc:
        return None if str(exc) else "empty MappingError message"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if isinstance(result, expected) else f"returned {type(result).__name__}"
