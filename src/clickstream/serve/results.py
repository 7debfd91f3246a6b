"""Read-only access to the SQLite file the pipelines' JDBC sinks write their result tables into.

Every connection is opened with `mode=ro`, so the server can never write or lock the engine out for
long; table and column names from requests are checked against the file's own catalogue and only then
quoted into SQL, so a name can never smuggle SQL in. The file may not exist yet (the engine creates it
on its first write): that reads as "no tables", not as an error.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_S = 5.0
# The change poller waits less: it runs again in half a second, and must not hold up an SSE stream.
WATCH_BUSY_TIMEOUT_S = 1.0
# Tables up to this size are hashed in full to notice in-place updates (upsert sinks); larger ones
# are compared by row count and max rowid only, to keep polling cheap.
FINGERPRINT_MAX_ROWS = 20_000


class UnknownTableError(LookupError):
    """The name is not a table or view in the results file."""


class BadOrderByError(ValueError):
    """`order_by` names a column the table does not have."""


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str


@dataclass(frozen=True)
class TableInfo:
    name: str
    kind: str  # "table" or "view"
    columns: list[ColumnInfo]
    rows: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ResultsDB:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def uri(self) -> str:
        return self.path.resolve().as_uri() + "?mode=ro"

    def connect(self, timeout_s: float = BUSY_TIMEOUT_S) -> sqlite3.Connection | None:
        """A read-only connection, or None while the file does not exist."""
        if not self.path.is_file():
            return None
        # check_same_thread=False: SSE polls hop between worker threads, never concurrently.
        return sqlite3.connect(self.uri, uri=True, timeout=timeout_s, check_same_thread=False)

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        conn = self.connect()
        if conn is None:
            yield None
            return
        with closing(conn):
            yield conn

    def tables(self) -> list[TableInfo]:
        with self._reading() as conn:
            if conn is None:
                return []
            return [
                TableInfo(name, kind, _columns(conn, name), _count(conn, name))
                for name, kind in _catalogue(conn).items()
            ]

    def table_names(self) -> list[str]:
        with self._reading() as conn:
            return [] if conn is None else list(_catalogue(conn))

    def row_counts(self) -> dict[str, int]:
        with self._reading() as conn:
            return {} if conn is None else {n: _count(conn, n) for n in _catalogue(conn)}

    def rows(self, name: str, limit: int, order_by: str | None = None) -> dict[str, Any]:
        """Up to `limit` rows of one table as JSON-ready dicts; `order_by` is "a,-b" (- = descending)."""
        with self._reading() as conn:
            if conn is None or name not in _catalogue(conn):
                raise UnknownTableError(name)
            columns = _columns(conn, name)
            order = _order_clause(order_by, [c.name for c in columns])
            cursor = conn.execute(f"SELECT * FROM {quote(name)}{order} LIMIT ?", (limit,))
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, map(_json_value, row), strict=True)) for row in cursor]
            return {
                "name": name,
                "columns": [asdict(c) for c in columns],
                "rows": rows,
                "total": _count(conn, name),
                "limit": limit,
            }


def quote(identifier: str) -> str:
    """SQLite identifier quoting; only ever applied to names read from the catalogue."""
    return '"' + identifier.replace('"', '""') + '"'


# the exactly-once sinks' bookkeeping (connectors/jdbc_commits.py), not a result
_BOOKKEEPING = "clickstream_commits"


def _catalogue(conn: sqlite3.Connection) -> dict[str, str]:
    cursor = conn.execute(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> ? ORDER BY name",
        (_BOOKKEEPING,),
    )
    return dict(cursor.fetchall())


def _columns(conn: sqlite3.Connection, name: str) -> list[ColumnInfo]:
    cursor = conn.execute("SELECT name, type FROM pragma_table_info(?) ORDER BY cid", (name,))
    return [ColumnInfo(n, t or "") for n, t in cursor.fetchall()]


def _count(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0])


def _order_clause(order_by: str | None, columns: list[str]) -> str:
    if not order_by:
        return ""
    terms = []
    for raw in order_by.split(","):
        term = raw.strip()
        descending = term.startswith("-")
        column = term.lstrip("-").strip()
        if column not in columns:
            raise BadOrderByError(f"unknown column {column!r} in order_by; columns: {', '.join(columns)}")
        terms.append(f"{quote(column)} {'DESC' if descending else 'ASC'}")
    return " ORDER BY " + ", ".join(terms)


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/Infinity
    return value


class ChangeWatcher:
    """Tells which result tables changed since the last poll; one per SSE stream.

    `PRAGMA data_version` moves whenever another connection commits, so an idle file costs one
    pragma per poll; only then are the tables fingerprinted to find which of them changed.
    Polls run on worker threads and a stream may close while one is still running (its client
    left, the server stops): a lock keeps `close` from pulling the connection out from under it.
    """

    def __init__(self, db: ResultsDB) -> None:
        self.db = db
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._inode: int | None = None
        self._version: int | None = None
        self._fingerprints: dict[str, tuple[Any, ...]] = {}
        self._primed = False

    def poll(self) -> list[str]:
        """Names of tables created, changed or dropped since the previous poll.

        The first poll only records the baseline (the client fetches everything when it connects);
        a file that does not exist yet is a baseline of no tables, so its tables show up as changes.
        """
        with self._lock:
            return self._poll()

    def _poll(self) -> list[str]:
        conn = self._connection()
        if conn is None:
            self._primed = True
            return []
        try:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version == self._version:
                return []
            # A read transaction makes the fingerprints one consistent snapshot of the file.
            with _read_transaction(conn):
                current = {name: _fingerprint(conn, name) for name in _catalogue(conn)}
        except sqlite3.OperationalError:
            # Locked past the timeout: the version is not recorded, so the next poll retries. Without a
            # baseline yet, "no tables" stands in, so the first good read reports every table.
            self._primed = True
            return []
        changed = sorted(
            n
            for n in current.keys() | self._fingerprints.keys()
            if current.get(n) != self._fingerprints.get(n)
        )
        first, self._primed = not self._primed, True
        self._version, self._fingerprints = version, current
        return [] if first else changed

    def _connection(self) -> sqlite3.Connection | None:
        inode = _inode(self.db.path)
        if inode != self._inode:
            # The file was created, replaced or removed: a connection to the old inode sees nothing new.
            self.close()
            self._inode, self._version = inode, None
        if self._conn is None and inode is not None:
            try:
                self._conn = self.db.connect(WATCH_BUSY_TIMEOUT_S)
            except sqlite3.OperationalError:
                return None
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


@contextmanager
def _read_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _fingerprint(conn: sqlite3.Connection, name: str) -> tuple[Any, ...]:
    count = _count(conn, name)
    if count > FINGERPRINT_MAX_ROWS:
        try:
            return (count, conn.execute(f"SELECT max(rowid) FROM {quote(name)}").fetchone()[0])
        except sqlite3.OperationalError:  # WITHOUT ROWID tables and views
            return (count,)
    digest = hashlib.blake2b(digest_size=16)
    for row in conn.execute(f"SELECT * FROM {quote(name)}"):
        digest.update(repr(row).encode())
    return (count, digest.hexdigest())
