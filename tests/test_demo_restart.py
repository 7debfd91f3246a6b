"""`clickstream demo` stopped (Ctrl-C, or killed) and started again on its data directory goes on
where it stopped: the simulator writes the rest of the same simulation, the job resumes from its
checkpoint, and the charts end as those of one uninterrupted run. `--fresh` starts over."""

from __future__ import annotations

import pytest

from tests.demo_process import EVENTS, run_demo, tables, written

pytestmark = pytest.mark.integration


def test_a_stopped_demo_resumes_and_ends_as_one_uninterrupted_run(tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    run_demo(whole)
    expected = tables(whole)
    assert all(expected.values())

    run_demo(resumed, stop_after_s=3)
    assert 0 < written(resumed) < EVENTS  # stopped part-way
    run_demo(resumed, stop_after_s=2, kill=True)  # no final checkpoint: the job redoes the last 2 s at most
    run_demo(resumed)
    assert written(resumed) == EVENTS
    assert tables(resumed) == expected

    run_demo(resumed, stop_after_s=1)  # complete: nothing more is simulated, nothing counted twice
    assert written(resumed) == EVENTS
    assert tables(resumed) == expected

    run_demo(resumed, stop_after_s=2, fresh=True)
    assert 0 < written(resumed) < EVENTS  # the simulation started over...
    started_over = tables(resumed)
    buys = sum(n for _, n, _ in started_over["buy_cnt_per_hour"])
    assert buys < sum(n for _, n, _ in expected["buy_cnt_per_hour"])  # ...and so did the results
