"""Running a small windowed job with `clickstream run` over a source holding poison records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

# One tumbling window count over a table `src` (id, ts, v); `{source}` is its WITH options.
JOB = """
CREATE TABLE src (id BIGINT, ts TIMESTAMP(3), v DOUBLE,
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ({source});
CREATE TABLE per_window (w TIMESTAMP(3), n BIGINT, ids BIGINT)
WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO per_window SELECT window_start, COUNT(*), SUM(id)
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end;
"""


def good_json(i: int) -> bytes:
    return orjson.dumps({"id": i, "ts": f"2024-01-01T00:00:{i % 60:02d}Z", "v": i * 1.5})


def run_job(tmp_path: Path, source: str, timeout: float = 60) -> subprocess.CompletedProcess:
    script = tmp_path / "job.sql"
    script.write_text(JOB.format(source=source, out=tmp_path / "out.jsonl"))
    return run_script(tmp_path, script, timeout)


def run_script(tmp_path: Path, script: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "clickstream.cli", "run", "-q", "-s"]
    command += [f"dead-letter.dir={tmp_path / 'dead'}", str(script)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def output(tmp_path: Path) -> list[dict]:
    path = tmp_path / "out.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def dead_letters(tmp_path: Path) -> list[dict]:
    path = tmp_path / "dead" / "src.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def counted(tmp_path: Path) -> int:
    """Rows the windows counted."""
    return sum(row["n"] for row in output(tmp_path))
