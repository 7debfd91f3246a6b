"""A row whose rowtime is NULL: Flink fails the job ("RowTime field should not be null"); we send
it to the table's dead letters, count it as malformed, and the job goes on."""

from __future__ import annotations

import io
import json

from clickstream.config import Settings
from clickstream.engine import Engine


def test_null_rowtime_goes_to_the_dead_letters_and_is_counted(tmp_path):
    path = tmp_path / "c.json"
    rows = [
        {"u": 1, "ts": "2020-01-01 00:00:00"},
        {"u": 2, "ts": None},
        {"u": 3},
        {"u": 4, "ts": "2020-01-01 00:00:30"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    engine = Engine(Settings({"dead-letter.dir": str(tmp_path / "dead")}), out=io.StringIO())
    engine.execute_script(
        "CREATE TABLE c (u INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) "
        f"WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json');"
        "CREATE TABLE o (n BIGINT, total INT) WITH ('connector' = 'blackhole');"
        "INSERT INTO o SELECT COUNT(*), SUM(u) FROM TABLE(TUMBLE(TABLE c, DESCRIPTOR(ts), "
        "INTERVAL '1' MINUTE)) GROUP BY window_start, window_end;"
    )
    letters = [json.loads(line) for line in (tmp_path / "dead" / "c.jsonl").read_text().splitlines()]
    assert [json.loads(letter["record"])["u"] for letter in letters] == [2, 3]
    assert {letter["reason"] for letter in letters} == {"the rowtime attribute 'ts' is NULL"}
    metrics = engine.last_job.metrics()["insert-into_o"]
    assert metrics["malformed"] == 2
    assert metrics["records_in"] == 2
