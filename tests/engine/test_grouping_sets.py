"""GROUPING SETS, ROLLUP and CUBE against a batch oracle: DuckDB answers the same question once over
the whole generated input (NULL keys, ties, out-of-order and late rows); the streaming result, at
every mini-batch size, must end in the same table."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.engine.conftest import final_rows, run_script

DELAY_S = 2
START = datetime(2024, 1, 1, tzinfo=UTC)


def _rows(count: int = 200, seed: int = 11) -> list[dict]:
    """Rows with NULL keys and values, a mostly rising time with rows out of order and late."""
    rng = random.Random(seed)
    rows, clock = [], 0.0
    for i in range(count):
        clock += rng.random() * 2
        behind = rng.choice([0, 0, 0, 1, 3, 15]) * rng.random()  # some late for their window
        ts = START + timedelta(seconds=max(clock - behind, 0))
        rows.append(
            {
                "id": rng.randrange(count // 2),  # repeated ids: the deduplicated input updates
                "region": rng.choice(["east", "west", "north", None]),
                "product": rng.choice(["apple", "pear", "fig", None]),
                "qty": rng.choice([1, 2, 3, 5, 8, None]),
                "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
                "seq": i,
            }
        )
    return rows


DDL = """
CREATE TABLE sales (id INT, region STRING, product STRING, qty INT, ts TIMESTAMP(3), seq INT,
    WATERMARK FOR ts AS ts - INTERVAL '{delay}' SECOND)
 WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json',
       'json.timestamp-format.standard' = 'ISO-8601');
"""

# The same question for both engines: ours reads `sales`, DuckDB a table of the same rows.
ROLLUP = (
    "SELECT region, product, GROUPING(region, product) AS g, COUNT(*) AS c, SUM(qty) AS s, "
    "MIN(qty) AS lo, COUNT(DISTINCT qty) AS dq FROM {source} GROUP BY ROLLUP (region, product)"
)
CUBE_OF_LATEST = (
    "SELECT region, product, GROUPING(product) AS gp, COUNT(*) AS c, MAX(qty) AS hi "
    "FROM {source} GROUP BY CUBE (region, product) HAVING COUNT(*) > 1"
)
LATEST = (
    "(SELECT id, region, product, qty FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY id "
    "ORDER BY ts DESC) AS rn FROM sales) WHERE rn = 1)"
)
WINDOWED = (
    "SELECT window_start, region, GROUPING(region) AS g, COUNT(*) AS c, SUM(qty) AS s "
    "FROM {source} GROUP BY window_start, window_end, GROUPING SETS ((region), ())"
)


def _oracle(rows: list[dict], query: str) -> Counter:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE sales (id INT, region VARCHAR, product VARCHAR, qty INT, ts TIMESTAMP, "
        "seq INT, late BOOLEAN)"
    )
    watermark = None
    for row in rows:
        ts = datetime.fromisoformat(row["ts"])
        end = ts.replace(second=ts.second - ts.second % 10, microsecond=0) + timedelta(seconds=10)
        late = watermark is not None and end - timedelta(milliseconds=1) <= watermark
        con.execute(
            "INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?, ?)",
            [row["id"], row["region"], row["product"], row["qty"], ts, row["seq"], late],
        )
        candidate = ts - timedelta(seconds=DELAY_S)
        watermark = candidate if watermark is None else max(watermark, candidate)
    result = Counter()
    for values in con.execute(query).fetchall():
        result[tuple(str(v) if isinstance(v, datetime) else v for v in values)] += 1
    return result


def _ours(path: Path, query: str, batch_size: str) -> Counter:
    engine = run_script(DDL.format(path=path, delay=DELAY_S), **{"table.exec.mini-batch.size": batch_size})
    result = Counter()
    for values, count in final_rows(engine, query).items():
        result[tuple(str(v) if isinstance(v, datetime) else v for v in values)] += count
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, list[dict]]:
    rows = _rows()
    path = tmp_path_factory.mktemp("grouping") / "sales.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


LATEST_ORACLE = (
    "(SELECT id, region, product, qty FROM sales "
    "QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts DESC, seq DESC) = 1)"
)
TUMBLE = "TABLE(TUMBLE(TABLE sales, DESCRIPTOR(ts), INTERVAL '10' SECOND))"
TUMBLE_ORACLE = "(SELECT *, time_bucket(INTERVAL 10 SECOND, ts) AS window_start FROM sales WHERE NOT late)"
CASES = {
    "rollup": (ROLLUP.format(source="sales"), ROLLUP.format(source="sales")),
    "cube_of_latest": (CUBE_OF_LATEST.format(source=LATEST), CUBE_OF_LATEST.format(source=LATEST_ORACLE)),
    "tumble_sets": (
        WINDOWED.format(source=TUMBLE),
        WINDOWED.replace("window_start, window_end,", "window_start,").format(source=TUMBLE_ORACLE),
    ),
}


@pytest.mark.parametrize("batch_size", ["1", "7", "1000", "-1"])
@pytest.mark.parametrize("name", list(CASES))
def test_grouping_sets_match_duckdb(data, name: str, batch_size: str) -> None:
    path, rows = data
    ours, oracle = CASES[name]
    expected = _oracle(rows, oracle)
    assert expected  # the question has an answer
    assert _ours(path, ours, batch_size) == expected


def test_the_data_has_late_and_out_of_order_rows(data) -> None:
    _, rows = data
    (late,) = _oracle(rows, "SELECT count(*) FROM sales WHERE late")
    assert late[0] > 0
    assert any(b["ts"] < a["ts"] for a, b in zip(rows, rows[1:], strict=False))
