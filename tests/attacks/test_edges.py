"""Input at the edges (issue 12, point 13): odd bytes, odd dates, huge numbers and deep bodies sent by a
signed-in person or script get a 4xx that names what is wrong, never a 500. Run on both stacks: PostgreSQL
refuses what SQLite stores (NUL in text, numbers past int8, years past 9999).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from connector.base.models import StockMirror
from connector.setup.config_io import load_config
from tests.conftest import load_fixture
from tests.stack import STORE
from tests.test_api import sign_in

PUSH_TOKEN = "erp-push-token-edges-0123456789"
NUL = "\x00"


def _refused(response, *words: str) -> None:  # type: ignore[no-untyped-def]
    text = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, (response.status_code, text[:500])
    for word in words:
        assert word in text, (word, text[:500])


@pytest.fixture
def admin(stack):  # type: ignore[no-untyped-def]
    client = sign_in(stack)
    client.headers = {"X-CSRF-Token": client.csrf}  # type: ignore[attr-defined]
    stack.post_shopify(load_fixture("shopify", "order_guest.json"))
    stack.run_jobs(include_delayed=True)
    return client


# ---- NUL: PostgreSQL text cannot hold it -------------------------------------------------------


def test_nul_in_a_query_parameter_is_refused_naming_the_parameter(admin):
    _refused(admin.get("/api/v1/events?order=%00"), "order")
    _refused(admin.get("/console/events?store=%00"), "store")
    _refused(admin.get("/console/events/retry?topic=a%00b"), "topic")
    _refused(admin.get("/console/audit?actor=%00"), "actor")
    _refused(admin.get("/config/stores/%00"))


def test_nul_in_a_form_field_is_refused_naming_the_field(admin):
    token = {"csrf_token": admin.csrf}
    _refused(admin.post("/console/events/1/skip", data={**token, "reason": f"dup{NUL}"}), "reason")
    _refused(admin.post("/console/events/retry", data={**token, "store": NUL, "expected_count": "0"}), "store")
    _refused(
        admin.post("/config/mappings/sku", data={**token, "store": "", "source": f"A{NUL}", "target": "B"}), "source"
    )


def test_nul_in_a_json_string_is_refused_naming_the_field(admin):
    headers = admin.headers
    _refused(admin.post("/api/v1/events/1/skip", json={"reason": NUL}, headers=headers), "reason")
    _refused(admin.post("/api/v1/events/retry", json={"store": NUL, "expected_count": 0}, headers=headers), "store")
    _refused(
        admin.put("/api/v1/mappings/sku", json={"rows": [{"source": "A", "target": NUL}]}, headers=headers), "target"
    )
    _refused(admin.post("/api/v1/preview", json={"store": NUL, "payload": {}}, headers=headers), "store")


def test_a_blank_skip_reason_or_mapping_cell_is_refused_as_the_document_says(admin):
    """Found by schemathesis: "  " passed the documented minLength 1, then was refused (reason) or stored
    empty once stripped (mapping source). The document now says so and the schema refuses it."""
    _refused(admin.post("/api/v1/events/1/skip", json={"reason": "   "}, headers=admin.headers), "reason")
    _refused(
        admin.put("/api/v1/mappings/sku", json={"rows": [{"source": " ", "target": "B"}]}, headers=admin.headers),
        "source",
    )
    assert admin.get("/api/v1/mappings/sku").json["rows"] == []
    spec = admin.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert not re.search(spec["SkipBody"]["properties"]["reason"]["pattern"], "   ")


def test_a_payload_with_nul_can_still_be_previewed(admin):
    """The preview writes nothing, so an order carrying NUL (as a signed delivery may) is shown, not refused."""
    payload = load_fixture("shopify", "order_guest.json")
    payload["note"] = f"gift{NUL}"
    answer = admin.post("/api/v1/preview", json={"store": STORE, "payload": payload}, headers=admin.headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)


# ---- dates past what a database holds ----------------------------------------------------------


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_time_outside_the_years_1_to_9999_in_utc_is_refused(admin, when):
    quoted = when.replace("+", "%2B")
    _refused(admin.get(f"/api/v1/events?since={quoted}"), "since")
    _refused(admin.get(f"/api/v1/events?until={quoted}"), "until")
    _refused(admin.get(f"/console/events?since={quoted}"), "since")
    _refused(admin.get(f"/console/events/retry?until={quoted}"), "until")
    _refused(
        admin.post("/api/v1/events/retry", json={"since": when, "expected_count": 0}, headers=admin.headers), "since"
    )


def test_times_at_the_edges_of_the_range_still_filter(admin):
    assert admin.get("/api/v1/events?since=0001-01-01T14:00:00%2B14:00").status_code == 200
    assert admin.get("/api/v1/events?until=9999-12-31T09:59:59-14:00").json["total"] == 1
    assert admin.get("/console/events?since=0001-01-01T00:00").status_code == 200


# ---- numbers past what a database holds --------------------------------------------------------


def test_a_twenty_digit_page_number_is_refused(admin):
    huge = "9" * 20
    _refused(admin.get(f"/console/events?page={huge}"), "page")
    _refused(admin.get(f"/console/audit?page={huge}"), "page")
    _refused(admin.get(f"/api/v1/events?page={huge}"), "page")
    assert admin.get("/console/events?page=2").status_code == 200  # past the end: an empty page, as before


def test_a_huge_event_id_in_the_preview_is_no_such_event(admin):
    answer = admin.get(f"/config/preview?event={'9' * 25}")
    _refused(answer, "no event")


def test_a_stock_level_beyond_the_mirror_columns_is_refused(stack):
    load_config(stack.rt, json.dumps({"erp": {"kind": "sql", "url": stack.erp_url, "push_token": PUSH_TOKEN}}))
    auth = {"Authorization": f"Bearer {PUSH_TOKEN}"}
    level = {"sku": "SKU-1", "updated_at": "2026-11-20T15:00:00Z"}
    for on_hand in (4.5e16, "1e20", -4.5e16, 1e300, "NaN", "Infinity"):
        answer = stack.app.test_client().post(
            "/api/v1/stock", json={"levels": [{**level, "on_hand": on_hand}]}, headers=auth
        )
        _refused(answer, "on_hand")
    ok = stack.app.test_client().post(
        "/api/v1/stock", json={"levels": [{**level, "on_hand": -99999999999999}]}, headers=auth
    )
    assert ok.status_code == 200, ok.get_data(as_text=True)
    with stack.rt.sessions() as session:
        assert session.scalar(select(StockMirror.on_hand)) == Decimal("-99999999999999")


# ---- deep bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [900, 5000])  # 900: Python's parser copes, what comes after may not
def test_a_deeply_nested_api_body_is_refused_with_its_depth(admin, depth):
    deep = '{"a":' * depth + "1" + "}" * depth
    body = f'{{"store": "{STORE}", "payload": {deep}}}'
    answer = admin.post("/api/v1/preview", data=body, headers={**admin.headers, "Content-Type": "application/json"})
    _refused(answer, "nested")
    as_text = admin.post("/api/v1/preview", json={"store": STORE, "payload": deep}, headers=admin.headers)
    _refused(as_text, "nested")
    page = admin.post("/config/preview", data={"csrf_token": admin.csrf, "store": STORE, "payload": deep})
    _refused(page, "nested")


# ---- the OpenAPI document and the 405s ---------------------------------------------------------


def test_a_wrong_method_is_answered_405_with_allow(admin):
    answer = admin.delete("/api/v1/events", headers=admin.headers)
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) >= {"GET"}


def test_every_operation_documents_what_it_answers(admin):
    spec = admin.get("/api/v1/openapi.json").json
    for path in ("/api/v1/audit", "/api/v1/dashboard", "/api/v1/session"):
        assert "schema" in spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"], path
    error = spec["components"]["schemas"]["Error"]["properties"]
    assert error["status"]["type"] == "integer"
    served = admin.get("/api/v1/events/123456").json
    assert isinstance(served["status"], int) and served["message"]
    refused = admin.put("/api/v1/config", json={"yaml": "{{"}, headers=admin.headers).json  # not YAML
    assert "YAML" in refused["message"] and refused.get("errors", {}) is not None  # absent, or an object
