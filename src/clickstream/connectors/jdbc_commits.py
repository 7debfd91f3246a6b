"""Exactly-once appends to a database: which checkpoint each writer committed last.

A table `clickstream_commits (writer, checkpoint_id)` in the target database holds, per job sink,
the last checkpoint whose rows it appended. The rows and this note are written in one transaction,
so after a crash the note says whether a checkpoint's rows are in (then a restored job must not
append them again) or not (then it must).
"""

from __future__ import annotations

from typing import Any

from clickstream.connectors.jdbc_dialects import BaseDialect

TABLE = "clickstream_commits"
_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "writer VARCHAR(512) NOT NULL PRIMARY KEY, checkpoint_id BIGINT NOT NULL)"
)


def last_committed(cursor: Any, dialect: BaseDialect, writer: str) -> int:
    """The last checkpoint `writer` committed (-1: none), creating the table on first use."""
    cursor.execute(_CREATE)
    cursor.execute(f"SELECT checkpoint_id FROM {TABLE} WHERE writer = {dialect.placeholder}", (writer,))
    row = cursor.fetchone()
    return -1 if row is None else int(row[0])


def note_committed(cursor: Any, dialect: BaseDialect, writer: str, checkpoint: int) -> None:
    """Record, in the caller's transaction, that `writer` committed `checkpoint`."""
    cursor.execute(f"DELETE FROM {TABLE} WHERE writer = {dialect.placeholder}", (writer,))
    cursor.execute(
        f"INSERT INTO {TABLE} (writer, checkpoint_id) VALUES ({dialect.placeholder}, {dialect.placeholder})",
        (writer, checkpoint),
    )
