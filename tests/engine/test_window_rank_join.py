"""Window Top-N and window joins, on window TVF results."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from tests import oracle
from tests.engine.conftest import SOURCE_DDL
from tests.flink_oracle import materialize, run_flink

WINDOW_TOP = """
SELECT ws, category_id, buys, rn FROM (
  SELECT DATE_FORMAT(window_start, 'HH:mm') AS ws, category_id, buys,
         ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                            ORDER BY buys DESC, category_id) AS rn
  FROM (SELECT window_start, window_end, category_id, COUNT(*) AS buys
        FROM TABLE(TUMBLE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '1' HOUR))
        WHERE behavior = 'buy' GROUP BY window_start, window_end, category_id))
WHERE rn <= 3"""

WINDOW_JOIN = """
SELECT DATE_FORMAT(b.window_start, 'HH:mm') AS ws, b.category_id, b.buys, v.pv_cnt
FROM (SELECT window_start, window_end, category_id, COUNT(*) AS buys
      FROM TABLE(TUMBLE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '1' HOUR))
      WHERE behavior = 'buy' GROUP BY window_start, window_end, category_id) AS b
JOIN (SELECT window_start, window_end, category_id, COUNT(*) AS pv_cnt
      FROM TABLE(TUMBLE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '1' HOUR))
      WHERE behavior = 'pv' GROUP BY window_start, window_end, category_id) AS v
ON b.window_start = v.window_start AND b.window_end = v.window_end
   AND b.category_id = v.category_id"""


def _counts(events_file, behavior: str) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for event, watermark in oracle.with_watermarks(oracle.read_events(events_file)):
        start = event["ts"] - event["ts"] % oracle.HOUR_MS
        if event["behavior"] == behavior and start + oracle.HOUR_MS - 1 > watermark:
            counts[(start, event["category_id"])] += 1
    return counts


def _hhmm(ms: int) -> str:
    return f"{(ms // 3_600_000) % 24:02d}:00"


def _engine(events_file) -> Engine:
    engine = Engine(Settings({"table.exec.mini-batch.size": "3000"}))
    engine.execute_script(SOURCE_DDL.format(path=events_file))
    return engine


def test_window_top_n(events_file):
    got = materialize(_engine(events_file).collect(WINDOW_TOP))
    per_window: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (start, category), n in _counts(events_file, "buy").items():
        per_window[start].append((-n, category))
    expected = Counter()
    for start, rows in per_window.items():
        for rank, (n, category) in enumerate(sorted(rows)[:3], start=1):
            expected[(_hhmm(start), category, -n, rank)] += 1
    assert got == expected


def test_window_join(events_file):
    got = materialize(_engine(events_file).collect(WINDOW_JOIN))
    buys, views = _counts(events_file, "buy"), _counts(events_file, "pv")
    expected = Counter(
        (_hhmm(start), category, n, views[(start, category)])
        for (start, category), n in buys.items()
        if (start, category) in views
    )
    assert got == expected


def test_batch_sizes_agree(events_file):
    for query in (WINDOW_TOP, WINDOW_JOIN):
        results = []
        for size in ("700", "-1"):
            engine = Engine(Settings({"table.exec.mini-batch.size": size}))
            engine.execute_script(SOURCE_DDL.format(path=events_file))
            results.append(materialize(engine.collect(query)))
        assert results[0] == results[1]


@pytest.mark.flink
@pytest.mark.integration
def test_same_as_flink(tmp_path):
    from clickstream.simulate.tianchi import TianchiConfig, write_jsonl

    path = tmp_path / "events.jsonl"
    write_jsonl(
        str(path), TianchiConfig(events=2500, users=100, categories=30, days=0.3, late_ratio=0.01, seed=12)
    )
    ddl = SOURCE_DDL.format(path=path).strip().rstrip(";").replace("proctime AS PROCTIME(),", "")
    flink = run_flink([ddl], {"top": WINDOW_TOP, "join": WINDOW_JOIN})
    engine = Engine(Settings({"table.exec.mini-batch.size": "300"}))
    engine.execute_script(SOURCE_DDL.format(path=path))
    assert materialize(engine.collect(WINDOW_TOP)) == materialize(flink["top"])
    assert materialize(engine.collect(WINDOW_JOIN)) == materialize(flink["join"])


def test_window_join_releases_state(events_file):
    engine = Engine(Settings({"table.exec.mini-batch.size": "2000"}))
    engine.execute_script(SOURCE_DDL.format(path=events_file))
    sizes: list[int] = []
    engine.on_batch = lambda job: sizes.append(job.metrics()["collect"]["state_rows"])
    engine.collect(WINDOW_JOIN)
    join_inputs = len(_counts(events_file, "buy")) + len(_counts(events_file, "pv"))
    # state holds the rows of the few windows still open, not every window's
    assert max(sizes) < join_inputs / 4
    assert sizes[-1] == 0
