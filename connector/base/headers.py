"""Security headers on every page and API answer.

A Content-Security-Policy that admits only our own files and, for the few inline scripts of /config,
a nonce made for each response; no framing by any other site (clickjacking); no MIME sniffing; no
Referer carrying event ids or filters to other sites.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g


def csp_nonce() -> str:
    """The nonce an inline <script> of this response carries (templates: nonce="{{ csp_nonce() }}")."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


# Where the "connect a store" forms send the admin: the store's own approval page, on any https host
# (and a store on this machine, for development). Chromium applies form-action to the redirect a form's
# answer makes, so these pages, and only these, name more than 'self'.
STORE_APPROVAL_TARGETS = "'self' https: http://127.0.0.1:* http://localhost:*"


def send_forms_to_stores() -> None:
    """For this response: its forms may lead to a store's approval page (see STORE_APPROVAL_TARGETS)."""
    g.csp_form_action = STORE_APPROVAL_TARGETS


def _secure(response: Response) -> Response:
    script = f"'self' 'nonce-{g.csp_nonce}'" if "csp_nonce" in g else "'self'"
    form_action = g.get("csp_form_action", "'self'")
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; script-src {script}; style-src 'self'; img-src 'self' data:; object-src 'none'; "
        f"base-uri 'self'; form-action {form_action}; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Frame-Options", "DENY")  # for browsers older than frame-ancestors
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def install_headers(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(_secure)
