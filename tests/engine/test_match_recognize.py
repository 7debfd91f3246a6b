"""MATCH_RECOGNIZE on generated shop events (late and out-of-order ones included): the
pv -> cart -> buy funnel against a plain Python batch oracle, and batch-size invariance."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from tests import oracle
from tests.engine.conftest import SOURCE_DDL
from tests.flink_oracle import materialize

FUNNEL = """
SELECT * FROM user_behavior MATCH_RECOGNIZE (
  PARTITION BY user_id ORDER BY ts
  MEASURES A.item_id AS item, A.ts AS pv_ts, C.ts AS buy_ts
  ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B C) WITHIN INTERVAL '1' HOUR
  DEFINE A AS A.behavior = 'pv',
         B AS B.behavior = 'cart' AND B.item_id = A.item_id,
         C AS C.behavior = 'buy' AND C.item_id = A.item_id)"""

# quantifiers, aggregates and MATCH_ROWTIME feeding a window: exercises every part of the operator
BROWSING = """
WITH runs AS (
  SELECT * FROM user_behavior MATCH_RECOGNIZE (
    PARTITION BY user_id ORDER BY ts
    MEASURES COUNT(V.item_id) AS n_views, LAST(V.item_id) AS last_item, SUM(V.category_id) AS s,
             MATCH_ROWTIME() AS mt
    AFTER MATCH SKIP TO LAST E
    PATTERN (V{2,} W*? E) WITHIN INTERVAL '2' HOUR
    DEFINE V AS V.behavior = 'pv' AND (LAST(V.item_id, 1) IS NULL OR V.item_id <> LAST(V.item_id, 1)),
           W AS W.behavior = 'fav', E AS E.behavior = 'buy' OR SUM(V.category_id) > 3 * COUNT(V.item_id)))
SELECT window_start, COUNT(*) AS n_runs, SUM(n_views) AS n_views, MAX(last_item) AS last_item, SUM(s) AS s
FROM TABLE(TUMBLE(TABLE runs, DESCRIPTOR(mt), INTERVAL '1' HOUR))
GROUP BY window_start, window_end"""


@pytest.fixture(scope="module")
def shop_events(tmp_path_factory) -> Path:
    """Events of 300 users browsing 4 items each: funnels are frequent; a row is a second or two
    out of order now and then, and 1% come a minute late."""
    rng = random.Random(11)
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000
    clock, lines = start, []
    for _ in range(6000):
        clock += rng.randint(0, 4000)
        ts = (
            clock
            - (rng.randint(0, 3000) if rng.random() < 0.2 else 0)
            - (60_000 if rng.random() < 0.01 else 0)
        )
        behavior = rng.choices(["pv", "cart", "buy", "fav"], [5, 3, 2, 1])[0]
        event = {
            "user_id": rng.randint(1, 300),
            "item_id": rng.randint(1, 4),
            "category_id": rng.randint(1, 6),
            "behavior": behavior,
            "ts": datetime.fromtimestamp(ts / 1000, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
        lines.append(json.dumps(event) + "\n")
    path = tmp_path_factory.mktemp("shop") / "events.jsonl"
    path.write_text("".join(lines))
    return path


def _engine(events_file: Path, batch: str) -> Engine:
    engine = Engine(Settings({"table.exec.mini-batch.size": batch}))
    engine.execute_script(SOURCE_DDL.format(path=events_file))
    return engine


def _funnel_oracle(events_file: Path) -> Counter:
    """Flink's matches of (A B C) past the last row: per user, the rows that are not late in time
    order (then arrival), three strictly consecutive rows at a time, within an hour."""
    by_user: dict[int, list[tuple[int, int, dict]]] = {}
    for seq, (event, watermark) in enumerate(oracle.with_watermarks(oracle.read_events(str(events_file)))):
        if event["ts"] > watermark:
            by_user.setdefault(event["user_id"], []).append((event["ts"], seq, event))
    expected: Counter = Counter()
    for rows in by_user.values():
        events = [e for _, _, e in sorted(rows, key=lambda r: (r[0], r[1]))]
        i = 0
        while i + 2 < len(events):
            a, b, c = events[i : i + 3]
            if (
                (a["behavior"], b["behavior"], c["behavior"]) == ("pv", "cart", "buy")
                and a["item_id"] == b["item_id"] == c["item_id"]
                and c["ts"] - a["ts"] < oracle.HOUR_MS
            ):
                expected[(a["user_id"], a["item_id"], a["ts"], c["ts"])] += 1
                i += 3
            else:
                i += 1
    return expected


def test_funnel_matches_oracle(shop_events):
    rows = materialize(_engine(shop_events, "5000").collect(FUNNEL))
    got = Counter({(u, i, _ms(a), _ms(c)): n for (u, i, a, c), n in rows.items()})
    expected = _funnel_oracle(shop_events)
    assert expected, "the generated data should hold some funnels"
    assert got == expected


def _ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


def test_batch_sizes_agree(shop_events, tmp_path):
    head = tmp_path / "head.jsonl"
    head.write_text("".join(shop_events.read_text().splitlines(keepends=True)[:800]))
    results = [materialize(_engine(head, size).collect(BROWSING)) for size in ("1", "7", "-1")]
    assert results[0], "the generated data should hold some browsing runs"
    assert results[0] == results[1] == results[2]
