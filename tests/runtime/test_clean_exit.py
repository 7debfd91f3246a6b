"""A job that fails early stops every thread it started and closes its connections, so the
process exits with the job's error, never an abort at exit (issue 12, clean exits)."""

from __future__ import annotations

import subprocess
import sys
import threading

import orjson
import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.errors import ClickstreamError

BATCH = "table.exec.mini-batch.size"

JOB = """
CREATE TABLE src (id BIGINT, v DOUBLE) WITH ('connector' = 'filesystem', 'path' = '{path}',
    'format' = 'json');
CREATE TABLE sink (id BIGINT, v DOUBLE) WITH ('connector' = 'jdbc',
    'url' = 'jdbc:postgresql://127.0.0.1:1/nowhere', 'table-name' = 't');
INSERT INTO sink SELECT id, v FROM src;
"""


@pytest.fixture
def script(tmp_path):
    # many small batches: the read-ahead thread is still busy when the sink fails
    with (tmp_path / "in.jsonl").open("wb") as out:
        out.writelines(orjson.dumps({"id": i, "v": i / 2}) + b"\n" for i in range(20_000))
    path = tmp_path / "job.sql"
    path.write_text(JOB.format(path=tmp_path / "in.jsonl"))
    return path


def test_a_failing_sink_leaves_no_thread_running(script):
    with pytest.raises(ClickstreamError, match="Connection refused"):
        Engine(Settings({BATCH: "100"})).execute_script(script.read_text())
    assert [t.name for t in threading.enumerate() if t.name.startswith("source-read-ahead")] == []


def test_the_process_exits_with_the_jobs_error(script):
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "clickstream.cli", "run", "-q", "-s", f"{BATCH}=100", str(script)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1, result.stderr
        assert "Connection refused" in result.stdout + result.stderr
        assert "terminate called" not in result.stderr and "leaked" not in result.stderr
