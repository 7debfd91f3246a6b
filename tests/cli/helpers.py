"""Running the real `clickstream` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

COMMAND = [sys.executable, "-m", "clickstream.cli"]
DEBUG_VARIABLE = "CLICKSTREAM_DEBUG"
UNSET = ("CLICKSTREAM_DEBUG", "CLICKSTREAM_LOG_DIR")  # unless a test gives them


def environment(**extra: str) -> dict[str, str]:
    """The test's environment, unbuffered (stdout and stderr interleave as on a terminal), without
    CLICKSTREAM_DEBUG or CLICKSTREAM_LOG_DIR unless given."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "200"}, **extra)
    return env


def clickstream(
    *args: str, cwd: Path | None = None, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `clickstream ARGS` to its end: exit code, stdout and stderr."""
    return subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(*args: str, cwd: Path | None = None, **env: str) -> subprocess.Popen[str]:
    """Start `clickstream ARGS`; stdout and stderr are pipes."""
    return subprocess.Popen(
        [*COMMAND, *args],
        cwd=cwd,
        env=environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], prefix: str, timeout: float = 30) -> None:
    """Read the process's stdout until a line starts with `prefix` (a blocking read: the process
    prints it or ends)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(prefix):
            return
        if not line and process.poll() is not None:
            raise AssertionError(f"the command ended ({process.returncode}) before '{prefix}'")
    raise AssertionError(f"no line '{prefix}' within {timeout} s")


def wait_for(condition, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the command ended ({process.returncode})"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def listening_socket() -> Iterator[int]:
    """A port something already listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def one_line(text: str) -> str:
    """The single line `text` holds (fails on several, or on a traceback)."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]
