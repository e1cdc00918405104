"""The fake Shopify's token endpoint, `POST /admin/oauth/access_token`, as Shopify documents it.

- Client credentials grant: `grant_type=client_credentials`, `client_id`, `client_secret` (form-encoded) →
  `{"access_token", "scope", "expires_in"}`; a token lives `ttl` seconds (about 24 h on Shopify).
- Authorization code exchange: `client_id`, `client_secret`, `code` (each code once) → an offline token,
  expiring with a `refresh_token` when asked for (`expiring=1`); `grant_type=refresh_token` renews it.
- A wrong client ID or secret, an unknown or reused code or refresh token: 400/401 with an error, never a token.
- The install link, `GET /admin/oauth/authorize?client_id&scope&redirect_uri&state`: an approval page
  listing the scopes (an unknown client ID gets an error page); "Install" sends the browser to
  `redirect_uri` with `code, hmac, host, shop, state, timestamp`, the hmac a hex HMAC-SHA256 with the
  client secret over the sorted query without it (as Shopify documents); a code is good once.
Every token issued is recorded with when it was issued, so a test can count renewals per expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Response, jsonify, redirect, request


@dataclass
class Issued:
    token: str
    grant: str
    issued: float  # time.monotonic()
    expires: float | None


class TokenEndpoint:
    def __init__(
        self,
        client_id: str = "client-id-fake",
        client_secret: str = "shpss_fake_client_secret",
        ttl: float = 86399,
        scope: str = "read_orders,read_products,write_inventory,read_inventory,"
        "write_fulfillments,read_locations,read_returns",
    ):
        self.client_id, self.client_secret, self.ttl, self.scope = client_id, client_secret, ttl, scope
        self.issued: list[Issued] = []
        self.codes: set[str] = set()  # codes the approval page handed out, each good once
        self.refresh_tokens: dict[str, float] = {}
        self.refused = 0
        self._lock = threading.Lock()

    def valid(self, token: str | None) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(i.token == token and (i.expires is None or now < i.expires) for i in self.issued)

    def new_code(self) -> str:
        code = secrets.token_hex(8)
        with self._lock:
            self.codes.add(code)
        return code

    def signed_query(self, params: dict[str, str]) -> dict[str, str]:
        """`params` with the hmac Shopify adds to the install callback."""
        message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        return {**params, "hmac": hmac.new(self.client_secret.encode(), message.encode(), hashlib.sha256).hexdigest()}

    def authorize(self, shop_domain: str) -> Response:
        """The install link's approval page (GET) and the merchant's "Install" (POST)."""
        args = request.values
        if args.get("client_id") != self.client_id:
            return Response("<h1>Oauth error invalid_request: The client ID is not valid</h1>", 400)
        if request.method == "GET":
            scopes = "".join(f"<li>{html.escape(s)}</li>" for s in (args.get("scope") or "").split(",") if s)
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in args.items()
            )
            return Response(
                f"<!doctype html><title>Install app</title><h1>Install app on {shop_domain}</h1>"
                f"<ul id='scopes'>{scopes}</ul><form method='post'>{hidden}"
                "<button type='submit' name='decision' value='install'>Install</button></form>"
            )
        query = {
            "code": self.new_code(),
            "host": base64.b64encode(f"{shop_domain}/admin".encode()).decode(),
            "shop": shop_domain,
            "state": args.get("state", ""),
            "timestamp": str(int(time.time())),
        }
        return redirect(f"{args['redirect_uri']}?{urlencode(self.signed_query(query))}")

    def view(self) -> Response:
        form = request.form
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return self._refuse(401, "invalid_client", "Client credentials are invalid")
        grant = form.get("grant_type") or "authorization_code"
        with self._lock:
            if grant == "client_credentials":
                expires_in: float | None = self.ttl
            elif grant == "authorization_code" and form.get("code") in self.codes:
                self.codes.discard(form["code"])
                expires_in = self.ttl if form.get("expiring") == "1" else None
            elif grant == "refresh_token" and form.get("refresh_token") in self.refresh_tokens:
                del self.refresh_tokens[form["refresh_token"]]  # a refresh token is good once
                expires_in = self.ttl
            else:
                return self._refuse(400, "invalid_request", f"{grant}: unknown, expired or used code or token")
            now = time.monotonic()
            token = f"shpat_{secrets.token_hex(12)}"
            self.issued.append(Issued(token, grant, now, None if expires_in is None else now + expires_in))
            body: dict = {"access_token": token, "scope": self.scope}
            if expires_in is not None:
                body["expires_in"] = int(expires_in) if expires_in >= 1 else expires_in
                if grant != "client_credentials":
                    refresh = f"shprt_{secrets.token_hex(12)}"  # an expiring offline token's renewal
                    self.refresh_tokens[refresh] = now + 30 * 86400
                    body.update(refresh_token=refresh, refresh_token_expires_in=30 * 86400)
        return jsonify(body)

    def _refuse(self, status: int, error: str, description: str) -> Response:
        with self._lock:
            self.refused += 1
        response = jsonify({"error": error, "error_description": description})
        response.status_code = status
        return response
