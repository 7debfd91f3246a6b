"""Flink's `jdbc` connector: a lookup source and an upsert/append sink.

Databases: SQLite, PostgreSQL and MySQL/MariaDB (see `jdbc_dialects`).

Options keep Flink's keys (`OPTIONS`): `url`, `table-name`, `username`, `password`,
`lookup.cache.max-rows`, `lookup.cache.ttl`, `lookup.cache.caching-missing-key`, `lookup.max-retries`
(and Flink 1.16's `lookup.cache` = 'PARTIAL' with `lookup.partial-cache.*`). Declared column names are
the database's column names. Connections open on first use; a lost one is reopened and the statement
(a sink's whole batch, one transaction) retried with backoff, as `jdbc_retry` describes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import pyarrow as pa

from clickstream.config import Settings, parse_duration_ms
from clickstream.connectors.base import (
    DELETE,
    INSERT,
    UPDATE_AFTER,
    UPDATE_BEFORE,
    BaseLookupSource,
    BaseSink,
    physical_schema,
)
from clickstream.connectors.jdbc_commits import last_committed, note_committed
from clickstream.connectors.jdbc_dialects import BaseDialect, dialect_for, reader, redact_url
from clickstream.connectors.jdbc_retry import WAITING, Outage, RetryPolicy
from clickstream.connectors.lookup_cache import LookupCache, Rows
from clickstream.connectors.options import DELIVERY_GUARANTEE, Option, exactly_once
from clickstream.errors import ClickstreamError, ConnectorError
from clickstream.schema import Column, TableDef, is_collection_type

__all__ = ["JdbcDatabase", "JdbcLookupSource", "JdbcSink"]

T = TypeVar("T")

# Bound parameters per statement: below SQLite's historical limit of 999.
_MAX_PARAMS = 900

_COMPATIBILITY = "Accepted for Flink compatibility."
OPTIONS = (
    Option(
        "url",
        required=True,
        description="jdbc:sqlite:<path>, jdbc:postgresql://host:port/db, jdbc:mysql://... or "
        "jdbc:mariadb://...",
    ),
    Option("table-name", required=True, description="The database table to look up in or write to."),
    Option("username", description="The database user (or 'user' in the URL)."),
    Option("password", description="The database password (or 'password' in the URL); never shown."),
    Option("driver", description="Accepted for Flink compatibility; the URL chooses the driver."),
    Option(
        "connection.max-retry-timeout",
        "duration",
        "60 s",
        description="How long a lookup or sink waits for a lost database to come back before the job fails.",
    ),
    Option(
        "lookup.cache",
        "enum",
        "NONE",
        values=("NONE", "PARTIAL", "FULL"),
        description="PARTIAL caches looked-up rows (lookup.partial-cache.*); FULL is accepted "
        "and works as NONE (every lookup queries the database).",
    ),
    Option("lookup.cache.max-rows", "int", minimum=1, description="Rows the lookup cache keeps (with ttl)."),
    Option("lookup.cache.ttl", "duration", description="How long a cached row lives (with max-rows)."),
    Option(
        "lookup.cache.caching-missing-key",
        "bool",
        "true",
        description="Also cache keys the table has no row for.",
    ),
    Option(
        "lookup.partial-cache.max-rows",
        "int",
        minimum=1,
        description="Rows the PARTIAL cache keeps (with expire-after-write).",
    ),
    Option(
        "lookup.partial-cache.expire-after-write",
        "duration",
        description="How long a row lives in the PARTIAL cache.",
    ),
    Option(
        "lookup.partial-cache.expire-after-access",
        "duration",
        description="Accepted for Flink compatibility; rows expire after write only.",
    ),
    Option(
        "lookup.partial-cache.cache-missing-key",
        "bool",
        "true",
        description="Also cache keys the table has no row for, in the PARTIAL cache.",
    ),
    Option(
        "lookup.partial-cache.caching-missing-key",
        "bool",
        "true",
        description="Older spelling of lookup.partial-cache.cache-missing-key, still read.",
    ),
    Option(
        "lookup.max-retries",
        "int",
        "3",
        minimum=0,
        description="Retries of a lookup whose connection was lost.",
    ),
    Option("scan.partition.column", description=_COMPATIBILITY),
    Option("scan.partition.num", "int", description=_COMPATIBILITY),
    Option("scan.partition.lower-bound", "int", description=_COMPATIBILITY),
    Option("scan.partition.upper-bound", "int", description=_COMPATIBILITY),
    Option("scan.fetch-size", "int", "0", description=_COMPATIBILITY),
    Option("scan.auto-commit", "bool", "true", description=_COMPATIBILITY),
    Option(
        "sink.buffer-flush.max-rows",
        "int",
        "100",
        description="Accepted for Flink compatibility; each micro-batch is one transaction.",
    ),
    Option(
        "sink.buffer-flush.interval",
        "duration",
        "1 s",
        description="Accepted for Flink compatibility; each micro-batch is one transaction.",
    ),
    Option(
        "sink.max-retries",
        "int",
        "3",
        minimum=0,
        description="Retries of a batch whose connection was lost (the whole batch, in a new transaction).",
    ),
    Option("sink.parallelism", "int", minimum=1, description=_COMPATIBILITY),
    DELIVERY_GUARANTEE,
)


class JdbcDatabase:
    """The database behind one jdbc table: a lazily opened connection, reopened when lost.

    Every driver error leaves as a ConnectorError naming the Flink table, the database table and the
    URL (without credentials); the password is masked should a driver ever echo it.
    """

    def __init__(self, table: TableDef) -> None:
        self.table = table
        url = table.options.get("url")
        if not url:
            raise ConnectorError(f"jdbc table '{table.name}' needs the 'url' option")
        try:
            self.dialect: BaseDialect = dialect_for(url)
        except ValueError as e:
            raise ConnectorError(f"jdbc table '{table.name}': {e}: '{redact_url(url)}'") from None
        _refuse_collections(table, self.dialect)
        self.table_name = table.options.get("table-name") or ""
        if not self.table_name:
            raise ConnectorError(f"jdbc table '{table.name}' needs the 'table-name' option")
        params = self.dialect.url.params
        self.username = table.options.get("username") or params.get("user")
        self._password = table.options.get("password") or params.get("password")
        self._conn: Any = None
        self._reached = False  # whether a connection ever opened: only then is it waited for
        self.status = ""  # WAITING while an outage is ridden out

    @property
    def where(self) -> str:
        return f"jdbc table '{self.table.name}' ('{self.table_name}' at {self.dialect.url.display()})"

    def connection(self) -> Any:
        if self._conn is None:
            self._conn = self.dialect.connect(self.username, self._password)
            self._reached = True
        return self._conn

    def run(self, action: str, work: Callable[[Any], T], policy: RetryPolicy) -> T:
        """`work(connection)` in one transaction, redone on a new connection after a transient failure.

        `work` must leave nothing behind when it fails before its commit: the retry redoes all of it.
        """
        outage: Outage | None = None
        while True:
            connected = False
            try:
                conn = self.connection()
                connected = True
                result = work(conn)
            except self.dialect.driver_error as e:
                self._rollback()
                self.close()
                if not self.dialect.is_transient(e):
                    raise self._driver_error(action, e, None) from self._cause(e)
                outage = outage or Outage(policy)
                # Connecting to a database never reached counts as a failure, so that a wrong host
                # or port fails within a second instead of after the whole timeout.
                if outage.give_up(statement_failed=connected or not self._reached):
                    raise self._driver_error(action, e, outage) from self._cause(e)
                self.status = WAITING
                outage.wait()
            else:
                self.status = ""
                return result

    def _driver_error(self, action: str, cause: Exception, outage: Outage | None) -> ConnectorError:
        if outage is None:
            return self.error(action, cause)
        return self.error(action, f"lost the database: {outage.summary()}; last error: {cause}")

    def _cause(self, error: Exception) -> Exception | None:
        # Chain the driver's error for debugging, unless it quotes the password.
        return None if self._password and self._password in str(error) else error

    def error(self, action: str, cause: Exception | str) -> ConnectorError:
        message = f"{self.where}: {action} failed: {cause}"
        if self._password:
            message = message.replace(self._password, "******")
        return ConnectorError(message)

    def _rollback(self) -> None:
        if self._conn is None:
            return
        # A dead connection cannot roll back; the caller closes it.
        with contextlib.suppress(Exception):
            self._conn.rollback()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail
                conn.close()


def _refuse_collections(table: TableDef, dialect: BaseDialect) -> None:
    """As Flink's jdbc connector: ARRAY columns of non-collection elements in PostgreSQL (its
    arrays); no MAP or ROW column, nor an ARRAY anywhere else."""
    for column in table.physical:
        if not column.flink_type.startswith(("ARRAY<", "MAP<", "ROW<")):
            continue
        element = column.duck_type[:-2] if column.duck_type.endswith("[]") else None
        if dialect.supports_arrays and element is not None and not is_collection_type(element):
            continue
        raise ConnectorError(
            f"jdbc table '{table.name}': column '{column.name}' of type {column.flink_type} is not "
            f"supported by the jdbc connector for {dialect.name} (PostgreSQL takes ARRAYs of "
            "non-collection elements; MAP and ROW columns are taken nowhere); write it as text "
            "with CAST(... AS STRING) or JSON_STRING(...)"
        )


def _physical(table: TableDef, names: list[str], role: str) -> list[Column]:
    by_name = {c.name.lower(): c for c in table.physical}
    missing = [n for n in names if n.lower() not in by_name]
    if missing:
        raise ConnectorError(
            f"jdbc table '{table.name}': {role} column '{missing[0]}' is not one of its columns"
        )
    return [by_name[n.lower()] for n in names]


# -- lookup -------------------------------------------------------------------------------------


class JdbcLookupSource(BaseLookupSource):
    """Rows of a database table by key, for lookup joins, behind an optional cache.

    `clock` (ms) is the cache's time source, injectable for tests. `queries` counts SELECTs sent.
    A query failing for a transient reason (lost connection) is retried `lookup.max-retries` times;
    any other error (no such table) fails at once.
    """

    def __init__(self, table: TableDef, settings: Settings, clock: Callable[[], int] | None = None) -> None:
        super().__init__(table, settings)
        self.database = JdbcDatabase(table)
        max_retries = _option_int(table, "lookup.max-retries", 3, minimum=0)
        self.retry = RetryPolicy.of(table, "lookup.max-retries", max_retries)
        self.cache, self.cache_missing = _lookup_cache(table, clock)
        self.queries = 0
        self._schema = physical_schema(table)
        self._readers = [reader(c) for c in table.physical]
        self._select = "SELECT {} FROM {}".format(
            ", ".join(self.database.dialect.quote(c.name) for c in table.physical),
            self.database.dialect.quote_table(self.database.table_name),
        )

    @property
    def status(self) -> str:
        return self.database.status

    def lookup(self, key_columns: list[str], keys: pa.Table) -> pa.Table:
        columns = _physical(self.table, key_columns, "lookup key")
        wanted = _key_tuples(keys, key_columns)
        scope = tuple(c.name for c in columns)  # one cache serves joins on different keys
        found: dict[tuple[Any, ...], Rows] = {}
        for key in wanted:
            rows = self.cache.get((scope, key)) if self.cache is not None else None
            if rows is not None:
                found[key] = rows
        missing = [key for key in wanted if key not in found]
        loaded = self._load(columns, missing) if missing else {}
        for key in missing:
            rows = found[key] = loaded.get(key, [])
            if self.cache is not None and (rows or self.cache_missing):
                self.cache.put((scope, key), rows)
        return self._to_arrow([row for key in wanted for row in found[key]])

    def _load(self, columns: list[Column], keys: list[tuple[Any, ...]]) -> dict[tuple, Rows]:
        """Query the database for `keys`, in chunks; rows grouped by their key values."""
        dialect = self.database.dialect
        writers = [dialect.writer(c) for c in columns]
        positions = [self.table.physical.index(c) for c in columns]
        per_query = max(1, _MAX_PARAMS // len(columns))
        result: dict[tuple[Any, ...], Rows] = {}
        for start in range(0, len(keys), per_query):
            part = keys[start : start + per_query]
            sql = f"{self._select} WHERE {dialect.in_list([c.name for c in columns], len(part))}"
            params = [_apply(w, v) for key in part for w, v in zip(writers, key, strict=True)]
            raw_rows = self.database.run("lookup", partial(_fetch_all, sql, params), self.retry)
            self.queries += 1
            for raw in raw_rows:
                row = tuple(read(v) for read, v in zip(self._readers, raw, strict=True))
                result.setdefault(tuple(row[p] for p in positions), []).append(row)
        return result

    def _to_arrow(self, rows: Rows) -> pa.Table:
        if not rows:
            return self._schema.empty_table()
        arrays = [
            pa.array(list(values), type=field.type)
            for values, field in zip(zip(*rows, strict=True), self._schema, strict=True)
        ]
        return pa.Table.from_arrays(arrays, schema=self._schema)

    def close(self) -> None:
        self.database.close()


def _fetch_all(sql: str, params: list[Any], conn: Any) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    # End the read transaction: a MySQL snapshot would otherwise hide later changes to the table,
    # and an idle PostgreSQL transaction holds locks that block DDL.
    conn.commit()
    return list(rows)


def _key_tuples(keys: pa.Table, key_columns: list[str]) -> list[tuple[Any, ...]]:
    # Columns are taken by name when `keys` uses the key names, else by position.
    names = keys.column_names
    arrays = [keys.column(name) if name in names else keys.column(i) for i, name in enumerate(key_columns)]
    return list(zip(*(a.to_pylist() for a in arrays), strict=True))


def _lookup_cache(table: TableDef, clock: Callable[[], int] | None) -> tuple[LookupCache | None, bool]:
    """The cache the options ask for (None: off) and whether keys without rows are cached."""
    options = table.options
    if options.get("lookup.cache", "").upper() == "PARTIAL":  # Flink 1.16+ option names
        prefix, ttl_key = "lookup.partial-cache.", "lookup.partial-cache.expire-after-write"
        # Flink's key; the older 'caching-' spelling this connector read first still works.
        missing_key = "lookup.partial-cache.cache-missing-key"
        if missing_key not in options:
            missing_key = "lookup.partial-cache.caching-missing-key"
    else:
        prefix, ttl_key = "lookup.cache.", "lookup.cache.ttl"
        missing_key = "lookup.cache.caching-missing-key"
    cache_missing = _option_bool(table, missing_key, True)
    max_rows_key = prefix + "max-rows"
    # As in Flink's legacy options, the cache is on only when both bounds are given.
    if max_rows_key not in options or ttl_key not in options:
        return None, cache_missing
    max_rows = _option_int(table, max_rows_key, 0, minimum=1)
    try:
        ttl_ms = parse_duration_ms(options[ttl_key])
    except ClickstreamError as e:
        raise ConnectorError(f"jdbc table '{table.name}': option '{ttl_key}': {e}") from None
    cache = LookupCache(max_rows, ttl_ms) if clock is None else LookupCache(max_rows, ttl_ms, clock)
    return cache, cache_missing


def _option_int(table: TableDef, key: str, default: int, minimum: int) -> int:
    text = table.options.get(key)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ConnectorError(
            f"jdbc table '{table.name}': option '{key}' needs an integer >= {minimum}, got '{text}'"
        )
    return value


def _option_bool(table: TableDef, key: str, default: bool) -> bool:
    text = table.options.get(key)
    if text is None:
        return default
    if text.lower() not in ("true", "false"):
        raise ConnectorError(
            f"jdbc table '{table.name}': option '{key}' must be 'true' or 'false', got '{text}'"
        )
    return text.lower() == "true"


def _apply(convert: Callable[[Any], Any] | None, value: Any) -> Any:
    return value if convert is None or value is None else convert(value)


# -- sink ---------------------------------------------------------------------------------------


class JdbcSink(BaseSink):
    """Writes a changelog into a database table, creating it if missing.

    With a primary key, each batch is one transaction: delete every touched key, then insert
    the last +I/+U row of each key not finally deleted (-U rows are ignored, as in Flink's
    upsert sinks). Without a key, +I/+U rows are appended. Keys may be NULL: they are matched
    null-safe.
    """

    def __init__(self, table: TableDef, settings: Settings) -> None:
        super().__init__(table, settings)
        self.database = JdbcDatabase(table)
        self._key = _physical(table, table.primary_key, "primary key")
        self._key_positions = [table.physical.index(c) for c in self._key]
        self._writers = [self.database.dialect.writer(c) for c in table.physical]
        max_retries = _option_int(table, "sink.max-retries", 3, minimum=0)
        self.retry = RetryPolicy.of(table, "sink.max-retries", max_retries)
        self._table_ready = False
        dialect = self.database.dialect
        self._target = dialect.quote_table(self.database.table_name)
        self._insert_sql = "INSERT INTO {} ({}) VALUES ({})".format(
            self._target,
            ", ".join(dialect.quote(c.name) for c in table.physical),
            ", ".join([dialect.placeholder] * len(table.physical)),
        )

    @property
    def status(self) -> str:
        return self.database.status

    def write(self, batch: pa.Table) -> None:
        if batch.num_rows == 0:
            return
        if self.is_upsert:
            deletes, inserts = self._last_per_key(batch.column("_op").to_pylist(), self._rows(batch))
        else:
            # The planner gives keyless sinks append-only streams; other kinds are not ours.
            deletes, inserts = [], self._appended(batch)
        if deletes or inserts:
            # The batch is one transaction: after a failure before its commit, redo all of it.
            self.database.run("write", partial(self._apply_batch, deletes, inserts), self.retry)

    @property
    def transactional(self) -> bool:
        return not self.is_upsert and exactly_once(self.table.options)

    def commit(self, writer: str, checkpoint: int, batches: list[pa.Table]) -> None:
        rows = [row for batch in batches for row in self._appended(batch)]
        self.database.run("commit", partial(self._commit, writer, checkpoint, rows), self.retry)

    def _commit(self, writer: str, checkpoint: int, rows: list[tuple[Any, ...]], conn: Any) -> None:
        self._ensure_table(conn)
        cursor = conn.cursor()
        try:
            if last_committed(cursor, self.database.dialect, writer) >= checkpoint:
                conn.rollback()
                return
            if rows:
                cursor.executemany(self._insert_sql, rows)
            note_committed(cursor, self.database.dialect, writer, checkpoint)
        finally:
            cursor.close()
        conn.commit()

    def _appended(self, batch: pa.Table) -> list[tuple[Any, ...]]:
        ops = batch.column("_op").to_pylist()
        return [r for op, r in zip(ops, self._rows(batch), strict=True) if op in (INSERT, UPDATE_AFTER)]

    def flush(self) -> None:
        # Each write commits; flush only makes sure the table exists, even with no rows yet.
        if not self._table_ready:
            self.database.run("create table", self._ensure_table, self.retry)

    def close(self) -> None:
        self.database.close()

    def _rows(self, batch: pa.Table) -> list[tuple[Any, ...]]:
        try:
            columns = [batch.column(c.name).to_pylist() for c in self.table.physical]
        except KeyError as e:
            raise ConnectorError(f"{self.database.where}: batch lacks column {e}") from None
        converted = [
            [_apply(w, v) for v in values] if w is not None else values
            for w, values in zip(self._writers, columns, strict=True)
        ]
        return list(zip(*converted, strict=True))

    def _last_per_key(
        self, ops: list[int], rows: list[tuple[Any, ...]]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """(keys to delete, rows to insert): the last change of each key wins."""
        latest: dict[tuple[Any, ...], tuple[Any, ...] | None] = {}
        for op, row in zip(ops, rows, strict=True):
            if op == UPDATE_BEFORE:
                continue
            latest[tuple(row[p] for p in self._key_positions)] = None if op == DELETE else row
        return list(latest), [row for row in latest.values() if row is not None]

    def _apply_batch(self, deletes: list[tuple[Any, ...]], inserts: list[tuple[Any, ...]], conn: Any) -> None:
        self._ensure_table(conn)
        cursor = conn.cursor()
        try:
            for sql, params in self._delete_statements(deletes):
                cursor.executemany(sql, params)
            if inserts:
                cursor.executemany(self._insert_sql, inserts)
        finally:
            cursor.close()
        conn.commit()

    def _delete_statements(self, keys: list[tuple[Any, ...]]) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """DELETE statements with their parameter rows, covering `keys`.

        Keys without NULLs go in chunked IN lists. A key with NULLs is matched with `IS NULL`
        on those columns, one statement per NULL pattern. That is null-safe like `IS NOT
        DISTINCT FROM` or `<=>`, but PostgreSQL can use an index for it and not for those.
        """
        if not keys:
            return
        dialect = self.database.dialect
        names = [c.name for c in self._key]
        complete = [k for k in keys if None not in k]
        per_statement = max(1, _MAX_PARAMS // len(names))
        for start in range(0, len(complete), per_statement):
            part = complete[start : start + per_statement]
            sql = f"DELETE FROM {self._target} WHERE {dialect.in_list(names, len(part))}"
            yield sql, [tuple(v for key in part for v in key)]
        by_pattern: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
        for key in keys:
            if None in key:
                pattern = tuple(v is None for v in key)
                by_pattern.setdefault(pattern, []).append(tuple(v for v in key if v is not None))
        for pattern, params in by_pattern.items():
            where = " AND ".join(
                f"{dialect.quote(n)} IS NULL" if null else f"{dialect.quote(n)} = {dialect.placeholder}"
                for n, null in zip(names, pattern, strict=True)
            )
            yield f"DELETE FROM {self._target} WHERE {where}", params

    def _ensure_table(self, conn: Any) -> None:
        if self._table_ready:
            return
        dialect, name = self.database.dialect, self.database.table_name
        cursor = conn.cursor()
        try:
            if not dialect.table_exists(cursor, name):
                try:
                    statements = dialect.create_table_sql(
                        name, self.table.physical, [c.name for c in self._key]
                    )
                except ValueError as e:
                    raise ConnectorError(f"{self.database.where}: cannot create the table: {e}") from None
                for sql in statements:
                    cursor.execute(sql)
        finally:
            cursor.close()
        conn.commit()
        self._table_ready = True
