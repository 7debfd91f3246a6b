"""CUMULATE windows merge each slice once (runtime.operators.cumulate_aggregate).

The results are Flink's (tests/conformance/cases/cumulate.json, recorded from PyFlink); here the
operator is compared with the general sliced window operator, which merges every slice of a window
at each firing, on a bigger disordered input with late rows, NULL keys and values, at several
mini-batch sizes, and its state reads are counted: each waiting partial is read once, plus one
running accumulator per key and firing, so a window of 144 steps costs what one of 12 does.
"""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.errors import UnsupportedFeatureError
from clickstream.runtime.operators import cumulate_aggregate
from clickstream.runtime.operators.cumulate_aggregate import CumulateWindowAggregateOperator

START = datetime(2024, 3, 1, tzinfo=UTC)


def _events(path: Path, count: int, span_s: int, seed: int = 3) -> Path:
    """`count` rows over `span_s` seconds, up to 20 s out of order (the watermark allows 5 s, so
    some rows are late for their first windows), users with a NULL one, values with NULLs."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        at = i * span_s / count + rng.uniform(-20, 0) * (rng.random() < 0.1)
        rows.append(
            {
                "id": i,
                "u": rng.choice(["a", "b", "c", None]),
                "item": rng.randrange(40),
                "v": None if rng.random() < 0.05 else rng.randrange(-5, 50),
                "ts": (START + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _engine(path: Path, batch_size: int | None = None) -> Engine:
    settings = {} if batch_size is None else {"table.exec.mini-batch.size": str(batch_size)}
    engine = Engine(Settings(settings), out=io.StringIO())
    engine.execute_script(
        "CREATE TABLE ev (id INT, u STRING, item INT, v INT, ts TIMESTAMP(3), "
        "WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector' = 'filesystem', "
        f"'path' = '{path}', 'format' = 'json', 'json.timestamp-format.standard' = 'ISO-8601')"
    )
    return engine


QUERY = (
    "SELECT window_start, window_end, u, COUNT(*) AS n, SUM(v) AS total, MIN(v) AS lo, MAX(v) AS hi, "
    "AVG(v) AS mean, VAR_POP(v) AS var, COUNT(DISTINCT item) AS items, SUM(DISTINCT v) AS dv "
    "FROM TABLE(CUMULATE(TABLE ev, DESCRIPTOR(ts), INTERVAL '{step}' SECOND(5), "
    "INTERVAL '{size}' SECOND(5))) "
    "GROUP BY window_start, window_end, u"
)


def _general_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cumulate_aggregate, "supports", lambda node: False)


@pytest.mark.parametrize("batch_size", [1, 7, 100, None])
def test_same_changelog_as_the_general_window_operator(tmp_path, monkeypatch, batch_size):
    events = _events(tmp_path / "ev.json", {1: 300, 7: 1_200}.get(batch_size, 4_000), span_s=600)
    query = QUERY.format(step=10, size=120)
    got = _engine(events, batch_size).collect(query)
    with monkeypatch.context() as patch:
        _general_operator(patch)
        want = _engine(events, batch_size).collect(query)
    assert len(got) > 100
    assert got == want


def test_window_then_window_and_late_rows_agree(tmp_path, monkeypatch):
    """A CUMULATE downstream of a TUMBLE (window then window), with rows late for their slice."""
    events = _events(tmp_path / "ev.json", 3_000, span_s=900, seed=8)
    view = (
        "CREATE VIEW per_user AS SELECT window_time AS wt, u, COUNT(*) AS n FROM TABLE(TUMBLE("
        "TABLE ev, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, window_time, u"
    )
    query = (
        "SELECT window_start, window_end, COUNT(*) AS windows, SUM(n) AS n, COUNT(DISTINCT u) AS users "
        "FROM TABLE(CUMULATE(TABLE per_user, DESCRIPTOR(wt), INTERVAL '30' SECOND, INTERVAL '5' MINUTE)) "
        "GROUP BY window_start, window_end"
    )
    engine = _engine(events, 50)
    engine.execute_script(view)
    got = engine.collect(query)
    with monkeypatch.context() as patch:
        _general_operator(patch)
        engine = _engine(events, 50)
        engine.execute_script(view)
        want = engine.collect(query)
    assert len(got) > 20
    assert got == want


def _run_counting_state(
    path: Path, step: int, size: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[CumulateWindowAggregateOperator, int, list[tuple[int, int]]]:
    """The operator after the run, the rows it emitted, and its waiting partials and running
    accumulators after each watermark."""
    sizes: list[tuple[int, int]] = []
    fire = CumulateWindowAggregateOperator.on_watermark

    def counted(self: CumulateWindowAggregateOperator, watermark: int) -> list:
        out = fire(self, watermark)
        if self._running_created:
            count = "SELECT count(*) FROM {}"
            sizes.append(
                (
                    self.state.scalar(count.format(f"{self.prefix}_acc")),
                    self.state.scalar(count.format(f"{self.prefix}_cum")),
                )
            )
        return out

    monkeypatch.setattr(CumulateWindowAggregateOperator, "on_watermark", counted)
    engine = _engine(path, 200)
    rows = engine.collect(QUERY.format(step=step, size=size))
    assert engine.last_job is not None
    (operator,) = [
        op
        for pipeline in engine.last_job.pipelines
        for op in pipeline.operators
        if isinstance(op, CumulateWindowAggregateOperator)
    ]
    return operator, len(rows), sizes


@pytest.mark.parametrize("steps", [12, 144])
def test_each_partial_is_read_once_whatever_the_steps(tmp_path, monkeypatch, steps):
    """The state rows a firing reads are the partials that arrived since the last one and one
    running accumulator per key and window fired; merging every slice of the window at each
    step (the general operator) would read about steps / 2 times the partials."""
    events = _events(tmp_path / "ev.json", 6_000, span_s=3 * 1440)
    operator, emitted, sizes = _run_counting_state(
        events, step=14_400 // steps, size=14_400, monkeypatch=monkeypatch
    )
    assert operator.partials_appended > 1_000
    assert operator.state_rows_read <= operator.partials_appended + emitted
    # a running accumulator per key (4 users, one window open at a time), and everything is
    # merged and freed once the windows have closed
    assert max(cum for _, cum in sizes) <= 4
    assert sizes[-1] == (0, 0)


@pytest.mark.parametrize(
    "window",
    [
        "TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '10' SECOND)",
        "HOP(TABLE ev, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)",
        "CUMULATE(TABLE ev, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '20' SECOND)",
        "SESSION(TABLE ev, DESCRIPTOR(ts), INTERVAL '5' SECOND)",
    ],
)
def test_listagg_distinct_in_a_window_is_refused_with_its_position(tmp_path, window):
    """A window keeps its distinct values without their arrival order: refused at planning, with
    the call's position, instead of a DuckDB syntax error at run time."""
    engine = _engine(_events(tmp_path / "ev.json", 10, span_s=10))
    query = (
        f"SELECT window_end, LISTAGG(DISTINCT u) AS us FROM TABLE({window}) GROUP BY window_start, window_end"
    )
    with pytest.raises(UnsupportedFeatureError, match=r"LISTAGG\(DISTINCT \.\.\.\) in a \w+ window") as error:
        engine.collect(query)
    assert "column 20" in str(error.value)
