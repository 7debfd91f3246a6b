"""Window aggregations (legacy group windows and window TVFs) against the batch oracle."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests import oracle
from tests.engine.conftest import SOURCE_DDL, run_script, sqlite_rows, sqlite_sink

HOUR = oracle.HOUR_MS
MINUTE = 60_000


def _ms(value: str) -> int:
    return int(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() * 1000)


def _run_windows(tmp_path, events_file, select: str, columns: str, **settings) -> list[tuple]:
    db = tmp_path / "w.db"
    script = (
        SOURCE_DDL.format(path=events_file)
        + f"""
    CREATE TABLE out_table ({columns}) WITH ({sqlite_sink(db, "out_table")});
    INSERT INTO out_table {select};
    """
    )
    run_script(script, **settings)
    return sqlite_rows(db, "out_table")


def _by_window(rows) -> dict[tuple[int, int], int]:
    return {(_ms(start), _ms(end)): value for start, end, value in rows}


@pytest.mark.parametrize(
    "kind,size,slide,tvf_args",
    [
        ("TUMBLE", HOUR, HOUR, "INTERVAL '1' HOUR"),
        ("HOP", HOUR, 20 * MINUTE, "INTERVAL '20' MINUTES, INTERVAL '1' HOUR"),
        ("CUMULATE", 6 * HOUR, HOUR, "INTERVAL '1' HOUR, INTERVAL '6' HOURS"),
    ],
)
def test_window_tvf_counts(tmp_path, events_file, kind, size, slide, tvf_args):
    rows = _run_windows(
        tmp_path,
        events_file,
        f"""
        SELECT CAST(window_start AS STRING), CAST(window_end AS STRING), COUNT(*)
        FROM TABLE({kind}(TABLE user_behavior, DESCRIPTOR(ts), {tvf_args}))
        WHERE behavior = 'buy'
        GROUP BY window_start, window_end""",
        "ws STRING, we STRING, cnt BIGINT",
    )
    expected, late = oracle.window_counts(
        oracle.read_events(events_file), kind, size, slide, where=lambda e: e["behavior"] == "buy"
    )
    assert _by_window(rows) == expected
    assert late > 0


def test_cumulate_unique_visitors(tmp_path, events_file):
    rows = _run_windows(
        tmp_path,
        events_file,
        """
        SELECT CAST(window_start AS STRING), CAST(window_end AS STRING),
               COUNT(DISTINCT user_id) AS uv
        FROM TABLE(CUMULATE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '10' MINUTES,
                            INTERVAL '1' DAY))
        GROUP BY window_start, window_end""",
        "ws STRING, we STRING, uv BIGINT",
    )
    expected, _ = oracle.window_counts(
        oracle.read_events(events_file), "CUMULATE", 24 * HOUR, 10 * MINUTE, distinct="user_id"
    )
    assert _by_window(rows) == expected
    assert len(expected) > 144


def test_hop_distinct_per_key(tmp_path, events_file):
    rows = _run_windows(
        tmp_path,
        events_file,
        """
        SELECT behavior, CAST(HOP_START(ts, INTERVAL '30' MINUTE, INTERVAL '2' HOUR) AS STRING),
               COUNT(DISTINCT user_id), COUNT(*), MIN(item_id), MAX(item_id), SUM(item_id),
               AVG(item_id)
        FROM user_behavior
        GROUP BY behavior, HOP(ts, INTERVAL '30' MINUTE, INTERVAL '2' HOUR)""",
        "behavior STRING, ws STRING, uv BIGINT, n BIGINT, mn BIGINT, mx BIGINT, s BIGINT, a BIGINT",
    )
    events = oracle.read_events(events_file)
    marked = oracle.with_watermarks(events)  # once: each window below scans it
    expected = {}
    for behavior in ("pv", "buy", "cart", "fav"):

        def match(e, b=behavior):
            return e["behavior"] == b

        counts, _ = oracle.window_counts(events, "HOP", 2 * HOUR, 30 * MINUTE, where=match)
        distinct, _ = oracle.window_counts(
            events, "HOP", 2 * HOUR, 30 * MINUTE, where=match, distinct="user_id"
        )
        for (start, end), n in counts.items():
            items = [e["item_id"] for e, wm in marked if match(e) and start <= e["ts"] < end and end - 1 > wm]
            expected[(behavior, start)] = (
                distinct[(start, end)],
                n,
                min(items),
                max(items),
                sum(items),
                sum(items) // len(items),
            )
    got = {(b, _ms(ws)): (uv, n, mn, mx, s, a) for b, ws, uv, n, mn, mx, s, a in rows}
    assert got == expected


def test_window_end_and_rowtime_columns(tmp_path, events_file):
    rows = _run_windows(
        tmp_path,
        events_file,
        """
        SELECT CAST(TUMBLE_START(ts, INTERVAL '1' DAY) AS STRING),
               CAST(TUMBLE_END(ts, INTERVAL '1' DAY) AS STRING),
               CAST(TUMBLE_ROWTIME(ts, INTERVAL '1' DAY) AS STRING), COUNT(*)
        FROM user_behavior GROUP BY TUMBLE(ts, INTERVAL '1' DAY)""",
        "ws STRING, we STRING, wt STRING, n BIGINT",
    )
    starts = sorted(r[0] for r in rows)
    assert starts[0].startswith("2017-11-25 00:00:00")
    for ws, we, wt, _ in rows:
        assert _ms(we) - _ms(ws) == 24 * HOUR
        assert wt.startswith(
            datetime.fromtimestamp((_ms(we) - 1) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.999")
        )
