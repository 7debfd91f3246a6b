"""A window over another window's results (Flink's cascading windows), at several batch sizes.

Expected rows were recorded from PyFlink 2.3 on the same input (tests/flink_oracle, run_flink_json).
The inner window's rows reach the outer window before the watermark that released them, so they
are not late there; before, the outer window dropped them or overflowed at the end of input.
"""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest

from clickstream.engine import Engine
from tests.engine.conftest import final_rows

CLICKS = [{"u": i % 3, "ts": f"2020-01-01 00:{i:02d}:00"} for i in range(12)]
INNER = (
    "CREATE VIEW window1 AS SELECT window_start AS w2_start, window_end AS w2_end, window_time AS rowtime, "
    "u, COUNT(*) AS partial FROM TABLE(TUMBLE(TABLE c, DESCRIPTOR(ts), INTERVAL '2' MINUTES)) "
    "GROUP BY u, window_start, window_end, window_time;"
)


@pytest.fixture(params=["1", "5", "-1"], ids=lambda size: f"batch{size}")
def engine(tmp_path, request) -> Engine:
    path = tmp_path / "c.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in CLICKS))
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        f"SET 'table.exec.mini-batch.size' = '{request.param}';"
        "CREATE TABLE c (u INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) "
        f"WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json');" + INNER
    )
    return engine


def test_legacy_window_over_a_legacy_window_rowtime(engine):
    rows = final_rows(
        engine,
        "SELECT TUMBLE_START(wt, INTERVAL '6' MINUTE), SUM(cnt) FROM (SELECT TUMBLE_ROWTIME(ts, "
        "INTERVAL '2' MINUTE) AS wt, COUNT(*) AS cnt FROM c GROUP BY TUMBLE(ts, INTERVAL '2' MINUTE)) "
        "GROUP BY TUMBLE(wt, INTERVAL '6' MINUTE)",
        text=True,
    )
    assert rows == Counter({("2020-01-01 00:00:00", "6"): 1, ("2020-01-01 00:06:00", "6"): 1})


def test_tumble_over_a_window_grouped_by_window_time(engine):
    rows = final_rows(
        engine,
        "SELECT window_start, window_end, SUM(partial) AS total FROM TABLE(TUMBLE(TABLE window1, "
        "DESCRIPTOR(rowtime), INTERVAL '6' MINUTES)) GROUP BY window_start, window_end",
        text=True,
    )
    flink = [
        ("2020-01-01 00:00:00", "2020-01-01 00:06:00", "6"),
        ("2020-01-01 00:06:00", "2020-01-01 00:12:00", "6"),
    ]
    assert rows == Counter(flink)


def test_hop_over_a_window_per_key(engine):
    rows = final_rows(
        engine,
        "SELECT u, window_start, COUNT(*) AS k, SUM(partial) FROM TABLE(HOP(TABLE window1, "
        "DESCRIPTOR(rowtime), INTERVAL '2' MINUTES, INTERVAL '4' MINUTES)) "
        "GROUP BY u, window_start, window_end",
        text=True,
    )
    flink = {
        "0": ["23:58", "00:00 2", "00:02", "00:04", "00:06 2", "00:08"],
        "1": ["23:58", "00:00", "00:02", "00:04 2", "00:06", "00:08", "00:10"],
        "2": ["00:00", "00:02 2", "00:04", "00:06", "00:08 2", "00:10"],
    }
    expected = Counter()
    for u, windows in flink.items():
        for window in windows:
            start, _, count = window.partition(" ")
            day = "2019-12-31" if start == "23:58" else "2020-01-01"
            expected[(u, f"{day} {start}:00", count or "1", count or "1")] += 1
    assert rows == expected
