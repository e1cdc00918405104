"""The process itself: it refuses to run on a key that cannot open what it stored."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from connector.base.queue import EmbeddedJobQueue
from connector.base.runtime import Runtime
from connector.cli import main
from connector.web.app import create_app


def _env(stack, key: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "DATABASE_URL": str(stack.rt.settings.database_url),
        "CONNECTOR_ENCRYPTION_KEY": key,
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }


@pytest.mark.parametrize("command", [["web"], ["worker", "--burst"], ["scheduler"]])
def test_a_wrong_encryption_key_refuses_to_start_with_a_clear_message(sqlite_stack, command):
    result = CliRunner().invoke(main, command, env=_env(sqlite_stack, "not-the-key-the-secrets-were-sealed-with"))
    assert result.exit_code == 2, result.output
    assert "not starting: CONNECTOR_ENCRYPTION_KEY does not open the stored secrets of store acme-us" in result.output
    assert "Traceback" not in result.output


def test_readyz_reports_a_key_that_cannot_open_the_secrets(sqlite_stack):
    assert sqlite_stack.client.get("/readyz").json["checks"]["secrets"] == "ok"
    wrong = Runtime.from_settings(
        sqlite_stack.rt.settings.with_(encryption_key="some-other-key"), queue=EmbeddedJobQueue()
    )
    try:
        answer = create_app(runtime=wrong).test_client().get("/readyz")
    finally:
        wrong.close()
    assert answer.status_code == 503
    assert "CONNECTOR_ENCRYPTION_KEY does not open" in answer.json["checks"]["secrets"]


def test_pages_and_api_carry_security_headers_and_inline_scripts_their_nonce(sqlite_stack):
    import re

    from tests.test_api import sign_in

    admin = sign_in(sqlite_stack)
    for path in ("/login", "/config", "/console", "/api/v1/session"):
        answer = admin.get(path)
        policy = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy, path
        assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "same-origin"
    page = admin.get("/config")
    nonces = set(re.findall(r'<script nonce="([^"]+)"', page.get_data(as_text=True)))
    assert len(nonces) == 1 and f"'nonce-{nonces.pop()}'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.get_data(as_text=True)


def test_a_passphrase_key_is_stretched_and_old_seals_still_open():
    import base64
    import hashlib

    from cryptography.fernet import Fernet

    from connector.base.crypto import SecretBox

    passphrase = "correct horse battery staple"
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(passphrase.encode()).digest()))
    old_seal = legacy.encrypt(b'{"access_token": "shpat_old"}').decode()
    box = SecretBox([passphrase])
    assert box.open(old_seal) == {"access_token": "shpat_old"}  # sealed by an earlier version: still opens
    new_seal = box.seal({"access_token": "shpat_new"})
    try:
        legacy.decrypt(new_seal.encode())
        raise AssertionError("a new seal must not be made with the unsalted one-round SHA-256 key")
    except Exception as exc:  # InvalidToken
        assert type(exc).__name__ == "InvalidToken"
    assert box.open(new_seal) == {"access_token": "shpat_new"}


def test_keygen_prints_a_key_the_connector_takes_as_it_is():
    from connector.base.crypto import SecretBox

    key = CliRunner().invoke(main, ["keygen"]).output.strip()
    assert SecretBox([key]).open(SecretBox([key]).seal({"a": "b"})) == {"a": "b"} and len(key) == 44
