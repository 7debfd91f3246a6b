"""A real Prometheus server for the tests: Debian's /usr/bin/prometheus as a plain child process.

Never the system service: each `Prometheus` has its own config and TSDB in a temporary directory
and listens on a free loopback port. It scrapes the given target every second; `query` and
`query_range` read its HTTP API back. Without the binary the tests skip, saying how to install it
(`bash scripts/prometheus.sh`); under CI=true they fail instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

PROMETHEUS = Path("/usr/bin/prometheus")
SCRIPT = "scripts/prometheus.sh"
START_TIMEOUT_S = 60.0
SCRAPE_INTERVAL = "1s"

CONFIG = """\
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
scrape_configs:
  - job_name: clickstream
    metrics_path: /metrics
    static_configs:
      - targets: ['{target}']
{authorization}"""


def require_prometheus() -> Path:
    """The binary, or skip (fail under CI=true) saying how to get it."""
    if PROMETHEUS.is_file() and os.access(PROMETHEUS, os.X_OK):
        return PROMETHEUS
    message = f"{PROMETHEUS} is missing (install it with: bash {SCRIPT})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: the Prometheus test must run)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_config(target: str, token: str | None = None, interval: str = SCRAPE_INTERVAL) -> str:
    """prometheus.yml scraping `target` (host:port); with a token, sent as a Bearer credential."""
    authorization = f"    authorization:\n      credentials: '{token}'\n" if token else ""
    return CONFIG.format(interval=interval, target=target, authorization=authorization)


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {labels}, "value": [t, "v"]}]."""
        return self._get("/api/v1/query", {"query": expr})["result"]

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> list[dict[str, Any]]:
        """A range query's matrix: [{"metric": {labels}, "values": [[t, "v"], ...]}]."""
        return self._get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})[
            "result"
        ]

    def value(self, expr: str) -> float | None:
        """The value of a query that yields one series, None when it yields none yet."""
        result = self.query(expr)
        assert len(result) <= 1, f"{expr} yields {len(result)} series"
        return float(result[0]["value"][1]) if result else None

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets, with their `health` and `lastError`."""
        return self._get("/api/v1/targets", {})["activeTargets"]

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        response = httpx.get(self.url + path, params=params, timeout=10)
        body = response.json()
        assert body.get("status") == "success", body
        return body["data"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def prometheus_server(directory: Path, target: str, token: str | None = None) -> Iterator[Prometheus]:
    """Prometheus scraping `target` every second, until the block ends."""
    binary = require_prometheus()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(scrape_config(target, token))
    port = free_port()
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.console.templates=",  # Debian's defaults point at /etc; none are needed
                "--web.console.libraries=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: Prometheus) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"prometheus exited:\n{server.log()}"
        try:
            if httpx.get(server.url + "/-/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"prometheus was not ready within {START_TIMEOUT_S} s:\n{server.log()}")
