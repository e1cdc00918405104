"""The HTTP side shared by the fake WooCommerce's handlers: errors, auth, paging and answers.

Auth: Basic `consumer_key:consumer_secret`, the pair in the query string, or one-legged OAuth 1.0a in
the query string (what wc-api-python sends over plain http). The OAuth signature is checked with the
algorithm that library uses (HMAC-SHA256 over the sorted params, key `secret&`) and the timestamp must
be within 15 minutes; with verify_signature=False only the consumer key is checked. Paging: a page past
the end answers [] with the headers, and Link leaves out the auth params (both unverified).
"""

from __future__ import annotations

import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import Response, request
from woocommerce.oauth import OAuth


class WooError(Exception):
    def __init__(self, status: int, code: str, message: str, **data: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.data = status, code, message, data

    def body(self) -> dict:
        return {"code": self.code, "message": self.message, "data": {"status": self.status, **self.data}}


def as_int(value: Any, name: str) -> int:
    numeric = isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())
    if isinstance(value, bool) or not numeric:
        raise WooError(
            400, "rest_invalid_param", f"Invalid parameter(s): {name}", params={name: f"{name} is not of type integer."}
        )
    return int(value)


def authenticate(keys: Mapping[str, str], verify_signature: bool) -> str:
    """Basic auth, keys in the query string, or one-legged OAuth 1.0a in the query string (plain http);
    `keys` maps each valid consumer key to its secret. Returns the consumer key used."""
    auth = request.authorization
    args = request.args
    if auth is not None and auth.type == "basic":
        key, secret = auth.username, auth.password
    elif "consumer_key" in args:
        key, secret = args.get("consumer_key"), args.get("consumer_secret")
    elif "oauth_consumer_key" in args:
        return _check_oauth(keys, verify_signature)
    else:
        raise WooError(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
    if key not in keys:
        raise WooError(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
    if secret != keys[key]:
        raise WooError(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
    return key


def _check_oauth(keys: Mapping[str, str], verify_signature: bool) -> str:
    args = request.args  # wc-api-python puts its params in the URL twice; the first of each counts
    consumer_key = args.get("oauth_consumer_key") or ""
    if consumer_key not in keys:
        raise WooError(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
    for name in ("oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method"):
        if not args.get(name):
            raise WooError(401, "woocommerce_rest_authentication_error", f"{name} parameter is missing.")
    if args["oauth_signature_method"] not in ("HMAC-SHA1", "HMAC-SHA256"):
        raise WooError(401, "woocommerce_rest_authentication_error", "Invalid signature method.")
    if abs(time.time() - int(args["oauth_timestamp"])) > 15 * 60:
        raise WooError(401, "woocommerce_rest_authentication_error", "Invalid timestamp.")
    if verify_signature:
        params = OrderedDict((k, v) for k, v in args.items() if k != "oauth_signature")
        signer = OAuth(request.base_url, consumer_key, keys[consumer_key], version="wc/v3", method=request.method)
        expected = signer.generate_oauth_signature(params, request.base_url)
        if args["oauth_signature_method"] != "HMAC-SHA256" or not hmac.compare_digest(
            expected, args["oauth_signature"]
        ):
            raise WooError(
                401, "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match."
            )
    return consumer_key


def paged(items: list[dict]) -> tuple[int, list[dict], dict]:
    """One page of `items` as WordPress serves it: page/per_page (1..100), X-WP-Total, X-WP-TotalPages, Link."""
    page = as_int(request.args.get("page", 1), "page")
    per_page = as_int(request.args.get("per_page", 10), "per_page")
    if not 1 <= per_page <= 100:
        raise WooError(
            400,
            "rest_invalid_param",
            "Invalid parameter(s): per_page",
            params={"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"},
        )
    if page < 1:
        raise WooError(
            400,
            "rest_invalid_param",
            "Invalid parameter(s): page",
            params={"page": "page must be greater than or equal to 1"},
        )
    total = len(items)
    pages = (total + per_page - 1) // per_page
    kept = {k: v for k, v in request.args.items() if not k.startswith(("oauth_", "consumer_"))}
    links = []
    for rel, number in (("prev", page - 1), ("next", page + 1)):
        if 1 <= number <= pages:
            links.append(f'<{request.base_url}?{urlencode({**kept, "page": number})}>; rel="{rel}"')
    headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
    if links:
        headers["Link"] = ", ".join(links)
    return 200, items[(page - 1) * per_page : page * per_page], headers


def only_fields(payload: Any) -> Any:
    """WordPress's `_fields=a,b` keeps only those top-level fields."""
    wanted = request.args.get("_fields")
    if not wanted:
        return payload
    names = set(wanted.split(","))
    if isinstance(payload, list):
        return [{k: v for k, v in item.items() if k in names} for item in payload]
    if isinstance(payload, dict):
        return {k: v for k, v in payload.items() if k in names}
    return payload


def answer(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")
