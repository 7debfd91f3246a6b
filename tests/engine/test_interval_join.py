"""Interval joins (seed 004: each checkout with the clicks of the same user and product in the
hour before it) against a batch oracle, across batch sizes, and against PyFlink."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.errors import UnsupportedFeatureError
from tests.flink_oracle import materialize, run_flink

HOUR = 3_600_000
BASE = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)

DDL = """
CREATE TABLE clicks (click_id BIGINT, user_id BIGINT, product_id BIGINT, ts TIMESTAMP_LTZ(3),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
 WITH ('connector' = 'filesystem', 'path' = '{clicks}', 'format' = 'json',
       'json.timestamp-format.standard' = 'ISO-8601');
CREATE TABLE checkouts (checkout_id BIGINT, user_id BIGINT, product_id BIGINT, amount DOUBLE,
    ts TIMESTAMP_LTZ(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
 WITH ('connector' = 'filesystem', 'path' = '{checkouts}', 'format' = 'json',
       'json.timestamp-format.standard' = 'ISO-8601');
"""

ATTRIBUTION = """
SELECT co.checkout_id, cl.click_id, co.amount
FROM checkouts AS co {join} JOIN clicks AS cl
  ON co.user_id = cl.user_id AND co.product_id = cl.product_id
  AND co.ts BETWEEN cl.ts AND cl.ts + INTERVAL '1' HOUR"""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    rng = random.Random(4)
    folder = tmp_path_factory.mktemp("ij")
    clicks = [
        {
            "click_id": i,
            "user_id": rng.randint(1, 40),
            "product_id": rng.randint(1, 15),
            "ts": BASE + i * 2_000 - rng.randint(0, 3_000),
        }
        for i in range(2_500)
    ]
    checkouts = [
        {
            "checkout_id": j,
            "user_id": rng.randint(1, 40),
            "product_id": rng.randint(1, 15),
            "amount": rng.randint(100, 9_999) / 100,
            "ts": BASE + j * 14_000 - rng.randint(0, 3_000),
        }
        for j in range(350)
    ]
    for name, rows in (("clicks", clicks), ("checkouts", checkouts)):
        with open(folder / f"{name}.jsonl", "wb") as out:
            for row in rows:
                out.write(orjson.dumps({**row, "ts": _iso(row["ts"])}) + b"\n")
    return folder, clicks, checkouts


def _engine(folder, batch: str = "100000") -> Engine:
    engine = Engine(Settings({"table.exec.mini-batch.size": batch}))
    engine.execute_script(DDL.format(clicks=folder / "clicks.jsonl", checkouts=folder / "checkouts.jsonl"))
    return engine


def _expected(clicks, checkouts, outer: bool) -> Counter:
    rows = Counter()
    for co in checkouts:
        matched = [
            cl
            for cl in clicks
            if cl["user_id"] == co["user_id"]
            and cl["product_id"] == co["product_id"]
            and cl["ts"] <= co["ts"] <= cl["ts"] + HOUR
        ]
        for cl in matched:
            rows[(co["checkout_id"], cl["click_id"], co["amount"])] += 1
        if outer and not matched:
            rows[(co["checkout_id"], None, co["amount"])] += 1
    return rows


@pytest.mark.parametrize("join", ["", "LEFT"])
def test_interval_join_matches_oracle(streams, join):
    folder, clicks, checkouts = streams
    changes = _engine(folder, "700").collect(ATTRIBUTION.format(join=join))
    assert {kind for kind, _ in changes} == {"+I"}  # an interval join only appends
    expected = _expected(clicks, checkouts, outer=join == "LEFT")
    assert materialize(changes) == expected
    assert any(row[1] is None for row in expected) == (join == "LEFT")


def test_batch_sizes_agree(streams):
    folder, _, _ = streams
    results = [
        materialize(_engine(folder, size).collect(ATTRIBUTION.format(join="LEFT")))
        for size in ("1000", "37", "-1")
    ]
    assert results[0] == results[1] == results[2]


def test_state_is_bounded_by_the_interval(streams):
    folder, clicks, checkouts = streams
    engine = _engine(folder, "200")
    sizes: list[int] = []
    engine.on_batch = lambda job: sizes.append(job.metrics()["insert-into_sink_t"]["state_rows"])
    engine.execute_script(
        "CREATE TABLE sink_t (a BIGINT, b BIGINT, c DOUBLE) "
        "WITH ('connector' = 'blackhole');"
        "INSERT INTO sink_t " + ATTRIBUTION.format(join="")
    )
    # an hour of clicks is ~1800 rows: older ones can match no future checkout and are dropped
    assert 1_000 < max(sizes) < 2_300 < len(clicks) + len(checkouts)
    assert sizes[-1] == 0  # the final watermark expires everything


COMMA_ATTRIBUTION = """
SELECT co.checkout_id, cl.click_id, co.amount
FROM checkouts co, clicks cl
WHERE co.user_id = cl.user_id AND co.product_id = cl.product_id AND co.amount > 10
  AND co.ts BETWEEN cl.ts AND cl.ts + INTERVAL '1' HOUR"""


def test_comma_join_takes_its_condition_from_where(streams):
    """`FROM a, b WHERE ...`, as Flink's documentation writes interval joins: the same rows as the
    join with that condition in ON."""
    folder, clicks, checkouts = streams
    changes = _engine(folder, "700").collect(COMMA_ATTRIBUTION)
    expected = _expected(clicks, [co for co in checkouts if co["amount"] > 10], outer=False)
    assert materialize(changes) == expected and len(expected) > 100


def test_comma_join_without_a_qualified_condition_is_refused(streams):
    folder, _, _ = streams
    with pytest.raises(UnsupportedFeatureError, match="without ON"):
        _engine(folder).collect("SELECT * FROM checkouts co, clicks cl WHERE amount > 1")


def test_join_without_keys_or_bounds_is_refused(streams):
    folder, _, _ = streams
    with pytest.raises(UnsupportedFeatureError, match="equality"):
        _engine(folder).collect("SELECT * FROM checkouts co JOIN clicks cl ON co.amount > cl.click_id")


@pytest.mark.flink
@pytest.mark.integration
def test_same_as_flink(streams):
    folder, _, _ = streams
    ddl = DDL.format(clicks=folder / "clicks.jsonl", checkouts=folder / "checkouts.jsonl")
    statements = [s.strip() for s in ddl.split(";") if s.strip()]
    queries = {j or "INNER": ATTRIBUTION.format(join=j) for j in ("", "LEFT")}
    flink = run_flink(statements, queries)
    engine = _engine(folder, "500")
    for name, query in queries.items():
        assert materialize(engine.collect(query)) == materialize(flink[name]), name
