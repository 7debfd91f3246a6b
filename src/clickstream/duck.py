"""A DuckDB connection that takes and gives Arrow tables: how every layer runs its batch SQL.

The runtime keeps operator state in one (`runtime.state.JobState`); a connector's decoder runs its
per-batch decoding query in one of its own.
"""

from __future__ import annotations

import warnings

import duckdb
import pyarrow as pa


class DuckSession:
    """One DuckDB connection in a fixed time zone; Arrow tables are bound by name for one query."""

    def __init__(
        self, time_zone: str = "UTC", path: str = ":memory:", con: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        self.con = con or duckdb.connect(path)
        self.time_zone = time_zone
        self.con.execute(f"SET TimeZone = '{time_zone}'")
        # Arrow output order must follow input order for projections; DuckDB keeps it by default.
        self.con.execute("SET preserve_insertion_order = true")

    def _register(self, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            self.con.register(name, _parallel_chunks(table))

    def query(self, sql: str, **tables: pa.Table) -> pa.Table:
        """Run `sql` with Arrow tables bound by name, return the result as Arrow."""
        self._register(tables)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.con.sql(sql).to_arrow_table()
        finally:
            for name in tables:
                self.con.unregister(name)

    def execute(self, sql: str, **tables: pa.Table) -> None:
        self._register(tables)
        try:
            self.con.execute(sql).fetchall()  # drain: DuckDB allows no open result
        finally:
            for name in tables:
                self.con.unregister(name)

    def scalar(self, sql: str, **tables: pa.Table):
        self._register(tables)
        try:
            rows = self.con.execute(sql).fetchall()
            return rows[0][0] if rows else None
        finally:
            for name in tables:
                self.con.unregister(name)

    def close(self) -> None:
        self.con.close()


_CHUNK_ROWS = 32_768


def _parallel_chunks(table: pa.Table) -> pa.Table:
    """DuckDB scans an Arrow table one record batch per task: a batch of one big chunk would run
    on one core. Cut it into slices (zero-copy) so every core gets work."""
    if (
        table.num_rows <= 2 * _CHUNK_ROWS
        or table.num_columns == 0
        or (table.column(0).num_chunks > table.num_rows // _CHUNK_ROWS)
    ):
        return table
    return pa.Table.from_batches(table.to_batches(max_chunksize=_CHUNK_ROWS), table.schema)
