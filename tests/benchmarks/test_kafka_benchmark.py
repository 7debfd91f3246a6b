"""The Kafka benchmark (`benchmarks/kafka.py`) end to end at a small size: it starts its own broker,
loads the topics, measures every row, checks the results and prints both goals' verdicts. Timing
is not asserted (a test machine is shared); that it runs, checks and reports is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_kafka_benchmark_runs_checks_and_reports_its_goals(tmp_path: Path) -> None:
    path = os.pathsep.join(p for p in (str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "benchmarks/kafka.py", "--events", "10000", "--work-dir", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    rows = ("seed job ← Kafka", "bare consumer ← Kafka", "source only ← Kafka", "source only ← empty topic")
    assert all(row in out for row in rows)
    assert "Kafka job ≤ 1.3× the file job's time:" in out
    assert "reading Kafka through the source ≤ 1.5× the bare consumer's time:" in out
    assert "results equal" in out
