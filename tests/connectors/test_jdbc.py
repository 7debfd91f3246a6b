"""The `jdbc` connector against real databases: SQLite always, PostgreSQL and MariaDB when present.

Most tests run once per database through the `db` fixture. Each test uses tables of its own, with
unique names, dropped afterwards.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from clickstream.config import Settings
from clickstream.connectors.base import physical_schema
from clickstream.connectors.jdbc import JdbcLookupSource, JdbcSink
from clickstream.connectors.jdbc_dialects import parse_jdbc_url, redact_url
from clickstream.connectors.lookup_cache import LookupCache
from clickstream.errors import ConnectorError
from clickstream.schema import Column, TableDef
from tests.connectors.jdbc_db import Db

OPS = {"+I": 0, "-U": 1, "+U": 2, "-D": 3}
CATEGORY = [
    Column("sub_category_id", "BIGINT", "BIGINT"),
    Column("parent_category_name", "STRING", "VARCHAR"),
]
SECRET = "hunter2-s3cret"


class FakeClock:
    def __init__(self) -> None:
        self.now_ms = 0

    def __call__(self) -> int:
        return self.now_ms


def jdbc_table(
    url: str,
    table_name: str,
    columns: list[Column] = CATEGORY,
    primary_key: list[str] | None = None,
    options: dict[str, str] | None = None,
) -> TableDef:
    """The Flink table `category_dim` over database table `table_name`."""
    return TableDef(
        name="category_dim",
        physical=columns,
        options={"connector": "jdbc", "url": url, "table-name": table_name, **(options or {})},
        primary_key=primary_key or [],
    )


def cached_table(db: Db, table_name: str, max_rows: str = "100", **options: str) -> TableDef:
    cache = {"lookup.cache.max-rows": max_rows, "lookup.cache.ttl": "10min", **options}
    return jdbc_table(db.url, table_name, options=cache)


def changelog(table: TableDef, rows: list[tuple[Any, ...]]) -> pa.Table:
    """A sink batch from ('+I', col1, col2, ...) tuples."""
    schema = physical_schema(table)
    columns = list(zip(*[row[1:] for row in rows], strict=True))
    arrays = [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)]
    arrays.append(pa.array([OPS[row[0]] for row in rows], type=pa.int8()))
    return pa.Table.from_arrays(arrays, schema=schema.append(pa.field("_op", pa.int8())))


def ids(*values: int | None) -> pa.Table:
    return pa.table({"sub_category_id": pa.array(values, type=pa.int64())})


def names(result: pa.Table) -> list[str]:
    return result.column("parent_category_name").to_pylist()


# -- lookup ---------------------------------------------------------------------------------------


def test_lookup_single_key_returns_declared_columns_in_key_order(db: Db) -> None:
    name = db.category_table([(1, "Books"), (2, "Toys"), (3, "Garden")])
    source = JdbcLookupSource(jdbc_table(db.url, name), Settings())
    result = source.lookup(["sub_category_id"], ids(3, 1, 99))
    source.close()
    assert result.schema == physical_schema(jdbc_table(db.url, name))
    assert result.to_pylist() == [
        {"sub_category_id": 3, "parent_category_name": "Garden"},
        {"sub_category_id": 1, "parent_category_name": "Books"},
    ]


def test_lookup_composite_key(db: Db) -> None:
    name = db.new_table()
    db.execute(f"CREATE TABLE {name} (shop VARCHAR(20), item BIGINT, price DECIMAL(10, 2))")
    db.insert(name, [("a", 1, Decimal("1.50")), ("a", 2, Decimal("2.25")), ("b", 1, Decimal("9"))])
    columns = [
        Column("shop", "STRING", "VARCHAR"),
        Column("item", "BIGINT", "BIGINT"),
        Column("price", "DECIMAL(10, 2)", "DECIMAL(10, 2)"),
    ]
    source = JdbcLookupSource(jdbc_table(db.url, name, columns), Settings())
    keys = pa.table({"shop": ["b", "a", "b"], "item": pa.array([1, 2, 2], pa.int64())})
    result = source.lookup(["shop", "item"], keys)
    source.close()
    assert result.to_pylist() == [
        {"shop": "b", "item": 1, "price": Decimal("9.00")},
        {"shop": "a", "item": 2, "price": Decimal("2.25")},
    ]


def test_lookup_several_rows_per_key_and_none(db: Db) -> None:
    name = db.category_table([(1, "Books"), (1, "Comics"), (2, "Toys")])
    source = JdbcLookupSource(jdbc_table(db.url, name), Settings())
    assert sorted(names(source.lookup(["sub_category_id"], ids(1)))) == ["Books", "Comics"]
    empty = source.lookup(["sub_category_id"], ids(7, 8))
    assert empty.num_rows == 0 and empty.schema == physical_schema(jdbc_table(db.url, name))
    assert source.lookup(["sub_category_id"], ids()).num_rows == 0
    source.close()


def test_lookup_many_keys_are_queried_in_chunks(db: Db) -> None:
    name = db.category_table([(i, f"c{i}") for i in range(0, 4000, 2)])
    source = JdbcLookupSource(jdbc_table(db.url, name), Settings())
    result = source.lookup(["sub_category_id"], ids(*range(4000)))
    source.close()
    assert result.column("sub_category_id").to_pylist() == list(range(0, 4000, 2))
    assert source.queries == 5  # 4000 keys, 900 bound parameters per query


def test_lookup_key_names_are_case_insensitive(db: Db) -> None:
    name = db.category_table([(1, "Books")])
    source = JdbcLookupSource(jdbc_table(db.url, name), Settings())
    keys = pa.table({"SUB_CATEGORY_ID": pa.array([1], pa.int64())})
    assert names(source.lookup(["SUB_CATEGORY_ID"], keys)) == ["Books"]
    source.close()


def test_lookup_unknown_key_column_is_an_error(sqlite_url: str) -> None:
    source = JdbcLookupSource(jdbc_table(sqlite_url, "category"), Settings())
    with pytest.raises(ConnectorError, match="lookup key column 'nope'"):
        source.lookup(["nope"], pa.table({"nope": [1]}))


# -- lookup cache ---------------------------------------------------------------------------------


def test_cache_hits_do_not_query_until_ttl_expires(db: Db) -> None:
    name = db.category_table([(1, "Books"), (2, "Toys")])
    clock = FakeClock()
    source = JdbcLookupSource(cached_table(db, name), Settings(), clock=clock)
    assert names(source.lookup(["sub_category_id"], ids(1))) == ["Books"]
    db.execute(f"UPDATE {name} SET parent_category_name = 'Comics' WHERE sub_category_id = 1")
    clock.now_ms += 9 * 60_000
    assert names(source.lookup(["sub_category_id"], ids(1))) == ["Books"]
    assert source.queries == 1
    clock.now_ms += 60_000  # ten minutes after loading: expired
    assert names(source.lookup(["sub_category_id"], ids(1))) == ["Comics"]
    assert source.queries == 2
    source.close()


def test_cache_queries_only_the_missing_keys(db: Db) -> None:
    name = db.category_table([(1, "Books"), (2, "Toys")])
    source = JdbcLookupSource(cached_table(db, name), Settings(), clock=FakeClock())
    source.lookup(["sub_category_id"], ids(1))
    db.execute(f"UPDATE {name} SET parent_category_name = 'Comics' WHERE sub_category_id = 1")
    assert names(source.lookup(["sub_category_id"], ids(2, 1))) == ["Toys", "Books"]
    assert source.queries == 2
    assert (source.cache.hits, source.cache.misses) == (1, 2)
    source.close()


def test_cache_keeps_missing_keys_by_default(db: Db) -> None:
    name = db.category_table([(1, "Books")])
    source = JdbcLookupSource(cached_table(db, name), Settings(), clock=FakeClock())
    assert source.lookup(["sub_category_id"], ids(5)).num_rows == 0
    db.insert(name, [(5, "Garden")])
    assert source.lookup(["sub_category_id"], ids(5)).num_rows == 0
    assert source.queries == 1
    source.close()


def test_cache_can_skip_missing_keys(db: Db) -> None:
    name = db.category_table([(1, "Books")])
    table = cached_table(db, name, **{"lookup.cache.caching-missing-key": "false"})
    source = JdbcLookupSource(table, Settings(), clock=FakeClock())
    assert source.lookup(["sub_category_id"], ids(5)).num_rows == 0
    db.insert(name, [(5, "Garden")])
    assert names(source.lookup(["sub_category_id"], ids(5))) == ["Garden"]
    assert source.queries == 2
    source.close()


def test_cache_evicts_oldest_beyond_max_rows(sqlite_url: str) -> None:
    db = Db("sqlite", sqlite_url)
    name = db.category_table([(1, "Books"), (2, "Toys"), (3, "Garden")])
    source = JdbcLookupSource(cached_table(db, name, max_rows="2"), Settings(), clock=FakeClock())
    for key in (1, 2, 3):  # 1 is evicted when 3 arrives
        source.lookup(["sub_category_id"], ids(key))
    assert len(source.cache) == 2
    source.lookup(["sub_category_id"], ids(3))
    assert source.queries == 3
    source.lookup(["sub_category_id"], ids(1))
    assert source.queries == 4
    source.close()
    db.close()


def test_cache_is_off_unless_both_bounds_are_set(sqlite_url: str) -> None:
    db = Db("sqlite", sqlite_url)
    name = db.category_table([(1, "Books")])
    table = jdbc_table(db.url, name)
    table.options["lookup.cache.max-rows"] = "100"
    source = JdbcLookupSource(table, Settings())
    source.lookup(["sub_category_id"], ids(1))
    source.lookup(["sub_category_id"], ids(1))
    assert source.cache is None and source.queries == 2
    db.close()


def test_cache_accepts_flink_116_partial_cache_options(sqlite_url: str) -> None:
    table = jdbc_table(sqlite_url, "category")
    table.options.update(
        {
            "lookup.cache": "PARTIAL",
            "lookup.partial-cache.max-rows": "10",
            "lookup.partial-cache.expire-after-write": "1 h",
            "lookup.partial-cache.caching-missing-key": "false",
        }
    )
    source = JdbcLookupSource(table, Settings())
    assert source.cache is not None
    assert (source.cache.max_rows, source.cache.ttl_ms) == (10, 3_600_000)
    assert source.cache_missing is False


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lookup.cache.max-rows", "lots", "'lookup.cache.max-rows' needs an integer >= 1"),
        ("lookup.cache.ttl", "soon", "'lookup.cache.ttl'"),
        ("lookup.max-retries", "-1", "'lookup.max-retries' needs an integer >= 0"),
        ("lookup.cache.caching-missing-key", "yes", "must be 'true' or 'false'"),
    ],
)
def test_bad_lookup_options_are_errors(sqlite_url: str, key: str, value: str, message: str) -> None:
    table = jdbc_table(sqlite_url, "category")
    table.options.update({"lookup.cache.max-rows": "10", "lookup.cache.ttl": "1min", key: value})
    with pytest.raises(ConnectorError, match=message):
        JdbcLookupSource(table, Settings())


def test_lookup_cache_unit_behaviour() -> None:
    clock = FakeClock()
    cache = LookupCache(max_rows=2, ttl_ms=1000, clock=clock)
    cache.put(("a",), [(1,)])
    clock.now_ms = 500
    cache.put(("b",), [])
    assert cache.get(("b",)) == []  # an empty entry is a hit, not a miss
    cache.put(("a",), [(2,)])  # rewriting makes it the newest
    cache.put(("c",), [(3,)])  # so 'b' goes
    assert cache.get(("b",)) is None
    assert cache.get(("a",)) == [(2,)]
    clock.now_ms = 1500  # 'a' was rewritten at 500: expired exactly now
    assert cache.get(("a",)) is None and len(cache) == 1


# -- sink -----------------------------------------------------------------------------------------


def test_sink_upserts_deletes_and_ignores_update_before(db: Db) -> None:
    name = db.new_table()
    table = jdbc_table(db.url, name, primary_key=["sub_category_id"])
    sink = JdbcSink(table, Settings())
    sink.write(changelog(table, [("+I", 1, "Books"), ("+I", 2, "Toys"), ("+I", 3, "Garden")]))
    sink.write(changelog(table, [("-U", 1, "Books"), ("+U", 1, "Comics"), ("-D", 2, "Toys")]))
    sink.write(changelog(table, [("-U", 3, "Garden")]))  # alone, it changes nothing
    sink.flush()
    sink.close()
    assert db.rows(name) == [(1, "Comics"), (3, "Garden")]


def test_sink_matches_null_keys(db: Db) -> None:
    name = db.new_table()
    table = jdbc_table(db.url, name, primary_key=["parent_category_name"])
    sink = JdbcSink(table, Settings())
    sink.write(changelog(table, [("+I", 1, None), ("+I", 2, "Toys")]))
    sink.write(changelog(table, [("+U", 3, None)]))
    assert db.rows(name) == [(2, "Toys"), (3, None)]
    sink.write(changelog(table, [("-D", 3, None)]))
    sink.close()
    assert db.rows(name) == [(2, "Toys")]


def test_sink_composite_key_with_a_null_part(db: Db) -> None:
    name = db.new_table()
    columns = [*CATEGORY, Column("cnt", "BIGINT", "BIGINT")]
    table = jdbc_table(db.url, name, columns, ["sub_category_id", "parent_category_name"])
    sink = JdbcSink(table, Settings())
    sink.write(changelog(table, [("+I", 1, None, 10), ("+I", 1, "A", 20), ("+I", None, None, 30)]))
    sink.write(changelog(table, [("+U", 1, None, 11), ("+U", None, None, 31), ("+U", 1, "A", 21)]))
    sink.close()
    assert db.rows(name) == [(None, None, 31), (1, None, 11), (1, "A", 21)]


def test_sink_last_change_of_a_key_in_a_batch_wins(db: Db) -> None:
    name = db.new_table()
    table = jdbc_table(db.url, name, primary_key=["sub_category_id"])
    sink = JdbcSink(table, Settings())
    sink.write(changelog(table, [("+I", 9, "Old")]))
    batch = [
        ("+I", 1, "a"), ("-U", 1, "a"), ("+U", 1, "b"),  # updated twice: b
        ("+I", 2, "x"), ("-D", 2, "x"),  # inserted then deleted: gone
        ("-D", 9, "Old"), ("+I", 9, "New"),  # deleted then inserted: New
    ]  # fmt: skip
    sink.write(changelog(table, batch))
    sink.close()
    assert db.rows(name) == [(1, "b"), (9, "New")]


def test_sink_keys_are_case_sensitive(db: Db) -> None:
    name = db.new_table()
    table = jdbc_table(db.url, name, primary_key=["parent_category_name"])
    sink = JdbcSink(table, Settings())
    sink.write(changelog(table, [("+I", 1, "Books"), ("+I", 2, "books")]))
    sink.write(changelog(table, [("-D", 2, "books")]))
    sink.close()
    assert db.rows(name) == [(1, "Books")]


def test_sink_large_batches(db: Db) -> None:
    name = db.new_table()
    table = jdbc_table(db.url, name, primary_key=["sub_category_id"])
    sink = JdbcSink(table, Settings())
    sink.write(changelog(table, [("+I", i, f"v{i}") for i in range(3000)]))
    sink.write(changelog(table, [("+U", i, f"w{i}") for i in range(0, 3000, 3)]))
    sink.close()
    assert db.execute(f"SELECT COUNT(*) FROM {name}") == [(3000,)]
    changed = db.execute(f"SELECT COUNT(*) FROM {name} WHERE parent_category_name LIKE 'w%%'")
    assert changed == [(1000,)]


def test_sink_without_key_appends(db: Db) -> None:
    name = db.new_table()
    table = jdbc_table(db.url, name)
    sink = JdbcSink(table, Settings())
    sink.write(changelog(table, [("+I", 1, "Books"), ("+I", 1, "Books")]))
    sink.write(changelog(table, [("+I", 2, None)]))
    sink.close()
    assert db.rows(name) == [(1, "Books"), (1, "Books"), (2, None)]


EXPECTED_TYPES = {
    "sqlite": {"id": "BIGINT", "name": "TEXT", "ts": "TEXT", "price": "TEXT", "score": "REAL"},
    "postgres": {
        "id": "bigint",
        "name": "text",
        "ts": "timestamp with time zone",
        "price": "numeric",
        "score": "double precision",
    },
    "mariadb": {
        "id": "bigint(20)",
        "name": "varchar(255)",
        "ts": "datetime(3)",
        "price": "decimal(10,2)",
        "score": "double",
    },
}
TYPED = [
    Column("id", "BIGINT", "BIGINT"),
    Column("name", "STRING", "VARCHAR"),
    Column("ts", "TIMESTAMP_LTZ(3)", "TIMESTAMPTZ"),
    Column("price", "DECIMAL(10, 2)", "DECIMAL(10, 2)"),
    Column("score", "DOUBLE", "DOUBLE"),
]


def test_sink_creates_table_with_mapped_types_and_a_plain_key_index(db: Db) -> None:
    name = db.new_table()
    sink = JdbcSink(jdbc_table(db.url, name, TYPED, ["id", "name"]), Settings())
    sink.flush()  # creates the table even before any row
    sink.close()
    assert db.column_types(name) == EXPECTED_TYPES[db.kind]
    assert db.key_index(name) == (["id", "name"], False)
    # No PRIMARY KEY constraint: NULL and repeated key values are storable.
    db.insert(name, [(None, None, None, None, None), (None, None, None, None, None)])


def test_sink_writes_into_an_existing_table(db: Db) -> None:
    name = db.category_table([(1, "Books")])
    table = jdbc_table(db.url, name, primary_key=["sub_category_id"])
    sink = JdbcSink(table, Settings())
    sink.write(changelog(table, [("+U", 1, "Comics"), ("+I", 2, "Toys")]))
    sink.close()
    assert db.rows(name) == [(1, "Comics"), (2, "Toys")]


def test_types_round_trip(db: Db) -> None:
    columns = [
        *TYPED,
        Column("flag", "BOOLEAN", "BOOLEAN"),
        Column("day", "DATE", "DATE"),
        Column("local_ts", "TIMESTAMP(3)", "TIMESTAMP"),
        Column("qty", "INT", "INTEGER"),
    ]
    name = db.new_table()
    table = jdbc_table(db.url, name, columns, ["id"])
    instant = datetime(2024, 5, 1, 10, 0, 0, 123_000, tzinfo=UTC)
    rows = [
        (1, "Bücher ☕", instant, Decimal("1234.50"), 0.1, True, date(2024, 5, 1), datetime(2024, 5, 1, 12, 0, 0, 5_000), -7),  # noqa: E501
        (2, None, None, None, None, None, None, None, None),
        (-(2**62), "", instant, Decimal("-0.01"), -1e300, False, date(1970, 1, 1), datetime(1999, 12, 31, 23, 59, 59), 2**31 - 1),  # noqa: E501
    ]  # fmt: skip
    sink = JdbcSink(table, Settings())
    sink.write(changelog(table, [("+I", *row) for row in rows]))
    sink.close()
    source = JdbcLookupSource(table, Settings())
    result = source.lookup(["id"], pa.table({"id": pa.array([1, 2, -(2**62)], pa.int64())}))
    source.close()
    expected = changelog(table, [("+I", *row) for row in rows]).drop_columns(["_op"])
    assert result.equals(expected), result.to_pylist()


def test_sqlite_keeps_instants_and_decimals_as_exact_text(sqlite_url: str) -> None:
    db = Db("sqlite", sqlite_url)
    name = db.new_table()
    table = jdbc_table(db.url, name, TYPED, ["id"])
    sink = JdbcSink(table, Settings())
    instant = datetime(2024, 5, 1, 10, 0, 0, 123_000, tzinfo=UTC)
    sink.write(changelog(table, [("+I", 1, "a", instant, Decimal("0.10"), 1.5)]))
    sink.close()
    assert db.rows(name) == [(1, "a", "2024-05-01 10:00:00.123+00:00", "0.10", 1.5)]
    db.close()


# -- connections and errors -----------------------------------------------------------------------


def test_lookup_reconnects_after_losing_its_connection(server_db: Db) -> None:
    name = server_db.category_table([(1, "Books")])
    source = JdbcLookupSource(jdbc_table(server_db.url, name), Settings())
    assert names(source.lookup(["sub_category_id"], ids(1))) == ["Books"]
    server_db.kill(source.database.connection())
    assert names(source.lookup(["sub_category_id"], ids(1))) == ["Books"]
    source.close()


def test_sink_reconnects_after_losing_its_connection(server_db: Db) -> None:
    name = server_db.new_table()
    table = jdbc_table(server_db.url, name, primary_key=["sub_category_id"])
    sink = JdbcSink(table, Settings())
    sink.write(changelog(table, [("+I", 1, "Books")]))
    server_db.kill(sink.database.connection())
    sink.write(changelog(table, [("+I", 2, "Toys")]))
    sink.close()
    assert server_db.rows(name) == [(1, "Books"), (2, "Toys")]


def _assert_secret_free(error: pytest.ExceptionInfo[ConnectorError]) -> None:
    assert SECRET not in str(error.value)
    assert SECRET not in repr(error.value.__cause__)


@pytest.mark.parametrize(
    "url",
    [
        f"jdbc:postgresql://127.0.0.1:1/test?user=app&password={SECRET}",
        f"jdbc:mysql://app:{SECRET}@127.0.0.1:1/test",
    ],
)
def test_unreachable_server_error_names_table_and_url_not_password(url: str) -> None:
    options = {"password": SECRET, "lookup.max-retries": "1"}
    table = jdbc_table(url, "category", options=options)
    source = JdbcLookupSource(table, Settings())
    with pytest.raises(ConnectorError) as error:
        source.lookup(["sub_category_id"], ids(1))
    _assert_secret_free(error)
    message = str(error.value)
    assert "jdbc table 'category_dim'" in message and "'category'" in message
    assert "127.0.0.1:1/test" in message and "lookup failed" in message


@pytest.mark.integration
def test_wrong_password_error_does_not_show_it(mariadb_url: str) -> None:
    table = jdbc_table(mariadb_url, "category", primary_key=["sub_category_id"])
    table.options.update({"username": "clickstream_nobody", "password": SECRET})
    sink = JdbcSink(table, Settings())
    with pytest.raises(ConnectorError, match="Access denied") as error:
        sink.write(changelog(table, [("+I", 1, "Books")]))
    _assert_secret_free(error)


def test_missing_table_error_names_it(db: Db) -> None:
    table = jdbc_table(db.url, "no_such_table_here", options={"password": SECRET})
    source = JdbcLookupSource(table, Settings())
    with pytest.raises(ConnectorError, match="'no_such_table_here'") as error:
        source.lookup(["sub_category_id"], ids(1))
    _assert_secret_free(error)
    assert source.queries == 0


def test_unopenable_sqlite_file(tmp_path) -> None:
    url = f"jdbc:sqlite:{tmp_path}/missing/dir/x.db?password={SECRET}"
    sink = JdbcSink(jdbc_table(url, "category"), Settings())
    with pytest.raises(ConnectorError, match="unable to open database file") as error:
        sink.flush()
    _assert_secret_free(error)


def test_sink_into_a_table_missing_a_column_fails_clearly(db: Db) -> None:
    name = db.new_table()
    db.execute(f"CREATE TABLE {name} (sub_category_id BIGINT)")
    table = jdbc_table(db.url, name, primary_key=["sub_category_id"])
    sink = JdbcSink(table, Settings())
    with pytest.raises(ConnectorError, match=f"'{name}'.*write failed"):
        sink.write(changelog(table, [("+I", 1, "Books")]))
    sink.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": f"jdbc:oracle:thin:scott/{SECRET}@db:1521/x"}, "unsupported JDBC URL"),
        ({"url": f"jdbc:db2://scott:{SECRET}@db/x"}, "unsupported JDBC URL"),
        ({"url": ""}, "needs the 'url' option"),
        ({"table-name": ""}, "needs the 'table-name' option"),
    ],
)
def test_bad_configuration_is_reported(options: dict[str, str], message: str) -> None:
    table = jdbc_table("jdbc:sqlite::memory:", "category")
    table.options.update(options)
    with pytest.raises(ConnectorError, match=message) as error:
        JdbcSink(table, Settings())
    _assert_secret_free(error)
    assert "category_dim" in str(error.value)


def test_sink_primary_key_must_be_a_column() -> None:
    table = jdbc_table("jdbc:sqlite::memory:", "category", primary_key=["nope"])
    with pytest.raises(ConnectorError, match="primary key column 'nope'"):
        JdbcSink(table, Settings())


# -- URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "database", "user"),
    [
        ("jdbc:sqlite:/abs/path.db", "sqlite", "localhost", None, "/abs/path.db", None),
        ("jdbc:sqlite:relative.db", "sqlite", "localhost", None, "relative.db", None),
        ("jdbc:sqlite::memory:", "sqlite", "localhost", None, ":memory:", None),
        ("jdbc:postgresql://db.local:6543/shop?user=u", "postgresql", "db.local", 6543, "shop", "u"),
        ("jdbc:postgresql:shop", "postgresql", "localhost", None, "shop", None),
        ("jdbc:mysql://mysql:3306/flink", "mysql", "mysql", 3306, "flink", None),
        ("jdbc:mariadb://u:p@maria/flink", "mariadb", "maria", None, "flink", "u"),
    ],
)
def test_parse_jdbc_url(
    url: str, scheme: str, host: str, port: int | None, database: str, user: str | None
) -> None:
    parsed = parse_jdbc_url(url)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.database) == (
        scheme,
        host,
        port,
        database,
    )
    assert parsed.params.get("user") == user


def test_urls_are_shown_without_credentials() -> None:
    parsed = parse_jdbc_url(f"jdbc:mysql://root:{SECRET}@mysql:3306/flink?password={SECRET}")
    assert parsed.params["password"] == SECRET
    assert parsed.display() == "jdbc:mysql://mysql:3306/flink"
    assert redact_url(f"jdbc:oracle:thin:scott/{SECRET}@db:1521/x") == "jdbc:oracle:..."
    assert redact_url(f"postgres://root:{SECRET}@h/db") == "(not a jdbc: URL)"


def test_sqlite_memory_database_works_within_one_sink() -> None:
    table = jdbc_table("jdbc:sqlite::memory:", "category", primary_key=["sub_category_id"])
    sink = JdbcSink(table, Settings())
    sink.write(changelog(table, [("+I", 1, "Books"), ("+U", 1, "Comics")]))
    rows = sink.database.connection().execute("SELECT * FROM category").fetchall()
    sink.close()
    assert rows == [(1, "Comics")]
