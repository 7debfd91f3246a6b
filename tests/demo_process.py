"""Running `clickstream demo` as a subprocess (the demo tests)."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from clickstream.connectors.jdbc_commits import TABLE as COMMITS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_demo(data_dir: Path, port: int, *options: str) -> subprocess.Popen:
    """`clickstream demo` on `data_dir` and `port`, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "clickstream.cli", "demo", "--port", str(port), "--data-dir", str(data_dir)]
        + list(options),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data_dir.parent,
    )


def wait_for_url(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def status(port: int) -> dict:
    """The demo's /api/status: per query, records in and out, lag, watermark."""
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5).read())


def interrupt(process: subprocess.Popen, timeout: float = 30) -> None:
    """Ctrl-C, and check that the demo stopped cleanly."""
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=timeout)
    assert code == 0, process.stderr.read() if process.stderr else f"exit code {code}"


# --- a demo run to its end (the restart tests) ----------------------------------------------------

# A simulated day of 40,000 events in 8 s of wall time.
SPAN = ("--rate", "5000", "--speedup", "10800", "--days", "1")
EVENTS = 40_000
CHARTS = ("buy_cnt_per_hour", "cumulative_uv", "top_category")  # the seed's sink tables


def written(data_dir: Path) -> int:
    """Events the simulator had written when it last stopped (its state file)."""
    return json.loads((data_dir / "000" / "demo.json").read_text())["written"]


def tables(data_dir: Path) -> dict[str, list[tuple]]:
    """The chart tables of results.db, rows sorted (by their text: NULLs sort too)."""
    with sqlite3.connect(f"file:{data_dir / 'results.db'}?mode=ro", uri=True) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # besides the charts, only the sinks' note of their last committed checkpoint
        assert names <= {*CHARTS, COMMITS}, names
        return {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr) for name in CHARTS}


def _caught_up(port: int) -> bool:
    queries = status(port)["queries"].values()
    return bool(queries) and all(q["lag"] == 0 for q in queries)


def run_demo(
    data_dir: Path, *options: str, stop_after_s: float | None = None, kill: bool = False, fresh: bool = False
) -> None:
    """One start of the demo: stopped after `stop_after_s` (Ctrl-C, or SIGKILL with `kill`), or
    once the simulation is complete, the job has read all of it and the results no longer change."""
    port = free_port()
    process = start_demo(data_dir, port, *SPAN, *options, *(["--fresh"] if fresh else []))
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
        if written(data_dir) < EVENTS or not _caught_up(port):
            continue
        now = tables(data_dir)
        stable = stable + 1 if now == last else 0
        last = now
