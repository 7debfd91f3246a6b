"""A window TVF aggregation over a deduplication keeping the last row on event time, as Flink
2.3 runs it: each replacement retracts the replaced row from its window (dropped as late when
that window has fired) and adds the new one. The streaming result equals a one-pass Python
oracle of those rules on generated data with updates, out-of-order and late rows, and does not
depend on the mini-batch size. (The conformance group `misc11` has the cases recorded from
PyFlink: `window_last_row_*`.)"""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from tests.conformance.harness import materialize, normalize

SIZE_MS, DELAY_MS = 5000, 1000
Row = tuple[int, str, int | None, int]  # id, k, v, ts (epoch ms)

SCRIPT = f"""
CREATE TABLE ev (id INT, k STRING, v INT, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '{DELAY_MS // 1000}' SECOND)
 WITH ('connector' = 'filesystem', 'path' = '{{path}}', 'format' = 'json',
       'json.timestamp-format.standard' = 'ISO-8601');
CREATE VIEW latest AS SELECT id, k, v, ts FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY id ORDER BY ts DESC) AS rn FROM ev) WHERE rn = 1;
"""

QUERY = (
    "SELECT k, window_start, COUNT(*) AS n, SUM(v) AS s, MAX(v) AS mx, MIN(v) AS mn "
    "FROM TABLE(TUMBLE(TABLE latest, DESCRIPTOR(ts), INTERVAL '5' SECOND)) "
    "GROUP BY k, window_start, window_end"
)


def _events(seed: int, count: int = 160) -> list[Row]:
    """Updates of 25 ids over about a minute: mostly in order, some a few seconds behind (out of
    order, some late for their window), some at the same time as their id's current row."""
    rng = random.Random(seed)
    clock, rows = 0, []
    for _ in range(count):
        clock += rng.randint(0, 700)
        behind = rng.choice([0, 0, 0, 0, rng.randint(1, 4000), rng.randint(4000, 12000)])
        value = None if rng.random() < 0.05 else rng.randint(-20, 100)
        rows.append((rng.randint(1, 25), rng.choice("abc"), value, max(clock - behind, 0)))
    return rows


def _oracle(rows: list[Row]) -> list[list]:
    """Flink's rules, record by record: the watermark before each row; the last-row deduplication
    (a row replaces its id's row unless it is older); every change into its tumbling window unless
    the window has fired (end - 1 <= watermark)."""
    watermark: int | None = None
    current: dict[int, Row] = {}
    windows: dict[tuple[str, int], Counter] = {}

    def apply(row: Row, sign: int) -> None:
        start = row[3] - row[3] % SIZE_MS
        if watermark is not None and start + SIZE_MS - 1 <= watermark:
            return  # late: its window has fired
        windows.setdefault((row[1], start), Counter())[row[:3]] += sign

    for row in rows:
        previous = current.get(row[0])
        if previous is None or row[3] >= previous[3]:
            if previous is not None:
                apply(previous, -1)
            apply(row, +1)
            current[row[0]] = row
        watermark = max(watermark if watermark is not None else row[3], row[3] - DELAY_MS)
    result = []
    for (k, start), rows_left in windows.items():
        kept = list(rows_left.elements())
        if not kept:
            continue
        values = [r[2] for r in kept if r[2] is not None]
        when = str(datetime.fromtimestamp(start / 1000, UTC).replace(tzinfo=None))
        total = sum(values) if values else None
        result.append([k, when, len(kept), total, max(values, default=None), min(values, default=None)])
    return sorted(result, key=json.dumps)


def _run(path: Path, batch_size: str) -> list[list]:
    engine = Engine(Settings({"table.exec.mini-batch.size": batch_size}), out=io.StringIO())
    engine.execute_script(SCRIPT.format(path=path))
    changelog = [(kind, [normalize(v, "UTC") for v in row]) for kind, row in engine.collect(QUERY)]
    return sorted(materialize(changelog), key=json.dumps)


@pytest.mark.parametrize("seed", [3, 11])
def test_window_over_last_row_equals_oracle_at_every_batch_size(tmp_path: Path, seed: int) -> None:
    rows = _events(seed)
    path = tmp_path / "ev.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "id": i,
                    "k": k,
                    "v": v,
                    "ts": datetime.fromtimestamp(t / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
                }
            )
            + "\n"
            for i, k, v, t in rows
        )
    )
    want = _oracle(rows)
    assert any(r[2] > 1 for r in want)  # windows that kept several rows
    for size in ("-1", "7", "1"):
        assert _run(path, size) == want, f"mini-batch size {size}"
