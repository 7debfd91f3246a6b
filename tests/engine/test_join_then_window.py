"""A window downstream of a temporal join and of an interval join, at several batch sizes.

Expected rows were recorded from PyFlink 2.3 on the same input (tests/flink_oracle, run_flink_json).
The joins' rows reach the window before the watermark that released them, as in Flink, so the
window takes none of them for late (before, it kept one window of three after a temporal join).
"""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest

from clickstream.engine import Engine
from tests.engine.conftest import final_rows

ORDERS = [{"oid": i, "u": i % 3, "amount": i * 10, "ts": f"2020-01-01 00:{2 * i:02d}:00"} for i in range(15)]
LEVELS = sorted(
    (
        {"u": u, "level": level, "ts": f"2020-01-01 00:{minute:02d}:00"}
        for u in range(3)
        for level, minute in ((f"L{u}a", 0), (f"L{u}b", 11 + u))
    ),
    key=lambda row: row["ts"],
)
CLICKS = [{"cu": i % 3, "ts": f"2020-01-01 00:{2 * i + 1:02d}:00"} for i in range(15)]
WATERMARK = "ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND"
VIEWS = (
    "CREATE VIEW enriched AS SELECT o.oid, o.amount, o.ts, l.level FROM orders o "
    "JOIN levels FOR SYSTEM_TIME AS OF o.ts AS l ON o.u = l.u;"
    "CREATE VIEW attributed AS SELECT o.oid, o.amount, o.ts FROM orders o JOIN clicks c "
    "ON o.u = c.cu AND c.ts BETWEEN o.ts - INTERVAL '5' MINUTE AND o.ts;"
)


@pytest.fixture(params=["1", "4", "-1"], ids=lambda size: f"batch{size}")
def engine(tmp_path, request) -> Engine:
    tables = {
        "orders": ("oid INT, u INT, amount INT", ORDERS),
        "levels": ("u INT, level STRING", LEVELS),
        "clicks": ("cu INT", CLICKS),
    }
    script = f"SET 'table.exec.mini-batch.size' = '{request.param}';"
    for name, (columns, rows) in tables.items():
        path = tmp_path / f"{name}.json"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        key = ", PRIMARY KEY (u) NOT ENFORCED" if name == "levels" else ""
        script += (
            f"CREATE TABLE {name} ({columns}, {WATERMARK}{key}) "
            f"WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json');"
        )
    engine = Engine(out=io.StringIO())
    engine.execute_script(script + VIEWS)
    return engine


def test_tumble_after_a_temporal_join(engine):
    rows = final_rows(
        engine,
        "SELECT window_start, level, COUNT(*), SUM(amount) FROM TABLE(TUMBLE(TABLE enriched, "
        "DESCRIPTOR(ts), INTERVAL '10' MINUTES)) GROUP BY window_start, window_end, level",
        text=True,
    )
    flink = [
        ("00:00", "L0a", 2, 30), ("00:00", "L1a", 2, 50), ("00:00", "L2a", 1, 20),
        ("00:10", "L0b", 2, 150), ("00:10", "L1b", 1, 70), ("00:10", "L2a", 1, 50), ("00:10", "L2b", 1, 80),
        ("00:20", "L0b", 1, 120), ("00:20", "L1b", 2, 230), ("00:20", "L2b", 2, 250),
    ]  # fmt: skip
    assert rows == Counter((f"2020-01-01 {t}:00", lvl, str(n), str(s)) for t, lvl, n, s in flink)


def test_tumble_after_an_interval_join(engine):
    rows = final_rows(
        engine,
        "SELECT window_start, COUNT(*), SUM(amount) FROM TABLE(TUMBLE(TABLE attributed, "
        "DESCRIPTOR(ts), INTERVAL '10' MINUTES)) GROUP BY window_start, window_end",
        text=True,
    )
    flink = [("00:00", 2, 70), ("00:10", 5, 350), ("00:20", 5, 600)]
    assert rows == Counter((f"2020-01-01 {t}:00", str(n), str(s)) for t, n, s in flink)
