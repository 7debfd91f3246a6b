"""Read-only access to the SQLite file the pipelines' JDBC sinks write their result tables into.

Every connection is opened with `mode=ro`, so the server can never write or lock the engine out for
long; table and column names from requests are checked against the file's own catalogue and only then
quoted into SQL, so a name can never smuggle SQL in. The file may not exist yet (the engine creates it
on its first write): that reads as "no tables", not as an error.

The job writes to the same file, and in SQLite's default rollback-journal mode every read holds a
shared lock that a committing writer must wait for. So reads stay short: row counts scan at most
`COUNT_EXACT_MAX` rows (beyond that they are estimated from the rowid range, an index lookup), each
answer is shared by every request asking the same question while the file is unchanged
(`SharedReads`), and a file that cannot be read (locked past `READ_TIMEOUT_S`, a hot journal left by
a killed writer, corrupt) raises `ResultsUnavailable` with a sentence saying why, never a traceback.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# A request waits this long for a writer's lock, then answers 503: a writer holds it for one commit,
# milliseconds; and a Prometheus scrape (timeout 1 s at a 1 s interval) must still get its answer.
READ_TIMEOUT_S = 0.5
# The change poller waits less: it runs again in half a second, and must not hold up the streams.
WATCH_BUSY_TIMEOUT_S = 0.5
# Tables up to this size are hashed in full to notice in-place updates (upsert sinks); larger ones
# are compared by row count and rowid range only, to keep polling cheap.
FINGERPRINT_MAX_ROWS = 20_000
# Row counts up to this are exact; a larger table is counted from its rowid range (no full scan).
COUNT_EXACT_MAX = 100_000
# How long one answer is shared while the file looks unchanged (its size and mtime can miss a
# same-size rewrite within the file system's timestamp granularity; this bounds the staleness).
SHARE_FOR_S = 1.0
# A failed read is answered from memory this long while the file is unchanged, so a lock held for
# long does not make every request wait READ_TIMEOUT_S; a writer that commits, rolls back or
# repairs the file changes it, and the next request reads again at once.
RETRY_FAILED_AFTER_S = 5.0


class UnknownTableError(LookupError):
    """The name is not a table or view in the results file."""


class BadOrderByError(ValueError):
    """`order_by` names a column the table does not have."""


class ResultsUnavailable(RuntimeError):
    """The results file exists but cannot be read now; the message says why and what to do.
    Reads are retried on the next request: the file recovers by itself once the cause is gone."""


def unavailable(path: Path, error: sqlite3.Error) -> ResultsUnavailable:
    name = getattr(error, "sqlite_errorname", "")
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "locked" in str(error):
        why = "is locked by a writer (a long transaction); retrying"
    elif name == "SQLITE_READONLY_ROLLBACK":
        why = (
            "has a hot journal left by a writer that stopped mid-transaction; it is readable again "
            "once a writer opens it (start the job again, or run: sqlite3 FILE 'PRAGMA quick_check')"
        )
    elif name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or isinstance(error, sqlite3.DatabaseError):
        why = f"is not a readable SQLite database ({error})"
    else:
        why = f"cannot be read ({error})"
    return ResultsUnavailable(f"the results file {path} {why}")


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
    rows_exact: bool = True  # False: estimated from the rowid range (a table over COUNT_EXACT_MAX rows)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ResultsDB:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.shared = SharedReads(self._signature)

    @property
    def uri(self) -> str:
        return self.path.resolve().as_uri() + "?mode=ro"

    def connect(self, timeout_s: float = READ_TIMEOUT_S) -> sqlite3.Connection | None:
        """A read-only connection, or None while the file does not exist."""
        if not self.path.is_file():
            return None
        # check_same_thread=False: the change poller hops between worker threads, never concurrently.
        return sqlite3.connect(self.uri, uri=True, timeout=timeout_s, check_same_thread=False)

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        try:
            conn = self.connect()
            if conn is None:
                yield None
                return
            with closing(conn):
                yield conn
        except sqlite3.Error as e:
            raise unavailable(self.path, e) from None

    def _signature(self) -> tuple[Any, ...]:
        """Changes whenever a writer commits (the file, or its WAL in WAL mode, is rewritten)."""
        return tuple(_stat(Path(f"{self.path}{suffix}")) for suffix in ("", "-wal", "-journal"))

    def tables(self) -> list[TableInfo]:
        return self.shared.get(("tables",), self._tables)

    def _tables(self) -> list[TableInfo]:
        with self._reading() as conn:
            if conn is None:
                return []
            return [
                TableInfo(name, kind, _columns(conn, name), *_count(conn, name))
                for name, kind in _catalogue(conn).items()
            ]

    def table_names(self) -> list[str]:
        with self._reading() as conn:
            return [] if conn is None else list(_catalogue(conn))

    def row_counts(self) -> dict[str, int]:
        return {t.name: t.rows for t in self.tables()}

    def estimated_counts(self) -> list[str]:
        """The tables whose `row_counts` are estimates (over COUNT_EXACT_MAX rows)."""
        return [t.name for t in self.tables() if not t.rows_exact]

    def rows(self, name: str, limit: int, order_by: str | None = None) -> dict[str, Any]:
        """Up to `limit` rows of one table as JSON-ready dicts; `order_by` is "a,-b" (- = descending)."""
        return self.shared.get(("rows", name, limit, order_by), lambda: self._rows(name, limit, order_by))

    def _rows(self, name: str, limit: int, order_by: str | None) -> dict[str, Any]:
        with self._reading() as conn:
            if conn is None or name not in _catalogue(conn):
                raise UnknownTableError(name)
            columns = _columns(conn, name)
            order = _order_clause(order_by, [c.name for c in columns])
            cursor = conn.execute(f"SELECT * FROM {quote(name)}{order} LIMIT ?", (limit,))
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, map(_json_value, row), strict=True)) for row in cursor]
            total, exact = _count(conn, name)
            return {
                "name": name,
                "columns": [asdict(c) for c in columns],
                "rows": rows,
                "total": total,
                "total_exact": exact,
                "limit": limit,
            }


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class SharedReads:
    """One read per question while the file is unchanged, however many requests ask it.

    An answer (or a `ResultsUnavailable`) is kept with the file's signature and reused while the
    signature holds and it is younger than `share_for_s` (`RETRY_FAILED_AFTER_S` for a failure);
    requests that ask while it is being read wait for that read instead of starting their own (one
    lock per question).
    """

    MAX_ENTRIES = 256

    def __init__(
        self,
        signature: Callable[[], Any],
        share_for_s: float = SHARE_FOR_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._signature = signature
        self.share_for_s = share_for_s
        self._clock = clock
        self._lock = threading.Lock()
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._answers: dict[tuple[Any, ...], tuple[Any, float, Any]] = {}
        self.reads = 0  # how many times a question was actually read (tests count them)

    def get(self, key: tuple[Any, ...], read: Callable[[], T]) -> T:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            signature = self._signature()
            kept = self._answers.get(key)
            if kept is not None and kept[0] == signature and self._clock() - kept[1] < self._keep(kept[2]):
                return _answer(kept[2])
            self.reads += 1
            try:
                answer: Any = read()
            except (ResultsUnavailable, UnknownTableError, BadOrderByError) as e:
                answer = e
            with self._lock:
                if len(self._answers) >= self.MAX_ENTRIES:
                    self._answers.clear()  # many distinct questions: start over rather than grow
                self._answers[key] = (signature, self._clock(), answer)
            return _answer(answer)

    def _keep(self, answer: Any) -> float:
        failed = isinstance(answer, ResultsUnavailable)
        return max(self.share_for_s, RETRY_FAILED_AFTER_S) if failed else self.share_for_s


def _answer(answer: Any) -> Any:
    if isinstance(answer, Exception):
        raise answer
    return answer


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


def _count(conn: sqlite3.Connection, name: str, exact_max: int = COUNT_EXACT_MAX) -> tuple[int, bool]:
    """(rows, exact): counted up to `exact_max` rows, else estimated from the rowid range, which
    is two index lookups; a count(*) of a table of millions of rows would hold the writer up."""
    table = quote(name)
    counted = int(
        conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT ?)", (exact_max + 1,)).fetchone()[0]
    )
    if counted <= exact_max:
        return counted, True
    try:
        low, high = _rowid_range(conn, name)
    except sqlite3.OperationalError:  # WITHOUT ROWID tables and views: "at least" is what we know
        return counted, False
    return max(counted, high - low + 1), False


def _rowid_range(conn: sqlite3.Connection, name: str) -> tuple[int, int]:
    # Two statements: SQLite looks up min() or max() in the index only when it is alone in its
    # query; `SELECT min(rowid), max(rowid)` scans the whole table.
    low = conn.execute(f"SELECT min(rowid) FROM {quote(name)}").fetchone()[0]
    high = conn.execute(f"SELECT max(rowid) FROM {quote(name)}").fetchone()[0]
    return int(low or 0), int(high or 0)


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
        except sqlite3.Error:
            # Locked past the timeout, a hot journal, a corrupt file: the version is not recorded,
            # so the next poll retries. Without a baseline yet, "no tables" stands in, so the
            # first good read reports every table.
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
            except sqlite3.Error:
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
    count, exact = _count(conn, name, FINGERPRINT_MAX_ROWS)
    if not exact:
        try:
            return (count, *_rowid_range(conn, name))
        except sqlite3.OperationalError:  # WITHOUT ROWID tables and views
            return (count,)
    digest = hashlib.blake2b(digest_size=16)
    for row in conn.execute(f"SELECT * FROM {quote(name)}"):
        digest.update(repr(row).encode())
    return (count, digest.hexdigest())
