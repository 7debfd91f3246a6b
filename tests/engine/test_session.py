"""Session windows (the SESSION window TVF and legacy GROUP BY SESSION) against a batch oracle:
ksqlDB's `WINDOW SESSION (300 SECONDS)` of seed 002 written in Flink SQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from tests import oracle
from tests.engine.conftest import SOURCE_DDL
from tests.flink_oracle import materialize, run_flink

GAP = 5 * 60_000

LEGACY = """
SELECT user_id, DATE_FORMAT(SESSION_START(ts, INTERVAL '5' MINUTE), 'yyyy-MM-dd HH:mm:ss.SSS'),
       DATE_FORMAT(SESSION_END(ts, INTERVAL '5' MINUTE), 'yyyy-MM-dd HH:mm:ss.SSS'),
       COUNT(*) AS hits, SUM(item_id) AS s
FROM user_behavior GROUP BY user_id, SESSION(ts, INTERVAL '5' MINUTE)"""

TVF = """
SELECT user_id, DATE_FORMAT(window_start, 'yyyy-MM-dd HH:mm:ss.SSS'),
       DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss.SSS'), COUNT(*) AS hits, SUM(item_id) AS s
FROM TABLE(SESSION(TABLE user_behavior PARTITION BY user_id, DESCRIPTOR(ts),
                   INTERVAL '5' MINUTES))
GROUP BY user_id, window_start, window_end"""


def _fmt(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def expected_sessions(events_file) -> Counter:
    """Record by record: a session is closed once the watermark reaches its end; a row joins
    (and merges) the open sessions of its user its gap window touches; a row touching none
    whose own window has ended is late."""
    open_sessions: dict[int, list[list[dict]]] = {}
    out = Counter()

    def end_of(rows: list[dict]) -> int:
        return max(r["ts"] for r in rows) + GAP

    def emit(user: int, rows: list[dict]) -> None:
        out[
            (
                user,
                _fmt(min(r["ts"] for r in rows)),
                _fmt(end_of(rows)),
                len(rows),
                sum(r["item_id"] for r in rows),
            )
        ] += 1

    for event, watermark in oracle.with_watermarks(oracle.read_events(events_file)):
        user, t = event["user_id"], event["ts"]
        sessions = open_sessions.setdefault(user, [])
        for rows in [r for r in sessions if end_of(r) - 1 <= watermark]:
            sessions.remove(rows)
            emit(user, rows)
        touching = [r for r in sessions if t <= end_of(r) and t + GAP >= min(x["ts"] for x in r)]
        if not touching:
            if t + GAP - 1 <= watermark:
                continue
            sessions.append([event])
            continue
        merged = [event] + [x for r in touching for x in r]
        for r in touching:
            sessions.remove(r)
        sessions.append(merged)
    for user, sessions in open_sessions.items():
        for rows in sessions:
            emit(user, rows)
    return out


def _engine(events_file, batch="100000") -> Engine:
    engine = Engine(Settings({"table.exec.mini-batch.size": batch}))
    engine.execute_script(SOURCE_DDL.format(path=events_file))
    return engine


@pytest.mark.parametrize("query", [LEGACY, TVF], ids=["legacy", "tvf"])
def test_sessions_match_oracle(events_file, query):
    changes = _engine(events_file, "4000").collect(query)
    assert {kind for kind, _ in changes} == {"+I"}
    assert materialize(changes) == expected_sessions(events_file)


def test_batch_sizes_agree(events_file):
    results = [materialize(_engine(events_file, size).collect(LEGACY)) for size in ("613", "-1")]
    assert results[0] == results[1]


@pytest.mark.flink
@pytest.mark.integration
def test_same_as_flink(tmp_path):
    from clickstream.simulate.tianchi import TianchiConfig, write_jsonl

    path = tmp_path / "events.jsonl"
    write_jsonl(str(path), TianchiConfig(events=1500, users=40, days=0.3, seed=9))
    ddl = SOURCE_DDL.format(path=path).strip().rstrip(";").replace("proctime AS PROCTIME(),", "")
    flink = run_flink([ddl], {"legacy": LEGACY, "tvf": TVF})
    engine = _engine(path, "300")
    assert materialize(engine.collect(LEGACY)) == materialize(flink["legacy"])
    assert materialize(engine.collect(TVF)) == materialize(flink["tvf"])


def test_late_event_bridges_two_sessions(tmp_path):
    path = tmp_path / "bridge.jsonl"
    minute = 60_000
    rows = [(1, 0), (1, 8 * minute), (1, 4 * minute), (1, 60 * minute)]  # (user, ms after 00:00)
    path.write_text(
        "".join(
            f'{{"user_id": "{u}", "item_id": "1", "category_id": "1", "behavior": "pv", '
            f'"ts": "2024-01-01T{t // (60 * minute):02d}:{t // minute % 60:02d}:00Z"}}\n'
            for u, t in rows
        )
    )
    ddl = SOURCE_DDL.format(path=path).replace("INTERVAL '5' SECOND", "INTERVAL '10' MINUTE")
    engine = Engine()
    engine.execute_script(ddl)
    got = materialize(engine.collect(LEGACY))
    assert got == Counter(
        {
            (1, "2024-01-01 00:00:00.000", "2024-01-01 00:13:00.000", 3, 3): 1,  # bridged
            (1, "2024-01-01 01:00:00.000", "2024-01-01 01:05:00.000", 1, 1): 1,
        }
    )
