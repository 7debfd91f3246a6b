"""Where a job's checkpoints live on disk: `<state.checkpoints.dir>/<job>/chk-<n>/`, as Flink lays
them out.

A checkpoint is written into `chk-<n>.inprogress/`, its files fsynced, and then renamed to
`chk-<n>/`: a rename is atomic, so a kill at any moment (during a checkpoint too) leaves either
the whole new checkpoint or none of it, and the last complete one stays valid. The `_metadata`
file is written last inside it; a directory without one is not a checkpoint.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import orjson

METADATA = "_metadata"
_COMPLETE = re.compile(r"^chk-(\d+)$")


class CheckpointStore:
    """The checkpoints of one job, newest last; keeps the `retained` newest."""

    def __init__(self, directory: Path, retained: int = 1) -> None:
        self.directory = directory
        self.retained = max(retained, 1)

    def checkpoints(self) -> list[tuple[int, Path]]:
        """The complete checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.iterdir():
            match = _COMPLETE.match(entry.name)
            if match and (entry / METADATA).is_file():
                found.append((int(match.group(1)), entry))
        return sorted(found)

    def latest(self) -> tuple[int, Path, dict] | None:
        """The newest complete checkpoint: its id, directory and metadata."""
        complete = self.checkpoints()
        if not complete:
            return None
        number, path = complete[-1]
        return number, path, orjson.loads((path / METADATA).read_bytes())

    def begin(self, number: int) -> Path:
        """An empty directory to write checkpoint `number` into."""
        path = self.directory / f"chk-{number}.inprogress"
        shutil.rmtree(path, ignore_errors=True)  # left by a kill during an earlier attempt
        path.mkdir(parents=True)
        return path

    def complete(self, number: int, path: Path, metadata: dict) -> Path:
        """Seal the checkpoint written into `path`: metadata last, every file synced, renamed."""
        (path / METADATA).write_bytes(orjson.dumps(metadata, option=orjson.OPT_INDENT_2))
        for file in path.iterdir():
            _fsync(file)
        final = self.directory / f"chk-{number}"
        os.rename(path, final)
        _fsync(self.directory)
        self._prune()
        return final

    def _prune(self) -> None:
        complete = self.checkpoints()
        for _, path in complete[: -self.retained]:
            shutil.rmtree(path, ignore_errors=True)
        for entry in self.directory.iterdir():  # attempts a kill interrupted
            if entry.name.endswith(".inprogress"):
                shutil.rmtree(entry, ignore_errors=True)

    def discard(self) -> None:
        """Forget every checkpoint (the job finished, or `--fresh`). The directory is renamed
        away first, atomically: a kill while its files are deleted must not leave a checkpoint
        with files missing, which the next run would try and fail to restore."""
        for leftover in self.directory.parent.glob(f".{self.directory.name}.deleting-*"):
            shutil.rmtree(leftover, ignore_errors=True)  # by a discard a kill interrupted
        if not self.directory.is_dir():
            return
        doomed = self.directory.with_name(f".{self.directory.name}.deleting-{uuid.uuid4().hex[:8]}")
        os.rename(self.directory, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
