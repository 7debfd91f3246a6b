"""Appending to one partition, safely from many processes at once.

An appender holds an exclusive `flock` on the partition's `.lock` file while it writes, so frames
of different processes never interleave. Under the lock it first checks the active segment's tail:
if the file is longer than the frames it knows, another process appended (the new frames are
walked) or an appender died mid-write (the short tail is cut off with `ftruncate`). Readers never
take the lock; they rely on frames being complete and checksummed instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from clickstream.log.damage import scan_past_damage
from clickstream.log.errors import LogError
from clickstream.log.frames import encode
from clickstream.log.segments import list_segments, segment_name

SYNC_MODES = ("flush", "fsync")


@dataclass(frozen=True)
class WriterOptions:
    """How appenders of this process write.

    `sync`: 'flush' hands each append call's frames to the OS before returning (survives the
    process being killed, not a power loss); 'fsync' also waits for the disk (survives both).
    `segment_bytes`: the active segment is sealed and a new one started past this size.
    `retention_ms` / `retention_bytes`: sealed segments older than this, or beyond this total
    size per partition, are deleted when a segment is rolled (None: kept forever).
    """

    sync: str = "flush"
    segment_bytes: int = 64 << 20
    retention_ms: int | None = None
    retention_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.sync not in SYNC_MODES:
            raise LogError(f"sync mode '{self.sync}' is unknown; use one of {', '.join(SYNC_MODES)}")
        if self.segment_bytes <= 0:
            raise LogError(f"segment_bytes must be positive, got {self.segment_bytes}")


class PartitionWriter:
    def __init__(self, directory: Path, options: WriterOptions) -> None:
        self.directory = directory
        self.options = options
        directory.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._open()

    def _open(self) -> None:
        # Called again in a forked child: an inherited flock fd shares the parent's lock, so
        # parent and child would not exclude each other through it.
        self.close()
        self._pid = os.getpid()
        self._mutex = threading.Lock()
        self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        self._base = -1  # base offset of the open segment
        self._end = 0  # byte position after its last valid frame
        self._next = 0  # next offset to assign

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if os.getpid() != self._pid:
            self._open()
        with self._mutex:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def append(self, values: Sequence[bytes]) -> int:
        """Write `values` as the partition's next records; return the offset of the first."""
        if not values:
            return -1
        with self._locked():
            sealed = self._sync_tail()
            if sealed or self._end >= self.options.segment_bytes:
                self._roll()
            self._write(encode(values, self._next))
            first, self._next = self._next, self._next + len(values)
            return first

    def _sync_tail(self) -> bool:
        """Bring `_end`/`_next` up to date with the active segment, cutting off a torn tail.
        True if that segment is sealed (its roller died before starting the next one)."""
        info = os.fstat(self._fd) if self._fd is not None else None
        if info is None or _sealed(info):
            # First append, or another appender rolled: find the newest segment. Sealed
            # segments are read-only, so one fstat per append notices a roll (no listing).
            segments = list_segments(self.directory)
            self._open_segment(segments[-1] if segments else 0)
            info = os.fstat(self._fd)
        if info.st_size != self._end:
            self._scan_tail(info.st_size)
        return _sealed(info)

    def _scan_tail(self, size: int) -> None:
        # From the known end when others appended; from the start (checking the last frame's
        # CRC) when the segment is new to this appender or shorter than it thought.
        verify = size < self._end or self._end == 0
        if size < self._end:
            self._end, self._next = 0, self._base
        assert self._fd is not None  # `_sync_tail` opened the segment
        result = scan_past_damage(self._fd, self.directory, self._end, self._next, verify_last=verify)
        if not result.clean:
            os.ftruncate(self._fd, result.end)
        self._end, self._next = result.end, result.next_offset

    def _open_segment(self, base: int) -> None:
        self.close_segment()
        path = self.directory / segment_name(base)
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except PermissionError:  # sealed (read-only): it is only scanned, then rolled
            self._fd = os.open(path, os.O_RDONLY)
        self._base, self._end, self._next = base, 0, base

    def _roll(self) -> None:
        # Seal first, then start the next segment: an appender that still holds the old one
        # sees it sealed and moves on; a crash in between leaves a sealed newest segment,
        # which the next appender rolls.
        os.fchmod(self._fd, 0o444)
        self._open_segment(self._next)
        if self.options.sync == "fsync":
            _fsync_dir(self.directory)
        self._apply_retention()

    def _write(self, parts: list[bytes]) -> None:
        size = sum(map(len, parts))
        try:
            written = os.writev(self._fd, parts)
            if written < size:  # rare (a signal, a huge write): finish with plain writes
                rest = memoryview(b"".join(parts))[written:]
                while rest:
                    rest = rest[os.write(self._fd, rest) :]
            if self.options.sync == "fsync":
                os.fdatasync(self._fd)
        except OSError:
            # e.g. a full disk: leave no partial frame behind for the next appender to find
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._end)
            raise
        self._end += size

    def _apply_retention(self) -> None:
        retention_ms, retention_bytes = self.options.retention_ms, self.options.retention_bytes
        if retention_ms is None and retention_bytes is None:
            return
        paths = [self.directory / segment_name(b) for b in list_segments(self.directory)]
        sizes = [p.stat().st_size for p in paths]
        total, cutoff = sum(sizes), time.time() - (retention_ms or 0) / 1000
        for path, size in zip(paths[:-1], sizes[:-1], strict=True):  # never the active segment
            too_big = retention_bytes is not None and total > retention_bytes
            too_old = retention_ms is not None and path.stat().st_mtime < cutoff
            if not (too_big or too_old):
                break
            path.unlink(missing_ok=True)
            total -= size

    def close_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        self.close_segment()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _sealed(info: os.stat_result) -> bool:
    return not info.st_mode & stat.S_IWUSR


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
