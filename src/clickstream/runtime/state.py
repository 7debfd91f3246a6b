"""Where a job's operator state lives: tables in one DuckDB database per job.

Every stateful operator keeps its state in tables named after its operator id, in this one
database, so a later checkpoint is one transaction over one file.
"""

from __future__ import annotations

import itertools

import duckdb

from clickstream.duck import DuckSession


class JobState(DuckSession):
    """The job's DuckDB connection: operators run their batch SQL and keep their tables here."""

    def __init__(
        self, time_zone: str = "UTC", path: str = ":memory:", con: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        super().__init__(time_zone, path, con)
        self._ids = itertools.count()

    def cursor(self) -> JobState:
        """A connection to the same database for another thread (one connection is not safe to
        share between threads)."""
        other = JobState(self.time_zone, con=self.con.cursor())
        other._ids = self._ids  # table names stay unique across the job's connections
        return other

    def new_prefix(self, kind: str) -> str:
        """A unique table-name prefix for one operator's state."""
        return f"{kind}_{next(self._ids)}"
