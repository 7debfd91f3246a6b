"""Direct access to the test databases (SQLite, PostgreSQL, MariaDB) for the connector tests.

`conftest.py` beside this file turns it into the `db` (each database) and `server_db` (the ones
behind a network connection) fixtures.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from clickstream.connectors.jdbc_dialects import dialect_for


class Db:
    """Direct access to one test database: set tables up, read what a sink wrote, drop them."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url
        self.dialect = dialect_for(url)
        self.conn = self.dialect.connect(self.dialect.url.params.get("user"), None)
        self._tables: list[str] = []

    def new_table(self) -> str:
        name = f"cs_test_{uuid.uuid4().hex[:12]}"
        self._tables.append(name)
        return name

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.cursor()
        cursor.execute(sql.replace("?", self.dialect.placeholder), params)
        rows = cursor.fetchall() if cursor.description else []
        cursor.close()
        self.conn.commit()
        return [tuple(row) for row in rows]

    def insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join([self.dialect.placeholder] * len(rows[0]))
        if self.kind == "sqlite":  # sqlite3 binds no Decimal; its NUMERIC affinity parses text
            rows = [tuple(str(v) if isinstance(v, Decimal) else v for v in row) for row in rows]
        cursor = self.conn.cursor()
        cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        cursor.close()
        self.conn.commit()

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        """All rows, sorted with NULLs first whatever the database's own order."""
        rows = self.execute(f"SELECT * FROM {table}")
        return sorted(rows, key=lambda row: [(v is not None, v) for v in row])

    def category_table(self, rows: list[tuple[Any, ...]]) -> str:
        name = self.new_table()
        self.execute(f"CREATE TABLE {name} (sub_category_id BIGINT, parent_category_name VARCHAR(100))")
        if rows:
            self.insert(name, rows)
        return name

    def kill(self, conn: Any) -> None:
        """End another session from the server side, as a restart or idle timeout would."""
        if self.kind == "postgres":
            self.execute("SELECT pg_terminate_backend(?)", (conn.info.backend_pid,))
        else:
            self.execute("KILL ?", (conn.thread_id(),))

    def key_index(self, table: str) -> tuple[list[str], bool]:
        """(columns, unique) of the table's only index."""
        if self.kind == "sqlite":
            ((_, index, unique, *_),) = self.execute(f"PRAGMA index_list({table})")
            columns = [r[2] for r in self.execute(f"PRAGMA index_info({index})")]
            return columns, bool(unique)
        if self.kind == "postgres":
            ((definition,),) = self.execute("SELECT indexdef FROM pg_indexes WHERE tablename = ?", (table,))
            inside = definition[definition.rindex("(") + 1 : -1]
            return [c.strip().strip('"') for c in inside.split(",")], "UNIQUE" in definition
        rows = self.execute(f"SHOW INDEX FROM {table}")
        return [r[4] for r in sorted(rows, key=lambda r: r[3])], rows[0][1] == 0

    def column_types(self, table: str) -> dict[str, str]:
        if self.kind == "sqlite":
            return {r[1]: r[2] for r in self.execute(f"PRAGMA table_info({table})")}
        column = "data_type" if self.kind == "postgres" else "column_type"
        rows = self.execute(
            f"SELECT column_name, {column} FROM information_schema.columns WHERE table_name = ?",
            (table,),
        )
        return {name: str(kind).lower() for name, kind in rows}

    def close(self) -> None:
        self.conn.rollback()
        for table in self._tables:
            self.execute(f"DROP TABLE IF EXISTS {table}")
        self.conn.close()
