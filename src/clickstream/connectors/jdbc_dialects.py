"""The databases the `jdbc` connector reaches: URLs, drivers, column types, value conversion.

Each dialect knows how to open a DB-API connection (stdlib sqlite3, psycopg 3, PyMySQL), how to
quote names, which SQL type stores a Flink type, and how Arrow's Python values must be shaped to
be stored losslessly (SQLite has no DECIMAL or timestamp type: those are kept as exact text).
Reading back is type-driven and shared: `reader(column)` turns whatever a driver returns into
the value Arrow expects.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from clickstream.schema import Column

Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class JdbcUrl:
    """A parsed `jdbc:<scheme>:...` URL. For SQLite, `database` is the file path."""

    scheme: str
    host: str = "localhost"
    port: int | None = None
    database: str = ""
    params: dict[str, str] = field(default_factory=dict)

    def display(self) -> str:
        """The URL without credentials or query string: safe for errors and logs."""
        if self.scheme == "sqlite":
            return f"jdbc:sqlite:{self.database}"
        port = f":{self.port}" if self.port else ""
        return f"jdbc:{self.scheme}://{self.host}{port}/{self.database}"


def redact_url(url: str) -> str:
    """Only the `jdbc:<driver>:` prefix of a URL we could not parse: the rest may hold credentials
    in a form we do not know (`jdbc:oracle:thin:scott/tiger@host`)."""
    match = re.match(r"\s*(jdbc:[A-Za-z0-9_-]+:)", url)
    return f"{match.group(1)}..." if match else "(not a jdbc: URL)"


def parse_jdbc_url(url: str) -> JdbcUrl:
    """Parse a JDBC URL; ValueError says what is wrong (without echoing credentials)."""
    match = re.fullmatch(r"jdbc:(sqlite|postgresql|mysql|mariadb):(.*)", url.strip(), re.DOTALL)
    if not match:
        raise ValueError(
            "unsupported JDBC URL; expected jdbc:sqlite:<path>, jdbc:postgresql://host:port/db, "
            "jdbc:mysql://host:port/db or jdbc:mariadb://host:port/db"
        )
    scheme, rest = match.groups()
    if scheme == "sqlite":
        return _parse_sqlite(rest)
    if not rest.startswith("//"):
        # jdbc:postgresql:db is the PostgreSQL driver's short form for a local server.
        rest = "//localhost/" + rest
    parts = urlsplit("x:" + rest)
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port in the JDBC URL is not a number") from None
    params = dict(parse_qsl(parts.query))
    if parts.username:
        params.setdefault("user", unquote(parts.username))
    if parts.password:
        params.setdefault("password", unquote(parts.password))
    return JdbcUrl(
        scheme=scheme,
        host=parts.hostname or "localhost",
        port=port,
        database=unquote(parts.path.lstrip("/")),
        params=params,
    )


def _parse_sqlite(rest: str) -> JdbcUrl:
    if rest.startswith("file:"):
        return JdbcUrl("sqlite", database=rest)  # an SQLite URI keeps its own query string
    path, _, query = rest.partition("?")
    return JdbcUrl("sqlite", database=path or ":memory:", params=dict(parse_qsl(query)))


def _precision(column: Column, default: int = 6) -> int:
    match = re.search(r"\((\d+)", column.flink_type)
    return min(int(match.group(1)), 6) if match else default


def _decimal_scale(column: Column) -> int:
    return int(column.duck_type[column.duck_type.index(",") + 1 : -1])


def _as_utc(value: datetime) -> datetime:
    # A naive instant is taken as UTC, which is what Arrow's timestamp('us', 'UTC') means.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso_timespec(column: Column) -> str:
    precision = _precision(column)
    return "seconds" if precision == 0 else "milliseconds" if precision <= 3 else "microseconds"


class BaseDialect:
    """What differs between databases. Subclasses set the tables and implement `connect`."""

    name = ""
    # ARRAY<T> columns as the database's own arrays (Flink's jdbc connector: PostgreSQL only)
    supports_arrays = False
    placeholder = "%s"
    quote_char = '"'
    # Flink DuckDB-side type -> SQL type for CREATE TABLE (DECIMAL and timestamps are built).
    types: dict[str, str] = {}
    key_types: dict[str, str] = {}  # overrides for key columns (MySQL cannot index TEXT)
    table_suffix = ""

    def __init__(self, url: JdbcUrl) -> None:
        self.url = url

    # -- driver ----------------------------------------------------------------------------------
    def connect(self, username: str | None, password: str | None) -> Any:
        raise NotImplementedError

    @property
    def driver_error(self) -> type[Exception]:
        """Base class of everything the driver raises."""
        raise NotImplementedError

    def is_transient(self, error: Exception) -> bool:
        """Whether `error` is worth a reconnect and retry (lost connection, server restarting)."""
        raise NotImplementedError

    # -- SQL text --------------------------------------------------------------------------------
    def quote(self, identifier: str) -> str:
        quoted = self._quote_raw(identifier)
        # '%' is the parameter marker of psycopg and PyMySQL; a literal one must be doubled.
        return quoted.replace("%", "%%") if self.placeholder == "%s" else quoted

    def _quote_raw(self, identifier: str) -> str:
        q = self.quote_char
        return q + identifier.replace(q, q + q) + q

    def quote_table(self, name: str) -> str:
        return ".".join(self.quote(part) for part in name.split("."))

    def in_list(self, columns: list[str], rows: int) -> str:
        """`k IN (?, ?)` or `(k1, k2) IN ((?, ?), (?, ?))` for `rows` key tuples."""
        if len(columns) == 1:
            return f"{self.quote(columns[0])} IN ({', '.join([self.placeholder] * rows)})"
        row = "(" + ", ".join([self.placeholder] * len(columns)) + ")"
        names = ", ".join(self.quote(c) for c in columns)
        return f"({names}) IN ({self._row_list(row, rows)})"

    def _row_list(self, row: str, rows: int) -> str:
        return ", ".join([row] * rows)

    def column_type(self, column: Column, in_key: bool) -> str:
        duck = column.duck_type
        if self.supports_arrays and duck.endswith("[]"):
            return self.column_type(replace(column, duck_type=duck[:-2]), False) + "[]"
        if duck.startswith("DECIMAL"):
            return self._decimal_type(duck)
        if duck in ("TIMESTAMP", "TIMESTAMPTZ"):
            return self._timestamp_type(duck, _precision(column))
        if in_key and duck in self.key_types:
            return self.key_types[duck]
        if duck not in self.types:
            raise ValueError(f"column '{column.name}' has type {column.flink_type}, not supported")
        return self.types[duck]

    def _decimal_type(self, duck: str) -> str:
        return duck

    def _timestamp_type(self, duck: str, precision: int) -> str:
        raise NotImplementedError

    def create_table_sql(self, table: str, columns: list[Column], key: list[str]) -> list[str]:
        """CREATE TABLE and a non-unique index on the key.

        No PRIMARY KEY: PostgreSQL would make key columns NOT NULL, and Flink allows NULL keys.
        """
        keys = {k.lower() for k in key}
        defs = ", ".join(
            f"{self.quote(c.name)} {self.column_type(c, c.name.lower() in keys)}" for c in columns
        )
        statements = [f"CREATE TABLE IF NOT EXISTS {self.quote_table(table)} ({defs}){self.table_suffix}"]
        if key:
            index = self.quote(_index_name(table))
            names = ", ".join(self.quote(k) for k in key)
            statements.append(f"CREATE INDEX {index} ON {self.quote_table(table)} ({names})")
        return statements

    def table_exists(self, cursor: Any, table: str) -> bool:
        raise NotImplementedError

    # -- values ----------------------------------------------------------------------------------
    def writer(self, column: Column) -> Convert | None:
        """How an Arrow Python value of `column` is passed as a parameter; None: as it is."""
        if column.duck_type == "TIMESTAMPTZ":
            return _as_utc
        return None


def _index_name(table: str) -> str:
    base = table.split(".")[-1]
    name = f"{base}_key_idx"
    if len(name) > 60:  # PostgreSQL truncates names at 63 bytes, MySQL rejects more than 64
        digest = hashlib.sha1(table.encode()).hexdigest()[:8]
        name = f"{base[:40]}_{digest}_key_idx"
    return name


class SqliteDialect(BaseDialect):
    name = "sqlite"
    placeholder = "?"
    types = {
        "BOOLEAN": "BOOLEAN",
        "TINYINT": "TINYINT",
        "SMALLINT": "SMALLINT",
        "INTEGER": "INTEGER",
        "BIGINT": "BIGINT",
        "FLOAT": "REAL",
        "DOUBLE": "REAL",
        "DATE": "TEXT",
        "TIME": "TEXT",
        "VARCHAR": "TEXT",
        "BLOB": "BLOB",
    }

    def connect(self, username: str | None, password: str | None) -> Any:
        import sqlite3

        path = self.url.database
        # The engine may use a sink from another thread than the opener's; calls never overlap.
        return sqlite3.connect(path, timeout=30, check_same_thread=False, uri=path.startswith("file:"))

    @property
    def driver_error(self) -> type[Exception]:
        import sqlite3

        return sqlite3.Error

    def is_transient(self, error: Exception) -> bool:
        import sqlite3

        # A file has no connection to lose; only a lock held past the timeout may clear up.
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)

    def quote_table(self, name: str) -> str:
        return self.quote(name)  # we attach no databases, so a dot is part of the name

    def _row_list(self, row: str, rows: int) -> str:
        # SQLite accepts a row-value IN only against a subquery, e.g. VALUES.
        return "VALUES " + ", ".join([row] * rows)

    def _decimal_type(self, duck: str) -> str:
        return "TEXT"  # NUMERIC affinity would turn 0.10 into a binary float

    def _timestamp_type(self, duck: str, precision: int) -> str:
        return "TEXT"

    def table_exists(self, cursor: Any, table: str) -> bool:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (table,))
        return cursor.fetchone() is not None

    def writer(self, column: Column) -> Convert | None:
        duck = column.duck_type
        if duck.startswith("DECIMAL"):
            return str
        if duck in ("DATE", "TIME"):
            return lambda v: v.isoformat()
        spec = _iso_timespec(column)
        if duck == "TIMESTAMP":
            return lambda v: v.isoformat(sep=" ", timespec=spec)
        if duck == "TIMESTAMPTZ":
            return lambda v: _as_utc(v).isoformat(sep=" ", timespec=spec)
        return None


class PostgresDialect(BaseDialect):
    name = "postgresql"
    supports_arrays = True
    types = {
        "BOOLEAN": "BOOLEAN",
        "TINYINT": "SMALLINT",
        "SMALLINT": "SMALLINT",
        "INTEGER": "INTEGER",
        "BIGINT": "BIGINT",
        "FLOAT": "REAL",
        "DOUBLE": "DOUBLE PRECISION",
        "DATE": "DATE",
        "TIME": "TIME",
        "VARCHAR": "TEXT",
        "BLOB": "BYTEA",
    }

    def connect(self, username: str | None, password: str | None) -> Any:
        import psycopg

        _quiet_psycopg_cleanup()
        extra = {k: v for k, v in self.url.params.items() if k in ("sslmode", "application_name")}
        extra.setdefault("application_name", "clickstream")
        return psycopg.connect(
            host=self.url.host,
            port=self.url.port or 5432,
            dbname=self.url.database or None,
            user=username,
            password=password,
            connect_timeout=10,
            **extra,
        )

    @property
    def driver_error(self) -> type[Exception]:
        import psycopg

        return psycopg.Error

    def is_transient(self, error: Exception) -> bool:
        import psycopg

        return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)

    def _quote_raw(self, identifier: str) -> str:
        # Flink's Postgres dialect writes names unquoted, so Postgres folds them to lower case
        # (the seed's `PASSWORD` column is `password`). Folding, then quoting, finds the same
        # columns and tables and still allows reserved words such as `user` or `order`.
        return super()._quote_raw(identifier.lower())

    def _decimal_type(self, duck: str) -> str:
        return duck.replace("DECIMAL", "NUMERIC")

    def _timestamp_type(self, duck: str, precision: int) -> str:
        return f"TIMESTAMPTZ({precision})" if duck == "TIMESTAMPTZ" else f"TIMESTAMP({precision})"

    def table_exists(self, cursor: Any, table: str) -> bool:
        # to_regclass follows search_path and quoting exactly as the INSERT will.
        name = ".".join(self._quote_raw(part) for part in table.split("."))
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
        return bool(cursor.fetchone()[0])


def _ignored_cleanup_error(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("error ignored terminating")


def _quiet_psycopg_cleanup() -> None:
    """Silence psycopg's warning that ending a pipeline (executemany) on a lost connection failed.

    It comes with the error the connector is already handling (retry, or a clear failure), so it
    says nothing new: `error ignored terminating <psycopg.Pipeline [BAD]...>`.
    """
    logger = logging.getLogger("psycopg")
    if _ignored_cleanup_error not in logger.filters:
        logger.addFilter(_ignored_cleanup_error)


class MysqlDialect(BaseDialect):
    name = "mysql"
    quote_char = "`"
    types = {
        "BOOLEAN": "BOOLEAN",
        "TINYINT": "TINYINT",
        "SMALLINT": "SMALLINT",
        "INTEGER": "INT",
        "BIGINT": "BIGINT",
        "FLOAT": "FLOAT",
        "DOUBLE": "DOUBLE",
        "DATE": "DATE",
        "TIME": "TIME",
        "VARCHAR": "TEXT",
        "BLOB": "LONGBLOB",
    }
    key_types = {"VARCHAR": "VARCHAR(255)", "BLOB": "VARBINARY(255)"}
    # A binary collation keeps keys case-sensitive: 'Books' and 'books' are different keys in Flink.
    table_suffix = " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

    def connect(self, username: str | None, password: str | None) -> Any:
        import pymysql

        return pymysql.connect(
            host=self.url.host,
            port=self.url.port or 3306,
            user=username,
            password=password or "",
            database=self.url.database or None,
            charset="utf8mb4",
            connect_timeout=10,
            autocommit=False,
            # Instants are stored as UTC DATETIMEs; a UTC session makes TIMESTAMP columns agree.
            init_command="SET time_zone = '+00:00'",
        )

    @property
    def driver_error(self) -> type[Exception]:
        import pymysql

        return pymysql.err.Error

    def is_transient(self, error: Exception) -> bool:
        import pymysql

        return isinstance(error, pymysql.err.OperationalError | pymysql.err.InterfaceError)

    def _timestamp_type(self, duck: str, precision: int) -> str:
        return f"DATETIME({precision})"  # TIMESTAMP would shift by the session zone and end in 2038

    def table_exists(self, cursor: Any, table: str) -> bool:
        schema, _, name = table.rpartition(".")
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name = %s",
            (schema or None, name),
        )
        return bool(cursor.fetchone()[0])

    def writer(self, column: Column) -> Convert | None:
        if column.duck_type == "TIMESTAMPTZ":
            return lambda v: _as_utc(v).replace(tzinfo=None)
        return None


_DIALECTS: dict[str, type[BaseDialect]] = {
    "sqlite": SqliteDialect,
    "postgresql": PostgresDialect,
    "mysql": MysqlDialect,
    "mariadb": MysqlDialect,
}


def dialect_for(url: str) -> BaseDialect:
    """The dialect for a JDBC URL; ValueError if the URL is not one we support."""
    parsed = parse_jdbc_url(url)
    return _DIALECTS[parsed.scheme](parsed)


# -- reading: driver value -> the Python value Arrow takes for the column ---------------------


def reader(column: Column) -> Convert:
    """Normalise what any driver returns for `column` (None stays None)."""
    duck = column.duck_type
    if duck.endswith("[]"):  # a PostgreSQL array: each element as its type's are read
        element = reader(replace(column, duck_type=duck[:-2]))
        return lambda v: None if v is None else [element(e) for e in v]
    if duck.startswith("DECIMAL"):
        quantum = Decimal(1).scaleb(-_decimal_scale(column))
        convert: Convert = lambda v: Decimal(str(v)).quantize(quantum)  # noqa: E731
    else:
        convert = _READERS.get(duck, _identity)
    return lambda v: None if v is None else convert(v)


def _identity(value: Any) -> Any:
    return value


def _to_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray | memoryview) else str(value)


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _to_time(value: Any) -> time:
    if isinstance(value, timedelta):  # PyMySQL returns TIME as a duration
        return (datetime.min + value).time()
    return value if isinstance(value, time) else time.fromisoformat(str(value))


def _to_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _to_naive(value: Any) -> datetime:
    parsed = _to_datetime(value)
    return parsed if parsed.tzinfo is None else parsed.astimezone(UTC).replace(tzinfo=None)


def _to_utc(value: Any) -> datetime:
    return _as_utc(_to_datetime(value))


_READERS: dict[str, Convert] = {
    "BOOLEAN": bool,
    "TINYINT": int,
    "SMALLINT": int,
    "INTEGER": int,
    "BIGINT": int,
    "FLOAT": float,
    "DOUBLE": float,
    "VARCHAR": _to_str,
    "BLOB": bytes,
    "DATE": _to_date,
    "TIME": _to_time,
    "TIMESTAMP": _to_naive,
    "TIMESTAMPTZ": _to_utc,
}
