"""Batch oracles: the seed's questions answered in one plain-Python pass over all events.

They follow the engine's documented semantics: a record's watermark is the maximum over earlier
records of `ts - 5 s`; a window row is late when the last window containing it has ended at or
before that watermark (end - 1 <= watermark); late rows are dropped by windows but not by
unbounded aggregations.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

import orjson

DELAY_MS = 5_000
HOUR_MS = 3_600_000


def read_events(path: str) -> list[dict]:
    """Valid events in file order; ts as epoch ms. Malformed lines are skipped."""
    events = []
    with open(path, "rb") as lines:
        for line in lines:
            try:
                record = orjson.loads(line)
                ts = datetime.fromisoformat(record["ts"].replace("Z", "+00:00"))
                events.append(
                    {
                        "user_id": int(record["user_id"]),
                        "item_id": int(record["item_id"]),
                        "category_id": int(record["category_id"]),
                        "behavior": record["behavior"],
                        "ts": int(ts.timestamp() * 1000),
                    }
                )
            except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
                continue
    return events


def with_watermarks(events: list[dict]) -> list[tuple[dict, int]]:
    out, watermark = [], -(2**63)
    for event in events:
        out.append((event, watermark))
        watermark = max(watermark, event["ts"] - DELAY_MS)
    return out


def windows_of(ts: int, kind: str, size: int, slide: int) -> list[tuple[int, int]]:
    if kind == "TUMBLE":
        start = ts - ts % size
        return [(start, start + size)]
    if kind == "HOP":
        windows, start = [], ts - ts % slide
        while start + size > ts:
            windows.append((start, start + size))
            start -= slide
        return windows
    start = ts - ts % size  # CUMULATE: step = slide
    first_end = ts - ts % slide + slide
    return [(start, end) for end in range(first_end, start + size + 1, slide)]


def window_counts(events, kind="TUMBLE", size=HOUR_MS, slide=HOUR_MS, where=None, distinct=None):
    """{(window_start_ms, window_end_ms): count or distinct count}, late rows dropped."""
    groups: dict[tuple[int, int], object] = defaultdict(set) if distinct else Counter()
    late = 0
    for event, watermark in with_watermarks(events):
        windows = windows_of(event["ts"], kind, size, slide)
        last_end = max(end for _, end in windows)
        if where is not None and not where(event):
            continue
        if last_end - 1 <= watermark:
            late += 1
            continue
        for window in windows:
            if window[1] - 1 <= watermark:
                continue  # this window fired before the row arrived
            if distinct:
                groups[window].add(event[distinct])
            else:
                groups[window] += 1
    result = {w: (len(v) if distinct else v) for w, v in groups.items()}
    return result, late


def cumulative_uv(events) -> dict[tuple[str, str], int]:
    """The seed's cumulative UV as its upsert sink ends up: per (date, MAX(time_str)), the distinct
    users of that date after the last record processed while that was the maximum."""
    users: dict[str, set] = defaultdict(set)
    max_time: dict[str, str] = {}
    rows: dict[tuple[str, str], int] = {}
    for event in events:
        ts = datetime.fromtimestamp(event["ts"] / 1000, tz=UTC)
        date, time = ts.strftime("%Y-%m-%d"), ts.strftime("%H:%M")[:4] + "0"
        users[date].add(event["user_id"])
        max_time[date] = max(max_time.get(date, time), time)
        rows[(date, max_time[date])] = len(users[date])
    return rows


def cumulative_uv_ceilings(events) -> dict[tuple[str, str], int]:
    """For input read from several partitions, whose interleaving decides the intermediate points
    of `cumulative_uv`: per (date, time) that occurs, the distinct users of that date up to that
    time. A point (date, time) the sink holds was the maximum while only records up to that time
    had been read, so its uv is at most this; the last point of each date, once every record of
    the date is in, is exactly this (all the date's users)."""
    users_up_to: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for event in events:
        ts = datetime.fromtimestamp(event["ts"] / 1000, tz=UTC)
        users_up_to[ts.strftime("%Y-%m-%d")][ts.strftime("%H:%M")[:4] + "0"].add(event["user_id"])
    ceilings = {}
    for date, by_time in users_up_to.items():
        seen: set = set()
        for time in sorted(by_time):
            seen |= by_time[time]
            ceilings[(date, time)] = len(seen)
    return ceilings


def top_category(events, categories: dict[int, str]) -> dict[str | None, int]:
    counts: Counter = Counter()
    for event in events:
        if event["behavior"] == "buy":
            counts[categories.get(event["category_id"])] += 1
    return dict(counts)


def hour_of(ms: int) -> int:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).hour


def date_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")
