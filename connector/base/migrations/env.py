"""Alembic environment: the URL comes from the Config the CLI builds (connector.base.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from connector.base.db import make_engine
from connector.base.models import Base

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:  # connector.base.migrate always sets it; plain `alembic` without it has nothing to migrate
        raise RuntimeError("no sqlalchemy.url in the Alembic config: run the migrations with `connector db upgrade`")
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
