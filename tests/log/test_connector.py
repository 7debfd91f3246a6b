"""The `log` connector: LogSource and LogSink on their own and through the engine."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pyarrow as pa
import pytest

from clickstream.config import Settings
from clickstream.connectors.base import OP_COLUMN, PARTITION
from clickstream.connectors.log import LogSink, LogSource
from clickstream.engine import Engine
from clickstream.errors import ConnectorError
from clickstream.log import TopicLog
from clickstream.log.segments import list_segments
from clickstream.schema import TableDef
from tests.engine.conftest import sqlite_rows, sqlite_sink

COLUMNS = "user_id BIGINT, behavior STRING, ts TIMESTAMP_LTZ(3)"
T0 = datetime(2017, 11, 25, 10, 0, tzinfo=UTC)


def _event(i: int) -> bytes:
    return orjson.dumps(
        {
            "user_id": i % 7,
            "behavior": ("pv", "buy", "cart")[i % 3],
            "ts": f"2017-11-25T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        }
    )


def _ddl(name: str, root, topic: str, columns: str = COLUMNS, watermark: bool = False, **options: str) -> str:
    wm = ", WATERMARK FOR ts AS ts - INTERVAL '5' SECOND" if watermark else ""
    opts = {"connector": "log", "path": str(root), "topic": topic, **options}
    with_ = ", ".join(f"'{k}' = '{v}'" for k, v in opts.items())
    return f"CREATE TABLE {name} ({columns}{wm}) WITH ({with_});"


def _engine(tmp_path) -> Engine:
    return Engine(Settings({"dead-letter.dir": str(tmp_path / "dead")}), out=io.StringIO())


def _table(tmp_path, ddl: str) -> TableDef:
    engine = _engine(tmp_path)
    engine.execute_script(ddl)
    return engine.catalog.table(ddl.split()[2])


def _source(tmp_path, **options: str) -> LogSource:
    options.setdefault("scan.bounded.mode", "latest-offset")
    table = _table(tmp_path, _ddl("src", tmp_path / "log", "events", **options))
    return LogSource(table, Settings({"dead-letter.dir": str(tmp_path / "dead")}))


def _drain(source: LogSource) -> pa.Table:
    batches = []
    while not source.exhausted():
        batch = source.poll(100)
        if batch is not None:
            batches.append(batch)
    return pa.concat_tables(batches)


def test_engine_reads_a_topic_to_sqlite_and_collects(tmp_path):
    root = tmp_path / "log"
    with TopicLog(root) as log:
        log.create_topic("events", 3)
        values = [_event(i) for i in range(900)]
        log.append("events", values, [str(i % 7).encode() for i in range(900)])
        log.append("events", [b"not json", b'{"user_id": "seven"}'])
    db = tmp_path / "out.db"
    engine = _engine(tmp_path)
    engine.execute_script(
        _ddl("events", root, "events", watermark=True, **{"scan.bounded.mode": "latest-offset"})
        + f"""
        CREATE TABLE per_minute (ws STRING, behavior STRING, cnt BIGINT)
            WITH ({sqlite_sink(db, "per_minute")});
        INSERT INTO per_minute
        SELECT CAST(window_start AS STRING), behavior, COUNT(*)
        FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '5' MINUTE))
        GROUP BY window_start, window_end, behavior;
    """
    )
    rows = sqlite_rows(db, "per_minute")
    assert len(rows) == 3 * 3  # three 5-minute windows (15 minutes of events), three behaviors
    assert sum(r[2] for r in rows) == 900
    assert all(r[2] == 100 for r in rows)

    collected = engine.collect("SELECT behavior, COUNT(*) AS n FROM events GROUP BY behavior")
    final = {row[0]: row[1] for op, row in collected if op in ("+I", "+U")}
    assert final == {"pv": 300, "buy": 300, "cart": 300}
    dead = (tmp_path / "dead" / "events.jsonl").read_bytes().splitlines()
    assert len(dead) == 4  # two malformed records, read by two jobs
    assert {orjson.loads(line)["record"] for line in dead} == {"not json", '{"user_id": "seven"}'}


def test_sink_writes_json_that_the_source_reads_back(tmp_path):
    root = tmp_path / "log"
    with TopicLog(root) as log:
        log.append("events", [_event(i) for i in range(50)])
    engine = _engine(tmp_path)
    engine.execute_script(
        _ddl("events", root, "events", **{"scan.bounded.mode": "latest-offset"})
        + _ddl(
            "copy",
            root,
            "copy",
            "user_id BIGINT, behavior STRING, ts TIMESTAMP_LTZ(3), amount DECIMAL(10, 2)",
            **{"log.partitions": "2", "key.fields": "user_id"},
        )
        + "INSERT INTO copy SELECT user_id, behavior, ts, CAST(user_id AS DECIMAL(10, 2)) / 4 "
        "FROM events WHERE behavior <> 'cart';"
    )
    raw = [orjson.loads(v) for v in TopicLog(root).open_reader("copy").poll(100).column("value").to_pylist()]
    assert len(raw) == 34
    assert raw[0]["ts"].endswith("Z") and raw[0]["ts"].startswith("2017-11-25T10:00:00")

    engine.execute_script(
        _ddl(
            "copy_in",
            root,
            "copy",
            "user_id BIGINT, behavior STRING, ts TIMESTAMP_LTZ(3), amount DECIMAL(10, 2)",
            **{"scan.bounded.mode": "latest-offset"},
        )
    )
    rows = sorted(row for _, row in engine.collect("SELECT * FROM copy_in"))
    expected = sorted(
        (i % 7, ("pv", "buy", "cart")[i % 3], i, Decimal(i % 7) / 4) for i in range(50) if i % 3 != 2
    )
    assert [(r[0], r[1], r[3]) for r in rows] == [(e[0], e[1], e[3]) for e in expected]
    # the event's second within the minute is its number: timestamps survived the round trip
    assert sorted(_seconds_after_t0(r[2]) for r in rows) == sorted(e[2] for e in expected)


def _seconds_after_t0(value: datetime) -> int:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int((aware - T0).total_seconds())


def test_source_batches_carry_partitions_and_stop_at_the_end_offsets(tmp_path):
    with TopicLog(tmp_path / "log") as log:
        log.create_topic("events", 3)
        log.append("events", [_event(i) for i in range(300)], [str(i).encode() for i in range(300)])
        source = _source(tmp_path)
        log.append("events", [_event(i) for i in range(300, 310)])  # after the job started
    assert source.bounded and source.partitions == 3
    table = _drain(source)
    assert table.num_rows == 300
    assert table.schema.field(PARTITION).type == pa.int32()
    assert set(table.column(PARTITION).to_pylist()) == {0, 1, 2}
    assert table.column_names == ["user_id", "behavior", "ts", PARTITION]
    assert sum(source.offsets().values()) == 300
    source.close()


def test_records_that_are_not_utf8_go_to_the_dead_letters(tmp_path):
    with TopicLog(tmp_path / "log") as log:
        log.append("events", [_event(0), b"\xff\xfe{}", _event(1)])
    source = _source(tmp_path)
    assert _drain(source).column("user_id").to_pylist() == [0, 1]
    assert source.metrics.malformed == 1
    dead = orjson.loads((tmp_path / "dead" / "src.jsonl").read_bytes())
    assert dead["reason"] == "not UTF-8 text"
    source.close()


def test_unbounded_source_group_offsets_and_commit(tmp_path):
    with TopicLog(tmp_path / "log") as log:
        log.append("events", [_event(i) for i in range(20)])
    options = {
        "properties.group.id": "g",
        "scan.bounded.mode": "unbounded",
        "scan.startup.mode": "group-offsets",
    }
    source = _source(tmp_path, **options)
    assert not source.bounded and not source.exhausted()
    assert source.poll(8).num_rows == 8
    source.commit()
    source.close()
    again = _source(tmp_path, **options)
    assert again.offsets() == {0: 8}
    assert again.poll(100).num_rows == 12
    assert again.poll(100) is None
    again.seek({"offsets": {0: 15}, "stops": None, "turn": 0})
    assert again.poll(100).num_rows == 5
    again.close()


def test_a_source_resumed_at_offsets_retention_deleted_goes_on_from_the_earliest_kept(tmp_path):
    # a job restored from a checkpoint taken before the log's retention moved past its offsets
    options = {"scan.bounded.mode": "unbounded"}
    with TopicLog(tmp_path / "log", segment_bytes=2_048, retention_bytes=3 * 2_048) as log:
        log.append("events", [_event(i) for i in range(20)])
        source = _source(tmp_path, **options)
        assert source.poll(5).num_rows == 5
        position = source.position()
        source.close()
        for i in range(20, 400, 20):
            log.append("events", [_event(j) for j in range(i, i + 20)])
    earliest = list_segments(tmp_path / "log" / "events" / "0")[0]
    assert earliest > 5
    restored = _source(tmp_path, **options)
    restored.seek(position)
    rows = restored.poll(1_000)
    restored.close()
    assert rows.num_rows == 400 - earliest
    assert rows.column("user_id")[0].as_py() == earliest % 7


def test_startup_modes_latest_and_specific(tmp_path):
    with TopicLog(tmp_path / "log") as log:
        log.append("events", [_event(i) for i in range(20)])
        latest = _source(tmp_path, **{"scan.startup.mode": "latest-offset", "scan.bounded.mode": "unbounded"})
        assert latest.poll(100) is None
        log.append("events", [_event(20)])
        assert latest.poll(100).num_rows == 1
    specific = _source(
        tmp_path,
        **{"scan.startup.mode": "specific-offsets", "scan.startup.specific-offsets": "partition:0,offset:17"},
    )
    assert _drain(specific).num_rows == 4


def test_bad_options_are_named(tmp_path):
    with pytest.raises(ConnectorError, match="needs 'topic'"):
        LogSource(
            _table(tmp_path, f"CREATE TABLE x (a INT) WITH ('connector' = 'log', 'path' = '{tmp_path}');"),
            Settings(),
        )
    with pytest.raises(ConnectorError, match="'scan.startup.mode' = 'timestamp' is not supported"):
        _source(tmp_path, **{"scan.startup.mode": "timestamp"})
    with pytest.raises(ConnectorError, match="needs 'properties.group.id'"):
        _source(tmp_path, **{"scan.startup.mode": "group-offsets"})
    with pytest.raises(ConnectorError, match="partition:<n>,offset:<n>"):
        _source(
            tmp_path, **{"scan.startup.mode": "specific-offsets", "scan.startup.specific-offsets": "0:17"}
        )


def _sink(tmp_path, columns: str = "k STRING, v BIGINT", pk: str = "", **options) -> LogSink:
    ddl = _ddl("sink", tmp_path / "log", "out", columns + pk, **options)
    return LogSink(_table(tmp_path, ddl), Settings())


def _batch(ops: list[int]) -> pa.Table:
    n = len(ops)
    return pa.table(
        {"k": [f"k{i % 4}" for i in range(n)], "v": list(range(n)), OP_COLUMN: pa.array(ops, pa.int8())}
    )


def _written(tmp_path) -> list[tuple[int, dict]]:
    table = TopicLog(tmp_path / "log").open_reader("out").poll(10_000)
    return [
        (p, orjson.loads(v))
        for p, v in zip(table.column("partition").to_pylist(), table.column("value").to_pylist(), strict=True)
    ]


def test_sink_appends_inserts_and_update_afters_only(tmp_path):
    sink = _sink(tmp_path)
    sink.write(_batch([0, 1, 2, 0]))
    assert [row for _, row in _written(tmp_path)] == [
        {"k": "k0", "v": 0},
        {"k": "k2", "v": 2},
        {"k": "k3", "v": 3},
    ]
    with pytest.raises(ConnectorError, match="deletions"):
        sink.write(_batch([0, 3]))
    sink.close()


@pytest.mark.parametrize(
    "options,check",
    [
        ({"sink.partitioner": "fixed"}, lambda rows: {p for p, _ in rows} == {0}),
        (
            {"sink.partitioner": "round-robin"},
            lambda rows: [sum(1 for p, _ in rows if p == q) for q in range(4)] == [10, 10, 10, 10],
        ),
        (
            {"key.fields": "k"},
            lambda rows: all(len({p for p, r in rows if r["k"] == k}) == 1 for k in ("k0", "k1")),
        ),
    ],
)
def test_sink_partitioners(tmp_path, options, check):
    sink = _sink(tmp_path, **{"log.partitions": "4", **options})
    sink.write(_batch([0] * 40))
    rows = _written(tmp_path)
    assert len(rows) == 40 and check(rows)
    sink.close()


def test_sink_with_primary_key_partitions_by_it(tmp_path):
    sink = _sink(tmp_path, pk=", PRIMARY KEY (k) NOT ENFORCED", **{"log.partitions": "3"})
    assert sink.is_upsert and sink.key_fields == ["k"]
    sink.write(_batch([0] * 30))
    rows = _written(tmp_path)
    assert all(len({p for p, r in rows if r["k"] == k}) == 1 for k in ("k0", "k1", "k2", "k3"))
    sink.close()
