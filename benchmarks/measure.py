"""Run one command and measure it: wall time, CPU time and peak memory of its whole process tree.

* wall: from just before the process is spawned to its exit (`os.wait4` returning).
* peak RSS: two readings, the larger one is reported.
  - a sampler thread sums the RSS (`/proc/<pid>/statm`) of the process and all its descendants
    every `interval_s` (the JVM PyFlink starts is a child of its python process). Shared pages
    are counted once per process, so this slightly overstates a multi-process tree.
  - `ru_maxrss` from `os.wait4`: the largest single process among the child and the descendants
    it reaped (the kernel keeps it exactly, however short the peak).
* CPU: user + sys seconds, likewise the larger of `wait4`'s rusage and the sampled tree total.
  CPU time is less sensitive than wall time to other load on the machine.

Linux only (reads /proc); no psutil.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


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
    fields = data[data.rindex(b")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class _TreeSampler(threading.Thread):
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
        return {pid: cpu[pid] for pid in tree if pid in cpu}

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


def measure(command: list[str], *, cwd: Path, log_prefix: Path, env: dict[str, str] | None = None,
            interval_s: float = 0.05) -> Measurement:
    """Run `command` to completion; its stdout/stderr go to `<log_prefix>.out/.err`."""
    out_path = log_prefix.with_suffix(".out")
    err_path = log_prefix.with_suffix(".err")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        sampler = _TreeSampler(proc.pid, interval_s)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Measurement(
        command=command,
        returncode=proc.returncode,
        wall_s=wall,
        tree_peak_rss_mb=sampler.peak_rss / 2**20,
        max_process_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        cpu_s=max(usage.ru_utime + usage.ru_stime, sum(sampler.cpu_by_pid.values())),
        processes=len(sampler.cpu_by_pid),
        stdout=out_path,
        stderr=err_path,
    )
