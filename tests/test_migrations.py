"""The migrations build exactly the schema the models describe, on PostgreSQL and on SQLite: a column or
index added to a model without its migration (or the other way round) fails here, not in production."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from connector.base.migrate import upgrade
from connector.base.models import Base


def drift(url: str) -> list:
    upgrade(url)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_migrations_build_the_schema_of_the_models(kind, tmp_path, request):
    if kind == "postgres":
        url, _ = request.getfixturevalue("pg_databases")
    else:
        url = f"sqlite:///{tmp_path / 'connector.db'}"
    assert drift(url) == []
