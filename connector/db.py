"""Engine and session factory, built from settings by the app factory or the worker."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adapters.sqlengine import make_engine

__all__ = ["make_engine", "make_sessionmaker"]


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
