"""Every conformance case, killed after a checkpoint and restored, gives Flink's result.

The case runs one row per batch; after one of its first batches a checkpoint is taken and the job dies
(nothing after the checkpoint is flushed or closed cleanly). A new engine with the same statements
restores the checkpoint and runs to the end. The rows the first run emitted plus those of the
second must be the recorded PyFlink result: so every operator's state (tables and Python-side
state), every source position and every watermark survives a checkpoint.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.runtime.clock import ManualClock, SystemClock
from clickstream.runtime.executor import Job
from tests.conformance.harness import (
    Case,
    groups,
    key_positions,
    load_group,
    materialize,
    normalize,
    same_rows,
)

pytestmark = pytest.mark.conformance


class _Killed(Exception):
    pass


# a query that keeps state (a projection or filter alone has none to lose)
_STATEFUL = re.compile(
    r"GROUP BY|JOIN|OVER|MATCH_RECOGNIZE|DISTINCT|ORDER BY|UNION|INTERSECT|EXCEPT|EXISTS|"
    r"IN \(SELECT|LIMIT|TUMBLE|HOP|CUMULATE|SESSION|COUNT\(|SUM\(|MAX\(|MIN\(|AVG\(|AGG\(",
    re.IGNORECASE,
)


def _cases() -> list:
    """The stateful cases with a recorded result (processing time aside: it is not replayed
    alike), each killed after its 1st to 4th batch in turn."""
    params = []
    for group in groups():
        for case in load_group(group):
            expected = case.expected or {}
            text = " ".join([case.query, *case.views])
            if "rows" not in expected or case.divergence or "PROCTIME" in text.upper():
                continue
            if _STATEFUL.search(text):
                params.append(pytest.param(case, 1 + len(params) % 4, id=case.id))
    return params


def _engine(case: Case, checkpoints: Path) -> Engine:
    settings = {
        **case.settings,
        "table.exec.mini-batch.size": "1",
        "execution.checkpointing.interval": "1 h",  # only the one this test takes
        "state.checkpoints.dir": str(checkpoints),
    }
    # Processing time stands still, as in a run too short for a timer to fire (the recorded
    # result): the kill and the restore take time, and a timer that fired then gave other rows.
    return Engine(Settings(settings), out=io.StringIO(), clock=ManualClock(SystemClock().now_ms()))


def _changelog(case: Case, directory: Path, kill_after: int) -> list[tuple[str, tuple]]:
    engine = _engine(case, directory / "checkpoints")
    engine.execute_script(";\n".join(case.setup(directory)) + ";")
    seen = 0

    def kill_after_checkpoint(job: Job) -> None:
        nonlocal seen
        seen += 1
        if seen == kill_after and not job.status.finished:
            assert job.checkpointer is not None
            job.checkpointer.checkpoint()
            raise _Killed

    engine.on_batch = kill_after_checkpoint
    try:
        return engine.collect(case.query)  # ended before the kill: nothing to restore
    except _Killed:
        job = engine.current_job
        assert job is not None
        before = job.pipelines[0].operators[-1].sink.rows  # type: ignore[attr-defined]
    again = _engine(case, directory / "checkpoints")
    again.execute_script(";\n".join(case.setup(directory)) + ";")
    after = again.collect(case.query)
    assert again.last_job is not None and again.last_job.status.restored_from == 1
    assert not (directory / "checkpoints").exists() or not any((directory / "checkpoints").iterdir()), (
        "a finished job leaves no checkpoint"
    )
    return before + after


@pytest.mark.parametrize(("case", "kill_after"), _cases())
def test_restored_job_gives_flinks_result(case: Case, kill_after: int, tmp_path: Path) -> None:
    changelog = _changelog(case, tmp_path, kill_after)
    normalized = [(kind, [normalize(v, case.time_zone) for v in row]) for kind, row in changelog]
    got = materialize(normalized, key_positions(case))
    want = case.expected["rows"]  # type: ignore[index]
    assert same_rows(got, want), f"{case.query}\n  flink:       {want}\n  clickstream: {got}"
