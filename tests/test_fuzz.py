"""Fuzzing: no input yields a 5xx or an unhandled exception (issue 7).

hypothesis sends correctly signed webhook deliveries with arbitrary bodies and headers to both
receivers, then runs the queued jobs: every reply is below 500 and every stored event ends succeeded,
ignored or failed with a reason that is not an "internal error". Bounded so the file runs in about a
minute. The JSON API is fuzzed by schemathesis, with every check, in tests/attacks/test_schemathesis.py.

How many cases ran is written to test-artifacts/fuzz-summary.txt (and printed at the end of the module).
"""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from connector.base.models import InboxEvent
from tests.conftest import load_fixture
from tests.stack import SECRET, STORE, WOO_SECRET, WOO_STORE
from tests.test_api import sign_in

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SUMMARY = Path(__file__).resolve().parent.parent / "test-artifacts" / "fuzz-summary.txt"
COUNTS: Counter[str] = Counter()

# CI replays the same cases (derandomized) so a run is reproducible; FUZZ_RANDOM=1 explores new ones.
RANDOM = bool(os.environ.get("FUZZ_RANDOM"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


@pytest.fixture(scope="module", autouse=True)
def _summary():  # type: ignore[no-untyped-def]
    COUNTS.clear()
    yield
    lines = [f"{name}: {count}" for name, count in sorted(COUNTS.items())]
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text("\n".join(lines) + "\n")
    print("\nfuzz cases run:\n  " + "\n  ".join(lines))


# ---- bodies ------------------------------------------------------------------------------------

SHOPIFY_TOPICS = [
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
    "orders/edited",
    "refunds/create",
    "inventory_levels/update",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
    "products/update",
    "app/uninstalled",
]
WOO_TOPICS = [
    "order.created",
    "order.updated",
    "order.restored",
    "order.deleted",
    "product.updated",
    "product.created",
    "coupon.updated",
    "action.woocommerce_order_status_changed",
]

# Header values travel as latin-1 text without line breaks.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80)

huge_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 5, max_value=2**63 + 5),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 5e-324, 0.1, -0.0, 10**30, -(10**30)]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    huge_numbers,
    st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "NaN", "1e999", "2026-13-45T99:99:99Z", "#1001", "\x00", "💥"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=30,
)


def _as_json(value: object) -> bytes:
    # Python's json writes integers of any size (orjson would refuse over 64 bits): the receiver must cope.
    return json.dumps(value).encode()


@st.composite
def deep_nesting(draw) -> bytes:  # type: ignore[no-untyped-def]
    depth = draw(st.integers(min_value=1, max_value=3000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = draw(st.sampled_from(["1", "null", '"x"', "[]", "{}"]))
    body = opener * depth + inner + closer * depth
    if draw(st.booleans()):
        body = '{"id": 1, "line_items": ' + body + "}"
    return body.encode()


SHOPIFY_ORDERS = [
    load_fixture("shopify", name)
    for name in (
        "order_discount_multiline.json",
        "order_guest.json",
        "order_presentment_currency.json",
        "order_tax_included.json",
    )
]
WOO_ORDERS = [
    load_fixture("woocommerce", name)
    for name in (
        "order_cancelled.json",
        "order_cod_guest.json",
        "order_processing_coupon.json",
        "order_refunded_partial.json",
    )
]


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_order(draw, orders: list[dict]) -> bytes:  # type: ignore[no-untyped-def]
    """A real order with a few of its fields (at any depth) replaced by arbitrary JSON or removed."""
    order = copy.deepcopy(draw(st.sampled_from(orders)))
    order["id"] = draw(st.one_of(st.integers(min_value=1, max_value=10**12), json_values))
    paths = _paths(order)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(paths))
        parent = order
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.integers(0, 4)) == 0:
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced this part
    return _as_json(order)


@st.composite
def nul_in_text(draw, orders: list[dict]) -> bytes:  # type: ignore[no-untyped-def]
    """A real order with a NUL put into one of its text fields (PostgreSQL text cannot hold it)."""
    order = copy.deepcopy(draw(st.sampled_from(orders)))
    texts = [p for p in _paths(order) if isinstance(_at(order, p), str)]
    path = draw(st.sampled_from(texts))
    parent = _at(order, path[:-1])
    value = parent[path[-1]]
    at = draw(st.integers(0, len(value)))
    parent[path[-1]] = value[:at] + "\x00" + value[at:]
    return _as_json(order)


def _at(value: object, path: tuple) -> object:
    for key in path:
        value = value[key]  # type: ignore[index]
    return value


def bodies(orders: list[dict]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        nul_in_text(orders),
        st.binary(max_size=300),
        json_values.map(_as_json),
        st.dictionaries(st.text(max_size=12), json_values, max_size=8).map(_as_json),
        deep_nesting(),
        mutated_order(orders),
        mutated_order(orders),
    )


# ---- hypothesis: the webhook receivers and the jobs behind them --------------------------------


def _check_events(stack, after_id: int) -> int:  # type: ignore[no-untyped-def]
    """Every event stored since after_id is finished, with a reason, and none by an unhandled exception."""
    with stack.rt.sessions() as session:
        events = session.scalars(select(InboxEvent).where(InboxEvent.id > after_id).order_by(InboxEvent.id)).all()
        for event in events:
            COUNTS[f"  {event.platform} events ended {event.status}"] += 1
            where = f"event {event.id} ({event.platform} {event.topic!r}, body {event.body[:200]!r})"
            assert event.status in ("succeeded", "ignored", "failed"), f"{where} ended {event.status}"
            if event.status == "failed":
                assert event.last_error, f"{where} failed without a reason"
                assert "internal error" not in event.last_error, f"{where}: {event.last_error}"
            else:
                assert event.result, f"{where} {event.status} without a result"
        return max((e.id for e in events), default=after_id)


# On both stacks: PostgreSQL refuses what SQLite takes (NUL in text), and production runs on it.
@pytest.mark.fuzz
def test_signed_shopify_deliveries_never_fail_badly(stack):
    state = {"last": 0}

    @FUZZ
    @given(
        body=bodies(SHOPIFY_ORDERS),
        topic=st.one_of(st.sampled_from(SHOPIFY_TOPICS), header_text),
        event_id=st.one_of(st.none(), header_text),
        extra=st.dictionaries(
            st.sampled_from(
                [
                    "X-Shopify-Webhook-Id",
                    "Shopify-Topic",
                    "X-Shopify-Shop-Domain",
                    "X-Shopify-API-Version",
                    "X-Shopify-Triggered-At",
                    "Content-Type",
                    "X-Shopify-Sub-Topic",
                    "X-Shopify-Name",
                    "User-Agent",
                ]
            ),
            header_text,
            max_size=4,
        ),
    )
    def run(body: bytes, topic: str, event_id: str | None, extra: dict[str, str]) -> None:
        COUNTS["webhooks shopify (hypothesis)"] += 1
        stack._seq += 1
        response = stack.post_shopify(body, topic=topic, event_id=event_id or f"fuzz-{stack._seq}", extra_headers=extra)
        assert response.status_code < 500, (response.status_code, response.get_data(as_text=True))
        assert response.status_code in (200, 400, 413), response.get_data(as_text=True)
        stack.run_jobs(include_delayed=True)
        state["last"] = _check_events(stack, state["last"])

    run()
    # a good signature over someone else's body is still refused, never a 5xx
    assert stack.post_shopify(b"{}", signature="AAAA").status_code == 401


@pytest.mark.fuzz
def test_signed_woocommerce_deliveries_never_fail_badly(stack):
    state = {"last": 0}

    @FUZZ
    @given(
        body=bodies(WOO_ORDERS),
        topic=st.one_of(
            st.sampled_from(WOO_TOPICS), st.tuples(header_text, header_text).map(lambda t: f"{t[0]}.{t[1]}")
        ),
    )
    def run(body: bytes, topic: str) -> None:
        COUNTS["webhooks woocommerce (hypothesis)"] += 1
        response = stack.post_woocommerce(body, topic=topic)
        assert response.status_code < 500, (response.status_code, response.get_data(as_text=True))
        assert response.status_code in (200, 400, 413), response.get_data(as_text=True)
        stack.run_jobs(include_delayed=True)
        state["last"] = _check_events(stack, state["last"])

    run()


def test_oversized_and_unsigned_deliveries_are_refused_not_crashed(sqlite_stack):
    stack = sqlite_stack
    limit = stack.rt.settings.webhook_max_bytes
    assert stack.post_shopify(b"[" * (limit + 1)).status_code == 413
    assert stack.post_woocommerce(b" " * (limit + 1)).status_code == 413
    assert stack.post_shopify({"id": 1}, signature="").status_code == 401
    assert stack.post_woocommerce({"id": 1}, signature="not base64 at all \xff").status_code == 401
    assert stack.post_shopify({"id": 1}, secret=WOO_SECRET).status_code == 401
    assert stack.post_woocommerce({"id": 1}, secret=SECRET).status_code == 401
    assert stack.post_shopify({"id": 1}, store=WOO_STORE).status_code == 404
    assert stack.post_woocommerce({"id": 1}, store=STORE).status_code == 404


# ---- the JSON API: schemathesis runs it with every check in tests/attacks/test_schemathesis.py ---


def test_ids_and_pages_beyond_what_a_database_holds_are_refused_not_a_500(sqlite_stack):
    """Found by the schemathesis run: the driver overflowed (OverflowError, a 500) on ids over 2**63 - 1."""
    client = sign_in(sqlite_stack)
    headers = {"X-CSRF-Token": client.csrf}
    huge = 2**63
    assert client.get(f"/api/v1/events/{huge}").status_code == 404
    assert client.post(f"/api/v1/events/{huge}/retry", headers=headers).status_code == 404
    assert client.post(f"/api/v1/events/{huge}/skip", json={"reason": "x"}, headers=headers).status_code == 404
    assert client.get(f"/api/v1/events?page={huge}").status_code in (400, 422)
    assert client.get(f"/api/v1/events/{huge - 1}").status_code == 404
    assert client.get("/api/v1/events?page=1000000").status_code == 200
    assert sqlite_stack.app.test_client().get(f"/api/v1/events/{huge}").status_code == 401  # still signed-in only
