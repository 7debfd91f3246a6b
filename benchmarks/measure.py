"""Run one command and measure it: wall time, CPU time and peak memory of its whole process tree.

The command is started by a tiny launcher process (`python -S -I`, ~10 MB), which spawns it,
reaps it with `os.wait4` and reports the rusage. Why not spawn it from here: Linux's `ru_maxrss`
of a child includes the high-water RSS of the address space it replaced at `exec`, i.e. the
parent's (`subprocess` spawns with vfork; with fork it is the copy of the parent). Measured from
`run.py` directly, even `/bin/true` "peaked" at run.py's own RSS (85 MB, or 425 MB after
generating data in-process). From the launcher that floor is the launcher's ~10 MB.

* wall: in the launcher, from just before the command is spawned to `os.wait4` returning.
* peak RSS: two readings, the larger one is reported.
  - a sampler thread sums the RSS (`/proc/<pid>/statm`) of the command and all its descendants
    (not the launcher) every `interval_s` (the JVM PyFlink starts is a child of its python
    process). Shared pages are counted once per process, so this slightly overstates a
    multi-process tree.
  - `ru_maxrss` from the launcher's `os.wait4`: the largest single process among the command and
    the descendants it reaped (the kernel keeps it exactly, however short the peak).
* CPU: user + sys seconds, likewise the larger of `wait4`'s rusage and the sampled tree total.
  CPU time is less sensitive than wall time to other load on the machine.

Linux only (reads /proc); no psutil.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")

# argv: REPORT_FILE COMMAND... ; the launcher's exit code is the command's
_LAUNCHER = """
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.posix_spawnp(command[0], command, os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as f:
    json.dump({"wall_s": wall, "returncode": code, "cpu_s": usage.ru_utime + usage.ru_stime,
               "maxrss_kb": usage.ru_maxrss}, f)
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass
class Measurement:
    command: list[str]
    returncode: int
    wall_s: float
    tree_peak_rss_mb: float  # sampled sum over the process tree
    max_process_rss_mb: float  # ru_maxrss from wait4: largest single process
    cpu_s: float
    processes: int  # distinct processes seen in the tree
    stdout: Path
    stderr: Path

    @property
    def peak_rss_mb(self) -> float:
        return max(self.tree_peak_rss_mb, self.max_process_rss_mb)


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+sys CPU seconds) of a live process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class _TreeSampler(threading.Thread):
    """Samples the descendants of `root` (not `root` itself: the launcher)."""

    def __init__(self, root: int, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval_s = interval_s
        self.peak_rss = 0
        self.cpu_by_pid: dict[int, float] = {}
        self._done = threading.Event()

    def _tree(self) -> dict[int, float]:
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = _stat(int(name))
                if stat is not None:
                    parents[int(name)], cpu[int(name)] = stat
        tree = {self.root}
        grew = True
        while grew:
            grew = False
            for pid, parent in parents.items():
                if parent in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        return {pid: cpu[pid] for pid in tree if pid in cpu and pid != self.root}

    def sample(self) -> None:
        tree = self._tree()
        self.peak_rss = max(self.peak_rss, sum(_rss_bytes(pid) for pid in tree))
        for pid, seconds in tree.items():
            self.cpu_by_pid[pid] = max(seconds, self.cpu_by_pid.get(pid, 0.0))

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval_s)

    def stop(self) -> None:
        self._done.set()
        self.join()


def measure(
    command: list[str],
    *,
    cwd: Path,
    log_prefix: Path,
    env: dict[str, str] | None = None,
    interval_s: float = 0.05,
) -> Measurement:
    """Run `command` to completion; its stdout/stderr go to `<log_prefix>.out/.err`."""
    out_path = log_prefix.with_suffix(".out")
    err_path = log_prefix.with_suffix(".err")
    report_path = log_prefix.with_suffix(".rusage.json")
    report_path.unlink(missing_ok=True)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-S", "-I", "-c", _LAUNCHER, str(report_path), *command],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
        )
        sampler = _TreeSampler(proc.pid, interval_s)
        sampler.start()
        proc.wait()
        outer_wall = time.perf_counter() - started
        sampler.stop()
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):  # the launcher itself failed (see the .err log)
        report = {"wall_s": outer_wall, "returncode": proc.returncode or 1, "cpu_s": 0.0, "maxrss_kb": 0}
    return Measurement(
        command=command,
        returncode=report["returncode"],
        wall_s=report["wall_s"],
        tree_peak_rss_mb=sampler.peak_rss / 2**20,
        max_process_rss_mb=report["maxrss_kb"] / 1024,  # KiB on Linux
        cpu_s=max(report["cpu_s"], sum(sampler.cpu_by_pid.values())),
        processes=len(sampler.cpu_by_pid),
        stdout=out_path,
        stderr=err_path,
    )


def checkout_env(repo: Path) -> dict[str, str]:
    """The environment for a child that must import the engine of the checkout at `repo` (its
    `src/` first on PYTHONPATH), not another copy installed in the venv."""
    path = os.pathsep.join(p for p in (str(repo / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}
