"""The process itself: it refuses to run on a key that cannot open what it stored."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from connector.app import create_app
from connector.cli import main
from connector.queue import EmbeddedJobQueue
from connector.runtime import Runtime


def _env(stack, key: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"DATABASE_URL": str(stack.rt.settings.database_url), "CONNECTOR_ENCRYPTION_KEY": key,
            "REDIS_URL": "redis://127.0.0.1:6379/15"}


@pytest.mark.parametrize("command", [["web"], ["worker", "--burst"], ["scheduler"]])
def test_a_wrong_encryption_key_refuses_to_start_with_a_clear_message(sqlite_stack, command):
    result = CliRunner().invoke(main, command, env=_env(sqlite_stack, "not-the-key-the-secrets-were-sealed-with"))
    assert result.exit_code == 2, result.output
    assert "not starting: CONNECTOR_ENCRYPTION_KEY does not open the stored secrets of store acme-us" in result.output
    assert "Traceback" not in result.output


def test_readyz_reports_a_key_that_cannot_open_the_secrets(sqlite_stack):
    assert sqlite_stack.client.get("/readyz").json["checks"]["secrets"] == "ok"
    wrong = Runtime.from_settings(sqlite_stack.rt.settings.with_(encryption_key="some-other-key"),
                                  queue=EmbeddedJobQueue())
    try:
        answer = create_app(runtime=wrong).test_client().get("/readyz")
    finally:
        wrong.close()
    assert answer.status_code == 503
    assert "CONNECTOR_ENCRYPTION_KEY does not open" in answer.json["checks"]["secrets"]
