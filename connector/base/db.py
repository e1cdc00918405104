"""Engine and session factory, built from settings by the app factory or the worker."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult, Engine, Result
from sqlalchemy.orm import Session, sessionmaker

from adapters.sqlengine import make_engine

__all__ = ["make_engine", "make_sessionmaker", "rowcount"]


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def rowcount(result: Result[*tuple[Any, ...]]) -> int:
    """The rows an UPDATE or DELETE matched. Session.execute types every result as a Result; a DML
    statement's is a CursorResult, the only kind that counts rows."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"{type(result).__name__} has no rowcount: not the result of an UPDATE or DELETE")
    return result.rowcount
