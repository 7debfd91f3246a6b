"""`clickstream demo` stopped (Ctrl-C, or killed) and started again on its data directory goes on
where it stopped: the simulator writes the rest of the same simulation, the job resumes from its
checkpoint, and the charts end as those of one uninterrupted run. `--fresh` starts over."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from clickstream.connectors.jdbc_commits import TABLE as COMMITS
from tests.demo_process import free_port, interrupt, start_demo, status, wait_for_url

pytestmark = pytest.mark.integration

# A simulated day of 40,000 events in 8 s of wall time.
SPAN = ("--rate", "5000", "--speedup", "10800", "--days", "1")
EVENTS = 40_000
CHARTS = ("buy_cnt_per_hour", "cumulative_uv", "top_category")  # the seed's sink tables


def _written(data_dir: Path) -> int:
    """Events the simulator had written when it last stopped (its state file)."""
    return json.loads((data_dir / "demo.json").read_text())["written"]


def _tables(data_dir: Path) -> dict[str, list[tuple]]:
    """The chart tables of results.db, rows sorted (by their text: NULLs sort too)."""
    with sqlite3.connect(f"file:{data_dir / 'results.db'}?mode=ro", uri=True) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # besides the charts, only the sinks' note of their last committed checkpoint
        assert names <= {*CHARTS, COMMITS}, names
        return {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr) for name in CHARTS}


def _caught_up(port: int) -> bool:
    queries = status(port)["queries"].values()
    return bool(queries) and all(q["lag"] == 0 for q in queries)


def _run(
    data_dir: Path, *, stop_after_s: float | None = None, kill: bool = False, fresh: bool = False
) -> None:
    """One start of the demo: stopped after `stop_after_s` (Ctrl-C, or SIGKILL with `kill`), or
    once the simulation is complete, the job has read all of it and the results no longer change."""
    port = free_port()
    process = start_demo(data_dir, port, *SPAN, *(["--fresh"] if fresh else []))
    try:
        wait_for_url(f"http://127.0.0.1:{port}/api/status", process)
        _wait_for_job(port, process)
        if stop_after_s is not None:
            time.sleep(stop_after_s)
        else:
            _wait_until_done(data_dir, port, process)
        if kill:
            process.kill()
        else:
            interrupt(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for_job(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    """Until the job runs: Ctrl-C stops it (and takes a checkpoint) from then on."""
    deadline = time.monotonic() + timeout
    while not status(port)["queries"]:
        assert process.poll() is None, process.stderr.read() if process.stderr else "demo ended"
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.1)


def _wait_until_done(data_dir: Path, port: int, process: subprocess.Popen, timeout: float = 40) -> None:
    deadline, last, stable = time.monotonic() + timeout, None, 0
    while stable < 3:
        assert process.poll() is None, process.stderr.read() if process.stderr else "demo ended"
        assert time.monotonic() < deadline, f"not done: {status(port)}"
        time.sleep(0.3)
        if _written(data_dir) < EVENTS or not _caught_up(port):
            continue
        tables = _tables(data_dir)
        stable = stable + 1 if tables == last else 0
        last = tables


def test_a_stopped_demo_resumes_and_ends_as_one_uninterrupted_run(tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    _run(whole)
    expected = _tables(whole)
    assert all(expected.values())

    _run(resumed, stop_after_s=3)
    assert 0 < _written(resumed) < EVENTS  # stopped part-way
    _run(resumed, stop_after_s=2, kill=True)  # no final checkpoint: the job redoes the last 2 s at most
    _run(resumed)
    assert _written(resumed) == EVENTS
    assert _tables(resumed) == expected

    _run(resumed, stop_after_s=1)  # complete: nothing more is simulated, nothing counted twice
    assert _written(resumed) == EVENTS
    assert _tables(resumed) == expected

    _run(resumed, stop_after_s=2, fresh=True)
    assert 0 < _written(resumed) < EVENTS  # the simulation started over...
    started_over = _tables(resumed)
    buys = sum(n for _, n in started_over["buy_cnt_per_hour"])
    assert buys < sum(n for _, n in expected["buy_cnt_per_hour"])  # ...and so did the results
