"""The inbox INSERT in libpq's own terms, for the receivers' writers (connector.intake.inbox_writer).

Numbered placeholders for a prepared statement per batch size, each row's parameters encoded here
as libpq text (the body as binary), the new ids read back from the result, and the results awaited
on the event loop. psycopg's cursor layer cost more Python than the rest of a delivery's path; these
few functions are what it did for us.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import pq
from psycopg.pq.abc import PGconn, PGresult

from connector.intake.inbox import COLUMNS, INSERT, InboxUnavailable


@functools.cache
def numbered_sql(count: int) -> bytes:
    """The INSERT of `count` rows with libpq's numbered placeholders."""
    per_row = len(COLUMNS)
    values = ", ".join("(" + ", ".join(f"${n * per_row + c + 1}" for c in range(per_row)) + ")" for n in range(count))
    return INSERT.format(values=values).encode()


def statement_name(size: int) -> bytes:
    """The prepared statement of a batch of `size` rows."""
    return b"inbox_insert_%d" % size


FORMATS = [1 if c == "body" else 0 for c in COLUMNS]  # a row's parameter formats: the body binary, the rest text


def _encoded(row: dict) -> list[bytes | None]:
    """A row's parameters in libpq's text format (the body in binary), in COLUMNS order."""
    out: list[bytes | None] = []
    for column in COLUMNS:
        value = row[column]
        if value is None or column == "body":
            out.append(value)
            continue
        if column == "headers":
            text = orjson.dumps(value)  # the same JSON as json.dumps, a few microseconds sooner
        elif isinstance(value, datetime):
            text = value.isoformat().encode()
        else:
            text = str(value).encode()
        if b"\x00" in text:  # libpq would cut a text parameter there; PostgreSQL cannot store it anyway
            raise InboxUnavailable(f"{column} contains a NUL character, which PostgreSQL cannot store")
        out.append(text)
    return out


def batch_values(rows: list[dict]) -> list[bytes | None]:
    """The parameters of a batch: each row's, in order (formats: FORMATS * len(rows))."""
    values: list[bytes | None] = []
    for new_row in rows:
        values += _encoded(new_row)
    return values


def checked(result: PGresult, wanted: pq.ExecStatus) -> PGresult:
    """The result, or InboxUnavailable with PostgreSQL's message when it is not `wanted`."""
    if result.status != wanted:
        raise InboxUnavailable((result.error_message or b"no answer from PostgreSQL").decode(errors="replace").strip())
    return result


def new_ids(result: PGresult, rows: list[dict]) -> list[int | None]:
    """Each row's new id, None for a duplicate (the same delivery twice in one batch: the first is new)."""
    new = {
        (int(_cell(result, n, 1)), _cell(result, n, 2).decode()): int(_cell(result, n, 0))
        for n in range(result.ntuples)
    }
    return [new.pop((r["store_id"], r["dedupe_key"]), None) for r in rows]


def _cell(result: PGresult, row_number: int, column: int) -> bytes:
    value = result.get_value(row_number, column)
    if value is None:  # id, store_id and dedupe_key are NOT NULL columns
        raise InboxUnavailable("PostgreSQL returned NULL for a NOT NULL column")
    return value


def is_dead(pgconn: PGconn) -> bool:
    """libpq knows the connection is lost (a PostgreSQL restart, a failover)."""
    return pgconn.status == pq.ConnStatus.BAD


async def results(conn: psycopg.AsyncConnection[Any]) -> list[PGresult]:
    """Every result of what was just sent on `conn`'s PGconn (send_prepare, send_query_prepared),
    awaited on the event loop: libpq's own recipe for a non-blocking connection (flush until all is
    sent, then read until PQgetResult has no more), in psycopg's documented PGconn calls.

    psycopg's AsyncConnection.execute() does the same with psycopg.generators.execute and
    AsyncConnection.wait, neither of them documented; this loop costs no more CPU (measured with
    psycopg 3.3.9), while a cursor, the documented route, costs about half as much again per row.
    """
    pgconn, loop, fd = conn.pgconn, asyncio.get_running_loop(), conn.fileno()
    while pgconn.flush():  # 1: libpq could not send everything yet
        # Read too while waiting: the server may stop reading from us until we read what it sent.
        await _socket_ready(loop, fd, writing=True)
        pgconn.consume_input()
    found: list[PGresult] = []
    while True:
        while pgconn.is_busy():  # PQgetResult would block until more of the answer arrives
            await _socket_ready(loop, fd, writing=False)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:  # the last result of the command
            return found
        found.append(result)


async def _socket_ready(loop: asyncio.AbstractEventLoop, fd: int, writing: bool) -> None:
    """Until the socket can be read (or, when `writing`, written)."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    if writing:
        loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
        if writing:
            loop.remove_writer(fd)
