"""Polling a SQLite sink that a running `clickstream run` process writes to (the unbounded-run tests)."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path


def sink_total(db: Path, table: str) -> int:
    """SUM(n) of the sink table, 0 before the job has created it."""
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(f"SELECT coalesce(sum(n), 0) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def wait_for_total(db: Path, table: str, total: int, process: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until the sink's total is `total`, failing if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while sink_total(db, table) != total:
        assert process.poll() is None, process.stderr.read() if process.stderr else "process ended"
        assert time.monotonic() < deadline, f"sink has {sink_total(db, table)} of {total}"
        time.sleep(0.2)
