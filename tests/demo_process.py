"""Running `clickstream demo` as a subprocess (the demo tests)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


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
