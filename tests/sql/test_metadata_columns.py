"""METADATA columns in CREATE TABLE (`col TYPE METADATA [FROM 'key'] [VIRTUAL]`), as Flink parses
them: kept apart from the record's fields, shown by SHOW CREATE TABLE, merged by LIKE, and left
out of an INSERT's columns when VIRTUAL. No broker needed: nothing is read."""

from __future__ import annotations

import io

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.errors import ClickstreamError
from clickstream.schema import MetadataColumn

KAFKA = (
    "WITH ('connector' = 'kafka', 'topic' = 't', 'properties.bootstrap.servers' = '127.0.0.1:1', "
    "'format' = 'json')"
)
EVENTS = (
    "CREATE TABLE events (user_id BIGINT, part INT METADATA FROM 'partition' VIRTUAL, "
    f"`offset` BIGINT METADATA VIRTUAL, t TIMESTAMP_LTZ(3) METADATA FROM 'timestamp') {KAFKA};"
)


def _engine() -> Engine:
    engine = Engine(Settings(), out=io.StringIO())
    engine.execute_script(EVENTS)
    return engine


def test_metadata_columns_are_parsed_with_their_keys():
    table = _engine().catalog.table("events")
    assert [c.name for c in table.physical] == ["user_id", "part", "offset", "t"]
    assert table.metadata == {
        "part": MetadataColumn("partition", True),
        "offset": MetadataColumn("offset", True),  # the key defaults to the column's name
        "t": MetadataColumn("timestamp", False),
    }
    assert [c.name for c in table.persisted] == ["user_id", "t"]


def test_show_create_table_writes_them_back():
    engine = _engine()
    engine.out = io.StringIO()
    engine.execute_script("SHOW CREATE TABLE events;")
    text = engine.out.getvalue()
    assert "`part` INT METADATA FROM 'partition' VIRTUAL" in text
    assert (
        "`t` TIMESTAMP(3) WITH LOCAL TIME ZONE METADATA FROM 'timestamp'" in text
        and "'timestamp' VIRTUAL" not in text
    )


def test_like_keeps_them_or_leaves_them_out():
    engine = _engine()
    engine.execute_script(
        "CREATE TABLE copy1 (extra INT) LIKE events;"
        "CREATE TABLE copy2 (extra INT) LIKE events (EXCLUDING METADATA);"
    )
    assert set(engine.catalog.table("copy1").metadata) == {"part", "offset", "t"}
    copy2 = engine.catalog.table("copy2")
    assert copy2.metadata == {} and [c.name for c in copy2.physical] == ["user_id", "extra"]


def test_an_insert_gives_every_column_but_the_virtual_ones():
    engine = _engine()
    engine.execute_script(f"CREATE TABLE src (user_id BIGINT, t TIMESTAMP_LTZ(3)) {KAFKA};")
    engine.explain("INSERT INTO events SELECT user_id, t FROM src;")  # two columns: accepted
    try:
        engine.explain("INSERT INTO events SELECT user_id, 1, CAST(2 AS BIGINT), t FROM src;")
    except ClickstreamError as error:
        assert "Query has 4, sink has 2: user_id, t" in str(error)
    else:
        raise AssertionError("an INSERT into a VIRTUAL column was accepted")
