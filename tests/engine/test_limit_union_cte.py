"""LIMIT ends a query even on an unbounded source; UNION's watermark is its inputs' least; WITH in
INSERT; EXPLAIN names the new operators; bad variants fail with a message and a position."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading

import orjson
import pytest

from clickstream.engine import Engine
from clickstream.errors import ClickstreamError
from clickstream.log import TopicLog

DATAGEN = "CREATE TABLE gen (id BIGINT, v INT) WITH ('connector' = 'datagen', 'rows-per-second' = '20');"


def run(script: str, timeout_s: float = 30) -> str:
    """Run `script` on a thread; fail (instead of hanging) if it does not end in `timeout_s`."""
    out = io.StringIO()
    engine = Engine(out=out)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            engine.execute_script(script)
        except BaseException as error:  # noqa: BLE001 - re-raised below
            failure.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        if engine.current_job is not None:
            engine.current_job.stop()
        pytest.fail(f"the script did not end within {timeout_s} s")
    if failure:
        raise failure[0]
    return out.getvalue()


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("+I", "-U", "+U", "-D"))]


def test_cli_select_limit_ends_on_unbounded_datagen(tmp_path):
    script = tmp_path / "limit.sql"
    script.write_text(DATAGEN + "\nSELECT id, v FROM gen LIMIT 3;\n")
    done = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", "run", "-q", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(_rows(done.stdout)) == 3


def test_select_limit_ends_on_unbounded_log(tmp_path):
    log = TopicLog(tmp_path / "log")
    log.create_topic("events")
    log.append("events", [orjson.dumps({"id": i, "page": f"p{i}"}) for i in range(10)])
    text = run(
        "CREATE TABLE events (id INT, page STRING) WITH ('connector' = 'log', "
        f"'path' = '{tmp_path / 'log'}', 'topic' = 'events', 'format' = 'json');"
        "SELECT id, page FROM events LIMIT 3;"
    )
    assert _rows(text) == ["+I[0, p0]", "+I[1, p1]", "+I[2, p2]"]


def test_insert_with_cte_union_and_limit_ends_on_unbounded_datagen(tmp_path):
    out = tmp_path / "out"
    run(
        DATAGEN
        + f"""
        CREATE TABLE sink (id BIGINT, src STRING) WITH ('connector' = 'filesystem', 'path' = '{out}',
            'format' = 'json');
        INSERT INTO sink
        WITH a AS (SELECT id FROM gen), b AS (SELECT id, 'a' AS src FROM a)
        SELECT id, src FROM b UNION ALL SELECT id, 'b' FROM a LIMIT 4;
        """
    )
    rows = [
        json.loads(line)
        for f in sorted(out.rglob("*"))
        if f.is_file() and not f.name.startswith(".")  # not the sink's commit notes
        for line in f.read_text().splitlines()
    ]
    assert len(rows) == 4


def test_union_watermark_is_the_least_of_its_inputs(tmp_path):
    # `late` is read after `early` has moved its own watermark to 00:00:30; the union's watermark
    # is still that of `late` (none yet), so its rows are not late for the window.
    for name, seconds in (("early", (10, 20, 30)), ("late", (1, 2))):
        rows = [{"ts": f"2024-01-01T00:00:{s:02d}"} for s in seconds]
        (tmp_path / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tables = "".join(
        f"CREATE TABLE {name} (ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'filesystem', "
        f"'path' = '{tmp_path / name}.json', 'format' = 'json', "
        "'json.timestamp-format.standard' = 'ISO-8601');"
        for name in ("early", "late")
    )
    text = run(
        tables + "WITH u AS (SELECT ts FROM early UNION ALL SELECT ts FROM late) "
        "SELECT window_start, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE u, DESCRIPTOR(ts), INTERVAL '5' SECOND)) "
        "GROUP BY window_start, window_end;"
    )
    assert "+I[2024-01-01 00:00:00.000, 2]" in _rows(text)


def test_explain_names_union_sort_and_limit(tmp_path):
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        "CREATE TABLE t (id INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');"
    )
    text = engine.explain(
        "SELECT id FROM t UNION ALL SELECT id FROM t; SELECT id, ts FROM t ORDER BY ts, id; "
        "SELECT id FROM t LIMIT 2; SELECT id FROM t ORDER BY id DESC LIMIT 2;"
    )
    assert "Union(all=[true], union=[id])" in text
    assert "TemporalSort(orderBy=[ts ASC, id ASC])" in text
    assert "Limit(offset=[0], fetch=[2])" in text
    assert "Rank(partitionBy=[], orderBy=[id DESC], rankRange=[1..2]" in text


@pytest.mark.parametrize(
    ("query", "message", "col"),
    [
        ("SELECT id FROM t ORDER BY id", "Sort on a non-time-attribute field is not supported.", 27),
        ("SELECT id FROM t ORDER BY ts DESC", "Sort on a non-time-attribute field is not supported.", 27),
        ("SELECT id, ts FROM t UNION ALL SELECT id FROM t", "Column count mismatch in UNION ALL", 39),
        ("SELECT id FROM t UNION SELECT ts FROM t", "Type mismatch in column 1 of UNION", 8),
        ("SELECT id FROM t ORDER BY ts OFFSET 1 ROWS", "FETCH is missed", 37),
        ("WITH a AS (SELECT id FROM t) SELECT ts FROM a", "Column 'ts' not found in any table", 37),
        (
            "WITH a (x, y) AS (SELECT id FROM t) SELECT * FROM a",
            "List of column aliases must have same degree",
            9,
        ),
        ("SELECT id FROM t LIMIT -1", "LIMIT needs a non-negative integer literal", 25),
        (
            "SELECT COUNT(*) AS n FROM t GROUP BY id LIMIT 1",
            "LIMIT without ORDER BY over an updating input",
            47,
        ),
        ("SELECT id FROM t EXCEPT SELECT id, ts FROM t", "Column count mismatch in EXCEPT", 32),
        ("WITH a AS (SELECT id FROM t) INSERT INTO t SELECT id, ts FROM a", "near the keyword 'INSERT'", 6),
    ],
)
def test_bad_variants_are_clear_errors_with_positions(query, message, col):
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        "CREATE TABLE t (id INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');"
    )
    with pytest.raises(ClickstreamError) as raised:
        engine.execute_script(query + ";")
    assert message in raised.value.message
    assert (raised.value.line, raised.value.col) == (1, col), str(raised.value)
