"""The PyFlink oracle itself, checked against plain Python on a small deterministic clickstream.

One JVM run (module-scoped fixture) serves every test here: about 25-35 s in all.
Without PyFlink the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import collections
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from . import Changelog, materialize, run_flink

pytestmark = [pytest.mark.flink, pytest.mark.integration]

START = datetime(2017, 11, 26, 22, 30, tzinfo=UTC)  # 3 hours across midnight: two days
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# The seed's user_behavior table (000_da2bfbb3177ff7d4), read from a json file instead of Pulsar.
USER_BEHAVIOR = """
CREATE TABLE user_behavior (
    user_id BIGINT,
    item_id BIGINT,
    category_id BIGINT,
    behavior STRING,
    ts TIMESTAMP_LTZ(3),
    proctime AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '{path}',
    'format' = 'json',
    'json.timestamp-format.standard' = 'ISO-8601'
)
"""

LATE = """
CREATE TABLE late_events (k STRING, ts TIMESTAMP_LTZ(3), WATERMARK FOR ts AS ts) WITH (
    'connector' = 'filesystem', 'path' = '{path}', 'format' = 'json',
    'json.timestamp-format.standard' = 'ISO-8601'
)
"""

QUERIES = {
    # seed: hourly trading volume (legacy group window)
    "buy_cnt_per_hour": """
        SELECT HOUR(TUMBLE_START(ts, INTERVAL '1' HOUR)) AS hour_of_day,
               TUMBLE_START(ts, INTERVAL '1' HOUR) AS window_start, COUNT(*) AS buy_cnt
        FROM user_behavior
        WHERE behavior = 'buy'
        GROUP BY TUMBLE(ts, INTERVAL '1' HOUR)""",
    "buy_cnt_tvf": """
        SELECT window_start, window_end, window_time, COUNT(*) AS buy_cnt
        FROM TABLE(TUMBLE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '1' HOUR))
        WHERE behavior = 'buy'
        GROUP BY window_start, window_end, window_time""",
    "events_hop": """
        SELECT window_start, window_end, COUNT(*) AS cnt
        FROM TABLE(HOP(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '30' MINUTE,
                       INTERVAL '1' HOUR))
        GROUP BY window_start, window_end""",
    "uv_cumulate": """
        SELECT window_start, window_end, COUNT(DISTINCT user_id) AS uv
        FROM TABLE(CUMULATE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '1' HOUR,
                            INTERVAL '1' DAY))
        GROUP BY window_start, window_end""",
    # seed: cumulative unique visitors (unbounded GROUP BY, an updating result)
    "cumulative_uv": """
        SELECT date_str, MAX(time_str), COUNT(DISTINCT user_id) AS uv
        FROM (
          SELECT
            DATE_FORMAT(ts, 'yyyy-MM-dd') AS date_str,
            SUBSTR(DATE_FORMAT(ts, 'HH:mm'), 1, 4) || '0' AS time_str,
            user_id
          FROM user_behavior)
        GROUP BY date_str""",
    "late_tumble": """
        SELECT window_start, COUNT(*) AS cnt, LISTAGG(k) AS ks
        FROM TABLE(TUMBLE(TABLE late_events, DESCRIPTOR(ts), INTERVAL '1' HOUR))
        GROUP BY window_start, window_end""",
    "late_watermarks": "SELECT k, ts, CURRENT_WATERMARK(ts) AS wm FROM late_events",
}


def make_events(n: int = 400, seed: int = 20171126) -> list[dict[str, Any]]:
    """``n`` events over about 3 hours; 20% are 1-4 s behind the newest one (never late)."""
    rng = random.Random(seed)
    mean_gap = max(1, int(3 * 3600 / (0.8 * n)))
    newest = START
    events = []
    for _ in range(n):
        if rng.random() < 0.2:
            ts = newest - timedelta(seconds=rng.randint(1, 4))  # out of order, within 5 s
        else:
            newest += timedelta(seconds=rng.randint(1, max(1, 2 * mean_gap - 1)))
            ts = newest
        events.append(
            {
                "user_id": str(rng.randint(1, 60)),  # ids as JSON strings, as in the seed
                "item_id": str(rng.randint(1000, 1100)),
                "category_id": str(rng.randint(1, 8)),
                "behavior": rng.choices(["pv", "cart", "fav", "buy"], [7, 1, 1, 1])[0],
                "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return events


def _write_json_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _ts(event: dict[str, Any]) -> datetime:
    return datetime.strptime(event["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _fmt(t: datetime) -> str:
    return str(t.replace(tzinfo=None))  # the oracle's timestamp format


def _floor(t: datetime, size: timedelta) -> datetime:
    return START.replace(hour=0, minute=0) + (t - START.replace(hour=0, minute=0)) // size * size


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return make_events()


@pytest.fixture(scope="module")
def flink(tmp_path_factory: pytest.TempPathFactory, events: list[dict[str, Any]]) -> dict[str, Changelog]:
    tmp = tmp_path_factory.mktemp("flink_oracle")
    _write_json_lines(tmp / "user_behavior.json", events)
    _write_json_lines(
        tmp / "late.json",
        [
            {"k": "a", "ts": "2017-11-26T00:59:59.900Z"},
            {"k": "b", "ts": "2017-11-26T01:00:00.050Z"},  # watermark 01:00:00.050: [00h, 01h) fires
            {"k": "late", "ts": "2017-11-26T00:59:59.950Z"},  # only 100 ms behind, still late
        ],
    )
    setup = [
        USER_BEHAVIOR.format(path=tmp / "user_behavior.json"),
        LATE.format(path=tmp / "late.json"),
    ]
    return run_flink(setup, QUERIES)


def _inserts_only(changelog: Changelog) -> collections.Counter[tuple[Any, ...]]:
    assert {kind for kind, _ in changelog} == {"+I"}, "a window aggregate only inserts"
    return materialize(changelog)


def test_events_are_out_of_order_but_never_late(events: list[dict[str, Any]]) -> None:
    times = [_ts(e) for e in events]
    assert sum(t < max(times[:i], default=t) for i, t in enumerate(times)) > 50
    newest = times[0]
    for t in times:
        assert t > newest - timedelta(seconds=5)
        newest = max(newest, t)
    assert times[-1] - times[0] > timedelta(hours=2, minutes=50)


def test_hourly_buy_count_legacy_tumble(flink: dict[str, Changelog], events: list[dict[str, Any]]) -> None:
    per_hour = collections.Counter(_floor(_ts(e), HOUR) for e in events if e["behavior"] == "buy")
    expected = collections.Counter({(h.hour, _fmt(h), n): 1 for h, n in per_hour.items()})
    assert len(expected) == 4  # 22h (from 22:30), 23h, 00h and the last, partial 01h window
    assert _inserts_only(flink["buy_cnt_per_hour"]) == expected


def test_hourly_buy_count_tumble_tvf(flink: dict[str, Changelog], events: list[dict[str, Any]]) -> None:
    per_hour = collections.Counter(_floor(_ts(e), HOUR) for e in events if e["behavior"] == "buy")
    expected = collections.Counter(
        {
            (_fmt(h), _fmt(h + HOUR), _fmt(h + HOUR - timedelta(milliseconds=1)), n): 1
            for h, n in per_hour.items()
        }
    )
    assert _inserts_only(flink["buy_cnt_tvf"]) == expected


def test_hop_counts(flink: dict[str, Changelog], events: list[dict[str, Any]]) -> None:
    slide = timedelta(minutes=30)
    counts: collections.Counter[datetime] = collections.Counter()
    for e in events:
        last_start = _floor(_ts(e), slide)
        counts.update([last_start, last_start - slide])  # each event is in two 1 h windows
    expected = collections.Counter({(_fmt(s), _fmt(s + HOUR), n): 1 for s, n in counts.items()})
    assert _inserts_only(flink["events_hop"]) == expected


def test_cumulate_unique_visitors(flink: dict[str, Changelog], events: list[dict[str, Any]]) -> None:
    step = HOUR
    expected: collections.Counter[tuple[Any, ...]] = collections.Counter()
    for day in sorted({_floor(_ts(e), DAY) for e in events}):
        day_events = [e for e in events if _floor(_ts(e), DAY) == day]
        end = _floor(min(_ts(e) for e in day_events), step) + step
        while end <= day + DAY:  # every step from the first with data to the end of the day
            users = {e["user_id"] for e in day_events if _ts(e) < end}
            expected[(_fmt(day), _fmt(end), len(users))] += 1
            end += step
    assert _inserts_only(flink["uv_cumulate"]) == expected


def test_cumulative_uv_count_distinct_per_day(
    flink: dict[str, Changelog], events: list[dict[str, Any]]
) -> None:
    users: dict[str, set[int]] = collections.defaultdict(set)
    last_time: dict[str, str] = {}
    for e in events:
        t = _ts(e)
        date_str = t.strftime("%Y-%m-%d")
        users[date_str].add(int(e["user_id"]))
        last_time[date_str] = max(last_time.get(date_str, ""), t.strftime("%H:%M")[:4] + "0")
    expected = collections.Counter({(d, last_time[d], len(u)): 1 for d, u in users.items()})
    changelog = flink["cumulative_uv"]
    assert materialize(changelog) == expected
    kinds = collections.Counter(kind for kind, _ in changelog)
    assert kinds["+I"] == len(expected)  # one insert per day, then -U/+U pairs
    assert kinds["-U"] == kinds["+U"] > 0
    assert kinds["-D"] == 0


def test_late_event_is_dropped_with_per_event_watermarks(flink: dict[str, Changelog]) -> None:
    # The runner defaults to pipeline.auto-watermark-interval = 0: a watermark after each event.
    assert flink["late_watermarks"] == [
        ("+I", ("a", "2017-11-26 00:59:59.900000", None)),
        ("+I", ("b", "2017-11-26 01:00:00.050000", "2017-11-26 00:59:59.900000")),
        ("+I", ("late", "2017-11-26 00:59:59.950000", "2017-11-26 01:00:00.050000")),
    ]
    assert materialize(flink["late_tumble"]) == collections.Counter(
        {("2017-11-26 00:00:00", 1, "a"): 1, ("2017-11-26 01:00:00", 1, "b"): 1}
    )


def test_materialize_applies_retractions() -> None:
    log = [("+I", ("d", 1)), ("-U", ("d", 1)), ("+U", ("d", 2)), ("+I", ("e", 1)), ("-D", ("e", 1))]
    assert materialize(log) == collections.Counter({("d", 2): 1})
    with pytest.raises(ValueError):
        materialize([("-D", ("x",))])
