"""Just enough GraphQL for the fake Shopify: a query reader, an executor, the cost model and the bucket.

Not a GraphQL implementation: it reads one operation (no fragments, no inline fragments), hands the
root fields to resolvers (tests/fakes/shopify_graphql.py) and returns only the fields that were
selected, so a client that asks for a field the fake doesn't know gets `null`, not a silent pass.

Cost model (docs/platforms.md#shopify-rate-limits says "calculated query cost" without the exact rules; this follows
Shopify's published rules of thumb, documented here because the client's estimates must match):
- a scalar costs 0; an object costs 1 plus its selection; `pageInfo` is free;
- a connection (a field with `first`/`last`) costs 2 plus `first` times the cost of one node
  (1 plus the node's selection), so `productVariants(first: 250) { nodes { id sku inventoryItem { id } } }`
  asks for 2 + 250 x 2 = 502;
- a mutation costs 10 plus 1 per input item it carries (quantities of `inventorySetQuantities`,
  fulfillment order line items of `fulfillmentCreate`); its selection is not charged.
The requested cost is taken from the bucket before the query runs; the actual cost (real node counts)
is what is charged, and the difference is given back, as Shopify does. A query whose requested cost
exceeds the single-query limit (1000) fails with MAX_COST_EXCEEDED; one that exceeds what is currently
available is THROTTLED with `actualQueryCost: null`.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

MUTATION_BASE_COST = 10


class GraphQLError(Exception):
    """A top-level `errors[]` entry (the whole operation fails, `data` is null)."""

    def __init__(self, message: str, code: str | None = None, **extensions: Any):
        super().__init__(message)
        self.message = message
        self.extensions = {"code": code, **extensions} if code else dict(extensions)

    def as_json(self) -> dict:
        entry: dict[str, Any] = {"message": self.message}
        if self.extensions:
            entry["extensions"] = self.extensions
        return entry


# ---- the leaky bucket (both APIs use one) ---------------------------------------------------------


class LeakyBucket:
    """`level` rises by what a request costs and drains at `rate` per second down to 0.

    REST: capacity 40 requests, rate 2/s, each request costs 1. GraphQL: capacity = maximumAvailable
    points, rate = restoreRate, and currentlyAvailable = capacity - level.
    """

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float] = time.monotonic):
        self.capacity, self.rate, self._clock = float(capacity), float(rate), clock
        self._level, self._at = 0.0, clock()

    def level(self) -> float:
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._at) * self.rate)
        self._at = now
        return self._level

    def available(self) -> float:
        return self.capacity - self.level()

    def take(self, amount: float) -> bool:
        if self.level() + amount > self.capacity + 1e-9:
            return False
        self._level += amount
        return True

    def give_back(self, amount: float) -> None:
        self._level = max(0.0, self.level() - amount)

    def fill(self, level: float | None = None) -> None:
        self.level()
        self._level = self.capacity if level is None else float(level)

    def seconds_until(self, amount: float) -> float:
        return max(0.0, (self.level() + amount - self.capacity) / self.rate)


# ---- reading a query ------------------------------------------------------------------------------


@dataclass
class Field:
    name: str
    alias: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    directives: dict[str, dict[str, Any]] = field(default_factory=dict)
    selections: list[Field] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.alias or self.name


_TOKEN = re.compile(
    r'(?:\s|,|#[^\n]*)*(\.\.\.|[{}()\[\]:!$@=|&]|"(?:\\.|[^"\\])*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?'
    r"|[_A-Za-z][_0-9A-Za-z]*)?"
)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m is not None  # every part of the pattern is optional
        if m.group(1) is None:
            if m.end() >= len(text):
                break
            raise GraphQLError(f"Parse error on {text[m.end() : m.end() + 10]!r}", "PARSE_ERROR")
        out.append(m.group(1))
        pos = m.end()
    return out


class _Reader:
    def __init__(self, text: str, variables: dict[str, Any]):
        self.toks, self.pos, self.variables = _tokens(text), 0, variables

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def next(self) -> str:
        tok = self.peek()
        if tok is None:
            raise GraphQLError("Parse error: unexpected end of document", "PARSE_ERROR")
        self.pos += 1
        return tok

    def expect(self, tok: str) -> None:
        got = self.next()
        if got != tok:
            raise GraphQLError(f"Parse error: expected {tok!r}, got {got!r}", "PARSE_ERROR")

    def document(self) -> tuple[str, list[Field]]:
        kind = "query"
        if self.peek() in ("query", "mutation", "subscription"):
            kind = self.next()
            if self.peek() not in ("{", "(", "@"):
                self.next()  # the operation name
            if self.peek() == "(":
                self.skip_balanced("(", ")")  # variable definitions: values come from `variables`
            while self.peek() == "@":
                self.directive()
        roots = self.selection_set()
        if self.peek() is not None:
            raise GraphQLError("This fake reads one operation per document", "PARSE_ERROR")
        return kind, roots

    def skip_balanced(self, open_: str, close: str) -> None:
        depth = 0
        while True:
            tok = self.next()
            depth += tok == open_
            depth -= tok == close
            if depth == 0:
                return

    def selection_set(self) -> list[Field]:
        self.expect("{")
        fields: list[Field] = []
        while self.peek() != "}":
            if self.peek() == "...":
                raise GraphQLError("This fake does not read fragments", "PARSE_ERROR")
            name = self.next()
            f = Field(name)
            if self.peek() == ":":
                self.next()
                f.alias, f.name = name, self.next()
            if self.peek() == "(":
                f.args = self.arguments()
            while self.peek() == "@":
                name_, args = self.directive()
                f.directives[name_] = args
            if self.peek() == "{":
                f.selections = self.selection_set()
            fields.append(f)
        self.next()
        return fields

    def directive(self) -> tuple[str, dict[str, Any]]:
        self.expect("@")
        name = self.next()
        return name, self.arguments() if self.peek() == "(" else {}

    def arguments(self) -> dict[str, Any]:
        self.expect("(")
        args = {}
        while self.peek() != ")":
            name = self.next()
            self.expect(":")
            args[name] = self.value()
        self.next()
        return args

    def value(self) -> Any:
        tok = self.next()
        if tok == "$":
            return self.variables.get(self.next())
        if tok == "[":
            items = []
            while self.peek() != "]":
                items.append(self.value())
            self.next()
            return items
        if tok == "{":
            obj = {}
            while self.peek() != "}":
                key = self.next()
                self.expect(":")
                obj[key] = self.value()
            self.next()
            return obj
        if tok.startswith('"'):
            return json.loads(tok)
        if tok[0] in "-0123456789":
            return float(tok) if any(c in tok for c in ".eE") else int(tok)
        return {"true": True, "false": False, "null": None}.get(tok, tok)  # else an enum value


def parse(query: str, variables: dict[str, Any] | None) -> tuple[str, list[Field]]:
    """('query' | 'mutation', root fields) with arguments already resolved from `variables`."""
    return _Reader(query, variables or {}).document()


# ---- executing ------------------------------------------------------------------------------------


class Conn:
    """A connection's items (raw state records) and how one is shown; paging happens here, so only the
    page's items are ever turned into views (10,000 variants stay cheap)."""

    def __init__(self, items: Sequence[Any], view: Callable[[Any], dict]):
        self.items, self.view = items, view


def cursor(index: int) -> str:
    return base64.b64encode(json.dumps({"last": index}).encode()).decode()


def _index(value: str) -> int:
    try:
        return int(json.loads(base64.b64decode(value))["last"])
    except (ValueError, KeyError, TypeError):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {value!r}", "BAD_REQUEST") from None


class Meter:
    def __init__(self) -> None:
        self.points = 0


def requested_cost(selections: list[Field]) -> int:
    total = 0
    for f in selections:
        if not f.selections or f.name == "pageInfo":
            continue
        if "first" in f.args or "last" in f.args:
            size = f.args.get("first") or f.args.get("last") or 0
            per_node = 0
            for sub in f.selections:
                if sub.name == "nodes":
                    per_node = max(per_node, 1 + requested_cost(sub.selections))
                elif sub.name == "edges":
                    for node in sub.selections:
                        if node.name == "node":
                            per_node = max(per_node, 1 + requested_cost(node.selections))
            total += 2 + int(size) * per_node
        else:
            total += 1 + requested_cost(f.selections)
    return total


def project(selections: list[Field], obj: dict, meter: Meter) -> dict:
    out: dict[str, Any] = {}
    for f in selections:
        value = obj.get(f.name)
        if callable(value):
            value = value(f.args)  # a field with arguments (e.g. `quantities(names:)`)
        out[f.key] = resolve(f, value, meter)
    return out


def resolve(f: Field, value: Any, meter: Meter) -> Any:
    """`value` shown through `f`'s selection; object and connection costs are added to `meter`."""
    if isinstance(value, Conn):
        return _connection(f, value, meter)
    if not f.selections or value is None:
        return value
    if isinstance(value, list):
        if "first" in f.args:  # a plain list field that takes `first`, like Order.fulfillments
            value = value[: f.args["first"]]
        return [_object(f, item, meter) for item in value]
    return _object(f, value, meter)


def _object(f: Field, value: dict, meter: Meter) -> dict:
    if f.name != "pageInfo":
        meter.points += 1
    return project(f.selections, value, meter)


def _connection(f: Field, conn: Conn, meter: Meter) -> dict:
    first, last = f.args.get("first"), f.args.get("last")
    if first is None and last is None:
        raise GraphQLError(f"you must provide one of first or last for the '{f.name}' connection", "BAD_REQUEST")
    size = int(first if first is not None else last)  # type: ignore[arg-type]  # one of them is set
    if not 0 <= size <= 250:
        raise GraphQLError(f"The maximum page size is 250 ({f.name}: {size})", "BAD_REQUEST")
    start = _index(f.args["after"]) + 1 if f.args.get("after") else 0
    if last is not None and first is None:  # `last` pages backwards from `before` (or the end)
        end = _index(f.args["before"]) if f.args.get("before") else len(conn.items)
        start = max(0, end - size)
        stop = end
    else:
        stop = min(len(conn.items), start + size)
    window = range(start, stop)
    nodes = [conn.view(conn.items[i]) for i in window]
    meter.points += 2
    page = {
        "hasNextPage": stop < len(conn.items),
        "hasPreviousPage": start > 0,
        "startCursor": cursor(start) if nodes else None,
        "endCursor": cursor(stop - 1) if nodes else None,
    }
    out: dict[str, Any] = {}
    for sub in f.selections:
        if sub.name == "nodes":
            out[sub.key] = [_object(sub, node, meter) for node in nodes]
        elif sub.name == "edges":
            edges = []
            for i, node in zip(window, nodes, strict=True):
                edge: dict[str, Any] = {}
                for part in sub.selections:
                    if part.name == "cursor":
                        edge[part.key] = cursor(i)
                    elif part.name == "node":
                        edge[part.key] = _object(part, node, meter)
                edges.append(edge)
            out[sub.key] = edges
        elif sub.name == "pageInfo":
            out[sub.key] = project(sub.selections, page, Meter())
        else:
            out[sub.key] = None
    return out


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def gid_number(value: Any, kind: str) -> int | None:
    """The number in `gid://shopify/<kind>/<n>`, or None when the id is not one of `kind`."""
    m = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", str(value or ""))
    return int(m.group(1)) if m else None


def version_at_least(version: str, floor: str) -> bool:
    return version >= floor  # YYYY-MM strings sort by date; "unstable" sorts after every release
