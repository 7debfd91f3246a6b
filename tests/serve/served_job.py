"""`clickstream run --serve` on an unbounded job, as a subprocess the tests feed and scrape.

The job reads a two-partition topic of the embedded log (unbounded: it runs until stopped) and
writes to an SQLite results file: a copy of each event and a count per behaviour. The tests append
events with `append`, wait with `wait_for` until the job's own figures (its `/api/status`) show
them, and compare those with `/metrics` or with what Prometheus stored.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from clickstream.log import TopicLog

REPO = Path(__file__).resolve().parents[2]
TOPIC = "events"
PARTITIONS = 2
START_TIMEOUT_S = 60.0
WAIT_S = 30.0

JOB = """
SET 'execution.checkpointing.interval' = '300 ms';
SET 'pipeline.name' = 'served-job';
CREATE TABLE events (user_id BIGINT, behavior STRING, ts TIMESTAMP_LTZ(3),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector' = 'log', 'path' = '{log}', 'topic' = 'events', 'format' = 'json');
CREATE TABLE copied (user_id BIGINT, behavior STRING)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = 'copied');
CREATE TABLE per_behavior (behavior STRING PRIMARY KEY NOT ENFORCED, n BIGINT)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = 'per_behavior');
INSERT INTO copied SELECT user_id, behavior FROM events;
INSERT INTO per_behavior SELECT behavior, COUNT(*) FROM events GROUP BY behavior;
"""
COPY_QUERY = "insert-into_copied"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class ServedJob:
    process: subprocess.Popen[str]
    url: str
    log: TopicLog
    results: Path
    lines: list[str] = field(default_factory=list)
    appended: int = 0
    token: str | None = None

    @property
    def target(self) -> str:
        """host:port, as a scrape configuration names it."""
        return self.url.removeprefix("http://")

    def get(self, path: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.get(self.url + path, params=params, headers=headers, timeout=10)
        response.raise_for_status()
        return response

    def append(self, count: int) -> None:
        """`count` more events, one second of event time apart, over both partitions."""
        start = self.appended
        for partition in range(PARTITIONS):
            values = [_event(i) for i in range(start, start + count) if i % PARTITIONS == partition]
            self.log.append(TOPIC, values, partition=partition)
        self.appended += count

    def status(self) -> dict[str, Any]:
        return self.get("/api/status").json()

    def metrics(self) -> Samples:
        return parse_metrics(self.get("/metrics").text)

    def wait_for(self, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first `/api/status` for which `check` holds; fails if the job dies or time runs out."""
        deadline = time.monotonic() + WAIT_S
        while True:
            assert self.process.poll() is None, f"the job ended: {self.output()}"
            status = self.status()
            if check(status):
                return status
            assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s; last status: {status}"
            time.sleep(0.2)

    def wait_for_records(self, count: int) -> dict[str, Any]:
        return self.wait_for(
            lambda s: s["queries"].get(COPY_QUERY, {}).get("records_in") == count, f"{count} records in"
        )

    def output(self) -> str:
        return "\n".join(self.lines)

    def interrupt(self) -> int:
        """Ctrl-C: the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=WAIT_S)


def _event(i: int) -> bytes:
    return orjson.dumps(
        {"user_id": i, "behavior": ["pv", "buy", "cart"][i % 3], "ts": f"2024-01-01T{_clock(i)}Z"}
    )


def _clock(second: int) -> str:
    return f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"


def event_time_s(i: int) -> float:
    """The epoch seconds of event `i`."""
    return 1_704_067_200.0 + i


def parse_metrics(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@contextmanager
def served_job(tmp_path: Path, token: str | None = None, host: str | None = None) -> Iterator[ServedJob]:
    """Start `clickstream run --serve --port 0` on the job (with `--token` and `--host`, if given);
    killed after if it still runs. The tests reach it on 127.0.0.1, with the token it printed."""
    log = TopicLog(tmp_path / "log")
    log.create_topic(TOPIC, partitions=PARTITIONS)
    results, script = tmp_path / "results.db", tmp_path / "job.sql"
    script.write_text(JOB.format(log=tmp_path / "log", db=results))
    extra_args = (["--token", token] if token else []) + (["--host", host] if host else [])
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clickstream.cli",
            "run",
            "-q",
            "--serve",
            "--port",
            "0",
            *extra_args,
            str(script),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    lines: list[str] = []
    try:
        port, printed_token = _served_at(process, lines)
        yield ServedJob(process, f"http://127.0.0.1:{port}", log, results, lines, token=printed_token)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _served_at(process: subprocess.Popen[str], lines: list[str]) -> tuple[int, str | None]:
    """The port and token the job prints where it serves; stderr is read on a thread, to the end."""
    found: queue.Queue[tuple[int, str | None]] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            match = re.search(r"Serving http://\S+?:(\d+)/(?:\?token=(\S+))? ", line)
            if match:
                found.put((int(match.group(1)), match.group(2)))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            return found.get(timeout=0.2)
        except queue.Empty:
            assert process.poll() is None, "\n".join(lines)
    raise AssertionError("the job did not print where it serves: " + "\n".join(lines))
