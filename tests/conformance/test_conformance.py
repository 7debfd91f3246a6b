"""Every conformance case gives on clickstream the final result PyFlink 2.3 gave (recorded in cases/).

No PyFlink needed: the expected results are stored; ``python -m tests.conformance.record``
re-records them. A case with a ``divergence`` is an xfail(strict=True): when clickstream is fixed
the test fails and asks for the mark to be removed. Cases with event time also run with
``table.exec.mini-batch.size`` = 1 (results must not depend on batch size).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.errors import ClickstreamError
from clickstream.runtime.clock import ManualClock, SystemClock
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

UNBOUNDED = "-1"


def _params() -> list:
    params = []
    for group in groups():
        for case in load_group(group):
            sizes = [(UNBOUNDED, case.id)] + ([("1", f"{case.id}@batch1")] if case.has_event_time else [])
            for size, test_id in sizes:
                diverges = case.divergence and case.divergence_batch_size in (None, size)
                marks = [pytest.mark.xfail(strict=True, reason=case.divergence)] if diverges else []
                params.append(pytest.param(case, size, id=test_id, marks=marks))
    return params


def run_on_clickstream(case: Case, directory: Path, batch_size: str) -> list[list]:
    """The case's final materialized rows on clickstream, values in the oracle's form, sorted."""
    # Processing time stands still during a case: Flink's recorded run read these few rows in
    # well under a millisecond and fired no timer before its input ended; on a loaded machine the
    # wall clock could pass a timer's time mid-run and emit rows Flink did not.
    clock = ManualClock(SystemClock().now_ms()) if case.has_processing_time else None
    settings = Settings({**case.settings, "table.exec.mini-batch.size": batch_size})
    engine = Engine(settings, out=io.StringIO(), clock=clock)
    engine.execute_script(";\n".join(case.setup(directory)) + ";")
    changelog = engine.collect(case.query)
    normalized = [(kind, [normalize(v, case.time_zone) for v in row]) for kind, row in changelog]
    return materialize(normalized, key_positions(case))


@pytest.mark.parametrize(("case", "batch_size"), _params())
def test_same_result_as_flink(case: Case, batch_size: str, tmp_path: Path) -> None:
    assert case.expected is not None, f"{case.id} has no expected result: run tests.conformance.record"
    if "error" in case.expected:
        with pytest.raises(ClickstreamError):
            run_on_clickstream(case, tmp_path, batch_size)
        return
    got = run_on_clickstream(case, tmp_path, batch_size)
    want = case.expected["rows"]
    assert same_rows(got, want), f"{case.query}\n  flink:       {want}\n  clickstream: {got}"
