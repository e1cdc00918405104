"""The `connector` command as a newcomer and support staff meet it: every refusal is one line that says
what to do, with a non-zero exit, never a traceback or a silent success."""

from __future__ import annotations

import socket

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import update

from connector import cli
from connector.base.models import InboxEvent
from connector.cli import main
from tests.conftest import load_fixture
from tests.stack import STORE


def _env(stack) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"DATABASE_URL": str(stack.rt.settings.database_url), "CONNECTOR_ENCRYPTION_KEY": "test-encryption-key"}


def _cli(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), env=env)


def _one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _groups(group: click.Group, prefix: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _groups(command, (*prefix, name))


@pytest.mark.parametrize("group", list(_groups(main)), ids=lambda g: " ".join(g) or "connector")
def test_no_help_line_is_cut_off_in_an_80_column_terminal(group):
    result = CliRunner().invoke(main, [*group, "--help"], terminal_width=80)
    assert result.exit_code == 0
    commands = result.output.split("Commands:", 1)[1]
    assert "..." not in commands, commands


def test_an_unknown_status_is_refused_with_the_known_ones(sqlite_stack):
    result = _cli("events", "--status", "bogus", env=_env(sqlite_stack))
    assert result.exit_code == 2
    assert "'bogus' is not one of" in result.output and "'failed'" in result.output


def test_events_show_the_order_number_and_filter_by_status(sqlite_stack):
    order = load_fixture("shopify", "order_discount_multiline.json")
    assert sqlite_stack.post_shopify(order).status_code == 200
    sqlite_stack.run_jobs()
    listed = _cli("events", env=_env(sqlite_stack))
    assert listed.exit_code == 0
    row = listed.output.strip().splitlines()[0]
    assert order["name"] in row and "succeeded" in row and STORE in row
    assert _cli("events", "--status", "failed", env=_env(sqlite_stack)).output == ""


def test_retry_refuses_an_unknown_id_and_retries_nothing(sqlite_stack):
    sqlite_stack.post_shopify(load_fixture("shopify", "order_discount_multiline.json"))
    with sqlite_stack.rt.sessions.begin() as session:
        session.execute(update(InboxEvent).values(status="failed", last_error="made to fail"))
        event_id = session.query(InboxEvent.id).scalar()
    line = _one_line_error(_cli("retry", str(event_id), "999999", env=_env(sqlite_stack)))
    assert "no event 999999" in line and "nothing was retried" in line
    with sqlite_stack.rt.sessions() as session:
        assert session.get(InboxEvent, event_id).status == "failed"
    retried = _cli("retry", str(event_id), env=_env(sqlite_stack))
    assert retried.exit_code == 0 and "1 event queued for retry" in retried.output


def test_retrying_an_event_that_is_not_failed_says_so_and_exits_non_zero(sqlite_stack):
    sqlite_stack.post_shopify(load_fixture("shopify", "order_discount_multiline.json"))
    sqlite_stack.run_jobs()
    with sqlite_stack.rt.sessions() as session:
        event_id = session.query(InboxEvent.id).scalar()
    result = _cli("retry", str(event_id), env=_env(sqlite_stack))
    assert result.exit_code == 1
    assert f"event {event_id} is succeeded: only failed, skipped, ignored events are retried" in result.output
    assert "0 events queued" in result.output


def test_send_sample_with_no_server_is_one_line_saying_what_to_do(sqlite_stack):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _cli("send-sample", "--url", f"http://127.0.0.1:{port}", "--store", STORE, env=_env(sqlite_stack))
    line = _one_line_error(result)
    assert f"nothing answers at http://127.0.0.1:{port}" in line and "connector run" in line and "--url" in line


def test_run_on_a_busy_port_names_another_before_printing_anything(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        env = {"CONNECTOR_INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": ""}
        line = _one_line_error(_cli("run", "--port", str(port), env=env))
    assert f"port {port} on 127.0.0.1 is in use" in line and f"connector run --port {port + 1}" in line
    assert not (tmp_path / "instance").exists()  # nothing was set up for a server that cannot start


def test_a_database_without_the_connector_tables_is_one_line_naming_the_fix(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    for args in (["events"], ["retry", "1"], ["send-sample"]):
        line = _one_line_error(_cli(*args, env={"DATABASE_URL": url}))
        assert "has no connector tables yet" in line and "connector db upgrade" in line


@pytest.mark.parametrize(
    ("database_url", "processes"),
    [
        ("postgresql+psycopg://app@db.internal:5432/connector", 8),  # its own machine: every core for the door
        ("postgresql+psycopg://app@10.0.0.5/connector", 8),
        ("postgresql+psycopg://app@127.0.0.1:5432/connector", 4),  # sharing the cores with PostgreSQL
        ("postgresql+psycopg://app@localhost/connector", 4),
        ("postgresql+psycopg://app@[::1]/connector", 4),
        ("postgresql+psycopg://app@/connector?host=/var/run/postgresql", 4),  # a Unix socket
        ("postgresql+psycopg://app@/connector", 4),
        ("postgresql+psycopg://app@/connector?host=localhost&host=db.internal", 4),
        ("sqlite:////srv/connector.db", 4),
        ("", 4),  # the embedded default, SQLite
        ("not a url", 8),  # `connector web` refuses it itself, with its reason
    ],
)
def test_web_takes_every_core_unless_the_database_shares_them(monkeypatch, database_url, processes) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(cli, "cores", lambda: 8)
    assert cli.web_processes(database_url) == processes


def test_web_on_one_core_with_a_local_database_still_has_a_process(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(cli, "cores", lambda: 1)
    assert cli.web_processes("postgresql+psycopg://app@127.0.0.1/connector") == 1
