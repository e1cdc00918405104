"""Whose commits wait for the disk. The door's and the console's commits to our PostgreSQL database are flushed
before they return (a 200 to a store promises its delivery is kept); a job worker's are not (synchronous_commit
off): whatever a worker commits is redone from the durably stored inbox row should the database server crash
before flushing it, as if the worker had been killed. The ERP's database is the merchant's: its commits always
wait."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from adapters import sqlengine
from connector import cli
from connector.base.queue import EmbeddedJobQueue
from connector.base.runtime import Runtime
from tests.conftest import REDIS_URL
from tests.stack import Stack, build_stack


@pytest.fixture
def pg_stack(pg_databases, tmp_path) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    made = build_stack("postgres", tmp_path, *pg_databases)
    try:
        yield made
    finally:
        made.close()


def _setting(conn) -> str:  # type: ignore[no-untyped-def]
    return str(conn.execute(text("SHOW synchronous_commit")).scalar_one())


def _commits_of(rt: Runtime) -> set[str]:
    """synchronous_commit as the runtime's session and autocommit connections have it."""
    with rt.sessions() as session:
        in_session = _setting(session.connection())
    with rt.autocommit_connection() as conn:
        in_autocommit = _setting(conn)
    return {in_session, in_autocommit}


def test_a_workers_commits_do_not_wait_for_the_disk_the_doors_and_the_erps_do(pg_stack: Stack) -> None:
    settings = pg_stack.rt.settings
    assert _commits_of(pg_stack.rt) == {"on"}  # the web process: the door and the console
    worker = Runtime.from_settings(settings, queue=EmbeddedJobQueue(), worker=True)
    try:
        assert _commits_of(worker) == {"off"}
        with worker.batch():  # a drain's held connections are the same engine's
            assert _commits_of(worker) == {"off"}
        erp = worker.erp()
        with erp.engine.connect() as conn:  # type: ignore[attr-defined]
            assert _setting(conn) == "on"
    finally:
        worker.close()
    waits = settings.with_(worker_synchronous_commit=True)  # CONNECTOR_WORKER_SYNCHRONOUS_COMMIT=on
    durable = Runtime.from_settings(waits, queue=EmbeddedJobQueue(), worker=True)
    try:
        assert _commits_of(durable) == {"on"}
    finally:
        durable.close()


def test_the_worker_command_builds_a_workers_runtime(pg_stack: Stack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    built: list[bool] = []
    real = Runtime.from_settings.__func__  # type: ignore[attr-defined]

    def recording(cls, settings, queue=None, *, worker=False):  # type: ignore[no-untyped-def]
        built.append(worker)
        return real(cls, settings, queue, worker=worker)

    monkeypatch.setattr(Runtime, "from_settings", classmethod(recording))
    env = {
        "DATABASE_URL": pg_stack.rt.settings.database_url,
        "REDIS_URL": REDIS_URL,
        "CONNECTOR_QUEUE": "worker-commits-test",
        "CONNECTOR_ENCRYPTION_KEY": "test-encryption-key",
        "CONNECTOR_INSTANCE_PATH": str(pg_stack.rt.settings.instance_path),
    }
    result = CliRunner().invoke(cli.main, ["worker", "--burst"], env=env)
    assert result.exit_code == 0, result.output
    assert built == [True]


def test_server_settings_keep_the_urls_own_options_and_the_statement_timeout(pg_databases) -> None:  # type: ignore[no-untyped-def]
    url = pg_databases[0] + "?options=-c%20application_name%3Dfrom-url"
    engine = sqlengine.make_engine(url, statement_timeout=7, server_settings={"synchronous_commit": "off"})
    try:
        with engine.connect() as conn:
            assert _setting(conn) == "off"
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "7s"
            assert conn.execute(text("SHOW application_name")).scalar_one() == "from-url"
    finally:
        engine.dispose()
