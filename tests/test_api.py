"""Accounts, the guard and the JSON API: nothing is served to a stranger, every action is audited."""

from __future__ import annotations

import re

from connector.web.auth import PUBLIC_ENDPOINTS, add_user
from tests.conftest import load_fixture

ADMIN = ("admin@example.com", "correct horse battery")
SUPPORT = ("support@example.com", "staple battery horse")


def csrf_of(client, path: str = "/login") -> str:  # type: ignore[no-untyped-def]
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def sign_in(stack, who=ADMIN, role="admin"):  # type: ignore[no-untyped-def]
    add_user(stack.rt, who[0], who[1], role)
    client = stack.app.test_client()
    token = csrf_of(client)
    response = client.post("/login", data={"email": who[0], "password": who[1], "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    client.csrf = client.get("/api/v1/session").json["csrf_token"]  # type: ignore[attr-defined]
    return client


def routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("webhooks.") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        path = re.sub(r"<(?:int:)?[^>]+>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def test_no_page_or_api_route_is_served_without_signing_in(sqlite_stack):
    client = sqlite_stack.app.test_client()
    checked = routes(sqlite_stack.app)
    assert ("GET", "/api/v1/events") in checked and ("GET", "/api/v1/openapi.json") in checked
    for method, path in checked:
        response = client.open(path, method=method, headers={"X-CSRF-Token": csrf_of(client)})
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path)
        else:
            assert response.status_code in (302, 401), (method, path)
            if response.status_code == 302:
                assert "/login" in response.headers["Location"]


def test_a_post_without_csrf_token_is_refused(sqlite_stack):
    client = sign_in(sqlite_stack)
    assert client.post("/api/v1/events/1/retry").status_code == 403
    assert client.post("/api/v1/events/1/retry", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/api/v1/events/1/retry", headers={"X-CSRF-Token": client.csrf}).status_code == 200
    anonymous = sqlite_stack.app.test_client()
    anonymous.get("/login")
    assert anonymous.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]}).status_code == 403


def test_support_cannot_change_configuration(sqlite_stack):
    client = sign_in(sqlite_stack, SUPPORT, "support")
    assert client.get("/api/v1/config").status_code == 403
    assert client.get("/api/v1/events").status_code == 200


def test_sign_in_is_throttled_after_repeated_failures(sqlite_stack):
    add_user(sqlite_stack.rt, *ADMIN, "admin")
    client = sqlite_stack.app.test_client()
    token = csrf_of(client)
    codes = [
        client.post("/login", data={"email": ADMIN[0], "password": "wrong password!", "csrf_token": token}).status_code
        for _ in range(6)
    ]
    assert codes == [401] * 5 + [429]
    right = client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": token})
    assert right.status_code == 429  # even the right password waits out the window


def test_a_password_change_signs_out_old_sessions(sqlite_stack):
    client = sign_in(sqlite_stack)
    assert client.get("/api/v1/events").status_code == 200
    add_user(sqlite_stack.rt, ADMIN[0], "another long password", "admin")
    assert client.get("/api/v1/events").status_code == 401


def test_support_retries_a_failed_event_and_it_is_audited(stack):
    payload = load_fixture("shopify", "order_discount_multiline.json")
    with stack.erp_down():
        stack.post_shopify(payload)
        stack.run_jobs(include_delayed=True)
    client = sign_in(stack, SUPPORT, "support")
    page = client.get("/api/v1/events?status=failed").json
    assert page["total"] == 1
    assert client.get("/api/v1/events?order=%231001").json["total"] == 1  # found by its number, though failed
    event_id = page["items"][0]["id"]
    detail = client.get(f"/api/v1/events/{event_id}").json
    assert "gave up" in detail["last_error"] and len(detail["attempts_detail"]) == stack.rt.settings.max_attempts
    assert '"line_items"' in detail["payload"]

    stale = client.post(
        "/api/v1/events/retry", json={"status": "failed", "expected_count": 2}, headers={"X-CSRF-Token": client.csrf}
    )
    assert stale.status_code == 409 and "matches 1" in stale.json["message"]
    done = client.post(
        "/api/v1/events/retry", json={"status": "failed", "expected_count": 1}, headers={"X-CSRF-Token": client.csrf}
    )
    assert done.json == {"count": 1}
    stack.run_jobs(include_delayed=True)
    assert client.get(f"/api/v1/events/{event_id}").json["status"] == "succeeded"
    assert len(stack.erp_orders()) == 1
    audit = client.get("/api/v1/audit").json["items"]
    assert any(a["action"] == "event.retry" and a["actor"] == SUPPORT[0] for a in audit)


def test_skip_needs_a_reason_and_is_audited(sqlite_stack):
    sqlite_stack.post_shopify(b"not json at all")
    client = sign_in(sqlite_stack, SUPPORT, "support")
    event_id = client.get("/api/v1/events").json["items"][0]["id"]
    refused = client.post(f"/api/v1/events/{event_id}/skip", json={}, headers={"X-CSRF-Token": client.csrf})
    assert refused.status_code == 422
    blank = client.post(
        f"/api/v1/events/{event_id}/skip", json={"reason": "   "}, headers={"X-CSRF-Token": client.csrf}
    )
    assert blank.status_code == 422 and "reason" in blank.json["message"]
    skipped = client.post(
        f"/api/v1/events/{event_id}/skip", json={"reason": "test order"}, headers={"X-CSRF-Token": client.csrf}
    )
    assert skipped.json == {"count": 1}
    assert client.get(f"/api/v1/events/{event_id}").json["status"] == "skipped"
    assert client.get("/api/v1/audit").json["items"][0]["detail"] == {"reason": "test order"}


def test_the_openapi_document_describes_the_api(sqlite_stack):
    client = sign_in(sqlite_stack)
    spec = client.get("/api/v1/openapi.json").json
    assert {
        "/api/v1/events",
        "/api/v1/events/{event_id}",
        "/api/v1/events/retry",
        "/api/v1/config",
        "/api/v1/mappings/{kind}",
        "/api/v1/preview",
    } <= set(spec["paths"])


def test_bad_requests_get_a_4xx_with_a_message(sqlite_stack):
    client = sign_in(sqlite_stack)
    headers = {"X-CSRF-Token": client.csrf}
    assert client.get("/api/v1/events?status=lost").status_code == 422
    assert client.get("/api/v1/events/999999").status_code == 404
    assert client.put("/api/v1/mappings/colour", json={"rows": []}, headers=headers).status_code == 404
    bad = client.put(
        "/api/v1/config", json={"yaml": "stores: [{slug: 'Bad Slug', platform: shopify}]"}, headers=headers
    )
    assert bad.status_code == 400 and "slug" in bad.json["message"]
    assert client.post("/api/v1/preview", json={"store": "acme-us", "payload": "{"}, headers=headers).status_code == 400
    assert (
        client.put(
            "/api/v1/mappings/sku", json={"rows": [{"store": "nope", "source": "a", "target": "b"}]}, headers=headers
        ).status_code
        == 400
    )


def test_preview_shows_the_canonical_order_and_the_erp_rows_without_writing(sqlite_stack):
    client = sign_in(sqlite_stack)
    headers = {"X-CSRF-Token": client.csrf}
    client.put(
        "/api/v1/mappings/sku",
        json={"rows": [{"store": None, "source": "SOCK-CREW-M-NVY", "target": "ERP-SOCK-1"}]},
        headers=headers,
    )
    payload = load_fixture("shopify", "order_discount_multiline.json")
    shown = client.post("/api/v1/preview", json={"store": "acme-us", "payload": payload}, headers=headers).json
    assert shown["canonical"]["totals"]["total"]["amount"] == payload["total_price"]
    assert shown["erp_document"]["erp_orders"]["total"] == payload["total_price"]
    skus = [line["sku"] for line in shown["erp_document"]["erp_order_lines"]]
    assert "ERP-SOCK-1" in skus or "SOCK-CREW-M-NVY" not in [ln["sku"] for ln in payload["line_items"]]
    assert sqlite_stack.erp_orders() == []
