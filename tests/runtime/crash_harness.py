"""Runs `clickstream run` in a subprocess and SIGKILLs it at random moments, restarting it after
each kill, until it is let run to its end (issue 12's crash test).

A kill lands at one of four kinds of moments, chosen by a seeded random generator:
- `early`: at a random time after the start (imports, the restore, the first batches);
- `checkpoint`: as soon as the run's first checkpoint is being written (its
  `chk-<n>.inprogress` directory appears);
- `commit`: as soon as the run's first checkpoint is complete, when its sinks commit the rows
  that waited for it (a restore must commit them, unless they are in);
- `any`: a random time after the run completed a checkpoint of its own (during a batch, a sink's
  commit, or a checkpoint).
The first run is killed at `commit` (a sink's first commit, with none before it to go back to).
Only the last two let the job get past its last checkpoint: they are chosen only while it is
behind a schedule that spreads the kills over the checkpoints of an uninterrupted run, so the
job does not end before its last kill, on a fast machine too. The moments are reproducible from
the seed as far as the job's speed allows.
A run that has ended (it deleted its checkpoints) is not killed: it would start over.

A restarted job must resume: the first checkpoint it writes is numbered right after the last one
on disk (a job starting over would number from 1 again).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import clickstream

SRC = Path(clickstream.__file__).resolve().parents[1]  # this checkout's code, for the subprocess
_POLL_S = 0.001
_CHECKPOINT = re.compile(r"^chk-(\d+)(\.inprogress)?$")
MODES = ("early", "checkpoint", "commit", "any")  # the last two let the job get further
WEIGHTS = (0.15, 0.3, 0.2, 0.35)
_FURTHER_SHARE = 0.6  # of the uninterrupted run's checkpoints, the crashed runs get past before the end


@dataclass
class CrashStats:
    kills: int = 0
    kills_in_checkpoint: int = 0  # the kill left a checkpoint half written (chk-<n>.inprogress)
    restarts: int = 0
    resumed: int = 0  # restarts seen writing the checkpoint after the last one on disk
    modes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.kills} kills ({self.kills_in_checkpoint} during a checkpoint; by moment "
            f"{self.modes}), {self.restarts} restarts, {self.resumed} seen resuming, "
            f"{self.seconds:.1f} s"
        )


def command(script: Path, settings: dict[str, str], *flags: str) -> list[str]:
    sets = [part for key, value in settings.items() for part in ("--set", f"{key}={value}")]
    return [sys.executable, "-m", "clickstream.cli", "run", str(script), "--quiet", *sets, *flags]


def spawn(script: Path, settings: dict[str, str], output: Path, *flags: str) -> subprocess.Popen:
    """The job in a subprocess running this checkout's code; its stdout and stderr to `output`."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    with output.open("ab") as out:
        return subprocess.Popen(command(script, settings, *flags), stdout=out, stderr=out, env=env)


def run_to_end(script: Path, settings: dict[str, str], output: Path, timeout_s: float = 150) -> int:
    """Run the job uninterrupted; how many checkpoints it took."""
    directory = Path(settings["state.checkpoints.dir"]) / settings["pipeline.name"]
    process = spawn(script, settings, output)
    deadline, taken = time.monotonic() + timeout_s, 0
    while process.poll() is None:
        taken = max(taken, checkpoints(directory)[0])
        assert time.monotonic() < deadline, f"not done in {timeout_s} s: {output.read_text()[-3000:]}"
        time.sleep(0.005)
    assert process.returncode == 0, f"exit {process.returncode}: {output.read_text()[-3000:]}"
    return taken


def checkpoints(directory: Path) -> tuple[int, int]:
    """(the newest complete checkpoint, the newest one being written): 0 for none."""
    complete = writing = 0
    for name in _names(directory):
        match = _CHECKPOINT.match(name)
        if match is None:
            continue
        if match.group(2):
            writing = max(writing, int(match.group(1)))
        else:
            complete = max(complete, int(match.group(1)))
    return complete, writing


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def half_written(directory: Path) -> tuple[str, int, int] | None:
    """The checkpoint directory being written (name, inode, change time), if any: a kill leaves
    it behind, and the next attempt at that checkpoint makes it anew."""
    for name in _names(directory):
        if name.endswith(".inprogress"):
            try:
                stat = (directory / name).stat()
            except FileNotFoundError:
                return None
            return name, stat.st_ino, stat.st_ctime_ns
    return None


@dataclass
class _Life:
    """One start of the job, and when it is to be killed."""

    mode: str
    last: int  # the newest complete checkpoint when it started
    left: tuple[str, int, int] | None  # a checkpoint an earlier kill left half written
    early: float  # mode `early`: kill this long after the start
    delay: float  # mode `any`: kill this long after its first checkpoint
    started: float = field(default_factory=time.monotonic)
    first_checkpoint: float | None = None  # when it completed its first checkpoint
    resumed: bool = False  # it was seen writing the checkpoint after the last one on disk

    def age(self) -> float:
        return time.monotonic() - self.started

    def due(self, directory: Path) -> bool:
        if self.mode == "early":
            return self.age() >= self.early
        if self.mode == "checkpoint":
            writing = half_written(directory)
            return writing is not None and writing != self.left
        if self.mode == "commit":
            return self.first_checkpoint is not None
        return self.first_checkpoint is not None and time.monotonic() >= self.first_checkpoint + self.delay

    def ended(self, directory: Path) -> bool:
        """The job has deleted its checkpoints: it ran to its end."""
        had = self.last > 0 or self.first_checkpoint is not None
        return had and checkpoints(directory) == (0, 0)


class CrashRun:
    """One job, killed `kills` times and then run to its end; `stats` counts what happened."""

    def __init__(self, script: Path, settings: dict[str, str], output: Path, seed: int) -> None:
        """`output`: where the job's runs write their stdout and stderr."""
        self.script, self.settings, self.output = script, settings, output
        self.directory = Path(settings["state.checkpoints.dir"]) / settings["pipeline.name"]
        self.random = random.Random(seed)
        self.stats = CrashStats()

    def run(self, kills: int, uninterrupted: int) -> CrashStats:
        """`uninterrupted`: the checkpoints an uninterrupted run takes. The runs that would get
        further are spread over them, so that the job does not end before the last kill."""
        started = time.monotonic()
        while self.stats.kills < kills:
            further = (self.stats.kills + 1) / kills * uninterrupted * _FURTHER_SHARE
            if not self._life(further):
                break  # it ended before its kill: the test says whether the kills were enough
            self.stats.restarts += 1
        else:
            run_to_end(self.script, self.settings, self.output)
        self.stats.seconds = time.monotonic() - started
        return self.stats

    def _life(self, further: float) -> bool:
        """Start the job and kill it at a moment of a random kind (one that lets it get past
        its last checkpoint only while that is below `further`); False if it ended first."""
        last, _ = checkpoints(self.directory)
        modes = MODES if last < further else MODES[:2]
        first = self.stats.kills == 0
        life = _Life(
            mode="commit" if first else self.random.choices(modes, WEIGHTS[: len(modes)])[0],
            last=last,
            left=half_written(self.directory),
            early=self.random.uniform(0.0, 1.5),
            delay=self.random.uniform(0.0, 0.3),
        )
        process = spawn(self.script, self.settings, self.output)
        while process.poll() is None:
            complete, _ = checkpoints(self.directory)
            if life.first_checkpoint is None and complete > last:
                life.first_checkpoint = time.monotonic()
                self._resumed(life, complete)
            writing = half_written(self.directory)
            if writing is not None and writing != life.left:
                self._resumed(life, int(writing[0].removeprefix("chk-").removesuffix(".inprogress")))
            if life.due(self.directory) and not life.ended(self.directory):
                self._kill(process, life)
                return True
            assert life.age() < 120, f"no progress in 120 s: {self.stats.summary()}"
            time.sleep(_POLL_S)
        assert process.returncode == 0, f"exit {process.returncode}: {self.output.read_text()[-3000:]}"
        return False

    def _resumed(self, life: _Life, number: int) -> None:
        """The run writes (or wrote) checkpoint `number`: the next after the last on disk."""
        if not life.resumed:
            assert number == life.last + 1, f"chk-{number} after chk-{life.last}: {self.stats.summary()}"
            life.resumed = True
            self.stats.resumed += 1

    def _kill(self, process: subprocess.Popen, life: _Life) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait()
        # a job that ended (and deleted its checkpoints) just before the kill would start over
        assert not life.ended(self.directory), f"killed after the job's end: {self.stats.summary()}"
        now = half_written(self.directory)
        self.stats.kills += 1
        self.stats.kills_in_checkpoint += now is not None and now != life.left
        self.stats.modes[life.mode] = self.stats.modes.get(life.mode, 0) + 1
