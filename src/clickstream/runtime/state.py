"""Where a job's operator state lives: tables in one DuckDB database per job.

Every stateful operator keeps its state in tables named after its operator id, in this one
database, so a later checkpoint is one transaction over one file.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid

import duckdb

from clickstream.duck import DuckSession


class JobState(DuckSession):
    """The job's DuckDB connection: operators run their batch SQL and keep their tables here."""

    def __init__(
        self, time_zone: str = "UTC", path: str = ":memory:", con: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        super().__init__(time_zone, path, con)
        self._ids = itertools.count()
        self._spill_dir: str | None = None  # set on the job's own connection, not its cursors

    def spill(self, memory_limit: int | None, tmp_root: str = "") -> None:
        """Cap the database's memory at `memory_limit` bytes (None: DuckDB's default) and let what
        outgrows it spill to a directory of this job's own under `tmp_root` (default: the system's
        temporary directory), created by DuckDB only when it first spills, removed on close.
        Without this an in-memory database spills to `.tmp` in the working directory."""
        root = tmp_root or tempfile.gettempdir()
        os.makedirs(root, exist_ok=True)
        self._spill_dir = os.path.join(root, f"clickstream-spill-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.con.execute(f"SET temp_directory = '{_sql_string(self._spill_dir)}'")
        if memory_limit is not None:
            self.con.execute(f"SET memory_limit = '{memory_limit}B'")

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._spill_dir is not None:
                shutil.rmtree(self._spill_dir, ignore_errors=True)

    def cursor(self) -> JobState:
        """A connection to the same database for another thread (one connection is not safe to
        share between threads)."""
        other = JobState(self.time_zone, con=self.con.cursor())
        other._ids = self._ids  # table names stay unique across the job's connections
        return other

    def new_prefix(self, kind: str) -> str:
        """A unique table-name prefix for one operator's state."""
        return f"{kind}_{next(self._ids)}"


def _sql_string(text: str) -> str:
    return text.replace("'", "''")
