"""`table.exec.state.ttl` bounds an unbounded GROUP BY's state, as Flink's state TTL does: a key
not written for the TTL (processing time: the job's clock, moved by hand here) loses its
accumulators, and its next row starts a fresh result (+I, the old one is not retracted)."""

from __future__ import annotations

import io
from collections import Counter

import orjson
import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.runtime.clock import ManualClock
from tests.flink_oracle import materialize

ROWS, KEYS, BATCH = 300, 10, 50

QUERY = "SELECT k, COUNT(*) AS n, COUNT(DISTINCT v) AS dv FROM events GROUP BY k"


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    path = tmp_path_factory.mktemp("ttl") / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"k": i % KEYS, "v": i % 7}) + b"\n" for i in range(ROWS)))
    return path


def _engine(path, ttl: str, clock: ManualClock | None = None) -> Engine:
    settings = Settings({"table.exec.mini-batch.size": str(BATCH)})
    engine = Engine(settings, out=io.StringIO(), clock=clock or ManualClock())
    engine.execute_script(
        f"SET 'table.exec.state.ttl' = '{ttl}';"
        f"CREATE TABLE events (k INT, v INT) WITH ('connector' = 'filesystem', 'path' = '{path}', "
        "'format' = 'json');"
    )
    return engine


def test_without_ttl_one_result_per_key(events) -> None:
    result = materialize(_engine(events, "0 ms").collect(QUERY))
    assert result == Counter({(k, ROWS // KEYS, 7): 1 for k in range(KEYS)})


def test_expired_keys_start_afresh(events) -> None:
    clock = ManualClock()
    engine = _engine(events, "1 ms", clock)
    sizes: list[int] = []

    def after_batch(job) -> None:
        sizes.append(job.metrics()["collect"]["state_rows"])
        clock.advance(5)  # every key is now idle for longer than the TTL

    engine.on_batch = after_batch
    changes = engine.collect(QUERY)
    # each batch starts from empty state: only inserts, one per key and batch, never retracted
    assert {kind for kind, _ in changes} == {"+I"}
    counts = Counter(row[0] for _, row in changes)
    assert counts == Counter({k: ROWS // BATCH for k in range(KEYS)})
    assert all(row[1] == BATCH // KEYS for _, row in changes)
    assert sum(row[1] for _, row in changes) == ROWS  # nothing lost: every row counted once
    assert max(sizes) <= KEYS


def test_a_long_ttl_changes_nothing(events) -> None:
    assert materialize(_engine(events, "1 h").collect(QUERY)) == materialize(
        _engine(events, "0 ms").collect(QUERY)
    )


NESTED = "SELECT n, COUNT(*) AS keys FROM (SELECT k, COUNT(*) AS n FROM events GROUP BY k) GROUP BY n"


def test_ttl_over_an_updating_input(events) -> None:
    # The outer GROUP BY takes the inner one's -U/+U; with a long TTL nothing changes.
    assert materialize(_engine(events, "1 h").collect(NESTED)) == Counter({(ROWS // KEYS, KEYS): 1})
    clock = ManualClock()
    engine = _engine(events, "1 ms", clock)
    sizes: list[int] = []

    def after_batch(job) -> None:
        sizes.append(job.metrics()["collect"]["state_rows"])
        clock.advance(5)

    engine.on_batch = after_batch
    changes = engine.collect(NESTED)
    # Every batch starts from empty state in both aggregates: the inner one inserts a count of
    # 5 for each key, the outer one counts those 10 inserts afresh.
    assert {kind for kind, _ in changes} <= {"+I", "+U", "-U"}
    assert max(sizes) <= KEYS + 1
    assert materialize(changes) == Counter({(BATCH // KEYS, KEYS): ROWS // BATCH})
