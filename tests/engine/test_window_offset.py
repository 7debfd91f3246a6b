"""Window TVFs with an OFFSET (positive and negative), at batch sizes 1 and unbounded.

`data/window_offset_flink.json` holds each query's final rows as PyFlink 2.3 gave them on the
same input (tests/flink_oracle, run_flink_json), values as strings.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from clickstream.engine import Engine

FLINK = json.loads(Path(__file__).with_name("data").joinpath("window_offset_flink.json").read_text())
ROWS = [{"v": i, "ts": f"2024-01-01 00:{(i * 7) // 60:02d}:{(i * 7) % 60:02d}"} for i in range(20)]
ROWS.insert(5, {"v": 100, "ts": "2024-01-01 00:00:01"})  # behind the watermark when it arrives
QUERIES = {
    "tumble": "SELECT window_start, window_end, window_time, COUNT(*), SUM(v) FROM TABLE(TUMBLE(TABLE t, "
    "DESCRIPTOR(ts), INTERVAL '30' SECOND, INTERVAL '10' SECOND)) "
    "GROUP BY window_start, window_end, window_time",
    "tumble_neg": "SELECT window_start, COUNT(*), SUM(v) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), "
    "INTERVAL '30' SECOND, INTERVAL '-10' SECOND)) GROUP BY window_start, window_end",
    "hop": "SELECT window_start, window_end, COUNT(*), SUM(v) FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), "
    "INTERVAL '20' SECOND, INTERVAL '1' MINUTE, INTERVAL '5' SECOND)) GROUP BY window_start, window_end",
    "cumulate": "SELECT window_start, window_end, COUNT(*), SUM(v) FROM TABLE(CUMULATE(TABLE t, "
    "DESCRIPTOR(ts), INTERVAL '20' SECOND, INTERVAL '1' MINUTE, INTERVAL '15' SECOND)) "
    "GROUP BY window_start, window_end",
}


@pytest.mark.parametrize("batch_size", ["1", "-1"])
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_window_with_offset_as_flink(tmp_path, name, batch_size):
    path = tmp_path / "t.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        f"SET 'table.exec.mini-batch.size' = '{batch_size}';"
        "CREATE TABLE t (v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '3' SECOND) "
        f"WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json');"
    )
    final: Counter = Counter()
    for op, row in engine.collect(QUERIES[name]):
        final[tuple(str(v) for v in row)] += 1 if op in ("+I", "+U") else -1
    assert +final == Counter(tuple(row) for row in FLINK[name])
