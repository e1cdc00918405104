"""Engine and session factory, built from settings by the app factory or the worker."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult, Engine, Result
from sqlalchemy.orm import Session, sessionmaker

from adapters.sqlengine import make_engine

__all__ = ["make_engine", "make_autocommit_sessionmaker", "make_sessionmaker", "rowcount"]


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_autocommit_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions on autocommit connections, where each statement commits on its own: for reads that need no
    transaction (each statement sees what is committed when it runs) and for a write of one statement. PostgreSQL
    is sent no BEGIN and no COMMIT or ROLLBACK around them: a drained order reads a dozen times, and those two
    round trips per read were a third of its database time. Never for writes that must commit together."""
    return sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)


def rowcount(result: Result[*tuple[Any, ...]]) -> int:
    """The rows an UPDATE or DELETE matched. Session.execute types every result as a Result; a DML
    statement's is a CursorResult, the only kind that counts rows."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"{type(result).__name__} has no rowcount: not the result of an UPDATE or DELETE")
    return result.rowcount
