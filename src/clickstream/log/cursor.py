"""Reading one partition: frames read in blocks and handed out as Arrow arrays.

Readers take no locks. A cursor only hands out frames that are complete, carry the offset it
expects and match their CRC, so a frame being written (or torn by a killed appender) stays
invisible until it is whole (or cut off and rewritten). A cursor moves to the next segment once it
has passed every offset before that segment's base offset.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from clickstream.log.damage import (
    CorruptFrame,
    corrupt_message,
    find_damage,
    lost_to_next_segment,
    scan_past_damage,
    within,
)
from clickstream.log.errors import LogCorruptionError
from clickstream.log.frames import FrameHeader, crc_ok, read_header, values_of_frames
from clickstream.log.segments import list_segments, segment_name

_BLOCK = 4 << 20
Chunk = tuple[int, pa.BinaryArray]  # (offset of the first record, records)


class PartitionCursor:
    """The read position in one partition: `next_offset` is the next record to hand out.

    `corrupt`: what a damaged frame does (`damage.CORRUPT_POLICIES`): 'fail' raises
    `LogCorruptionError`, 'skip' steps over it and keeps it in `skipped` for the caller."""

    def __init__(
        self, directory: Path, offset: int = 0, stop: int | None = None, corrupt: str = "fail"
    ) -> None:
        self.directory = directory
        self.stop = stop
        self.corrupt = corrupt
        self.skipped: list[CorruptFrame] = []
        self._fd: int | None = None
        self._tail: tuple[int, int, int, int] | None = None  # (segment, fd, byte pos, offset)
        self.seek(offset)

    def seek(self, offset: int) -> None:
        """Position at `offset`; the segment holding it is found (and scanned) on the next read."""
        self.next_offset = offset
        self._pending: Chunk | None = None
        self._close_segment()

    def earliest(self) -> int:
        segments = list_segments(self.directory)
        return segments[0] if segments else 0

    def end_offset(self) -> int:
        """The offset after the last complete frame (the next offset an appender will use)."""
        segments = list_segments(self.directory)
        if not segments:
            return 0
        if self._tail is None or self._tail[0] != segments[-1]:
            self._close_tail()
            fd = os.open(self.directory / segment_name(segments[-1]), os.O_RDONLY)
            self._tail = (segments[-1], fd, 0, segments[-1])
        base, fd, pos, offset = self._tail
        result = scan_past_damage(fd, self.directory, pos, offset)
        self._tail = (base, fd, result.end, result.next_offset)
        return result.next_offset

    @property
    def done(self) -> bool:
        return self.stop is not None and self.next_offset >= self.stop

    def read(self, budget: int) -> list[Chunk]:
        """Up to `budget` records from `next_offset` on, as they are available now."""
        if self.stop is not None:
            budget = min(budget, self.stop - self.next_offset)
        out: list[Chunk] = []
        if self._pending is not None and budget > 0:
            budget -= self._take(self._pending, budget, out)
        while budget > 0:
            if self._fd is None and not self._open_segment():
                break
            taken = self._read_block(budget, out)
            if taken is None:
                if self._step_over_damage():
                    continue
                if not self._advance():
                    break
                continue
            budget -= taken
        return out

    def _take(self, chunk: Chunk, budget: int, out: list[Chunk]) -> int:
        first, values = chunk
        taken = values.slice(0, budget)
        out.append((first, taken))
        self.next_offset = first + len(taken)
        rest = values.slice(len(taken))
        self._pending = (self.next_offset, rest) if len(rest) else None
        return len(taken)

    def _open_segment(self) -> bool:
        """Open the segment holding `next_offset`; False if the partition has no segment yet."""
        while segments := list_segments(self.directory):
            # data before the first segment was deleted by retention: go on from what is left
            self.next_offset = max(self.next_offset, segments[0])
            base = max(b for b in segments if b <= self.next_offset)
            try:
                self._fd = os.open(self.directory / segment_name(base), os.O_RDONLY)
            except FileNotFoundError:  # deleted by retention since the listing: look again
                continue
            self._segment, self._pos, self._scanned, self._retried = base, 0, base, False
            return True
        return False

    def _read_block(self, budget: int, out: list[Chunk]) -> int | None:
        """Hand out records of the complete frames in the next block; None if there were none."""
        data = self._next_block()
        if data is None:
            return None
        frames: list[tuple[int, FrameHeader]] = []  # frames with records at or after next_offset
        at, available, found = 0, 0, False
        while available < budget:
            header = read_header(data, at)
            if not self._visible(data, at, header):
                break
            found, self._retried = True, False
            end = header.base_offset + header.count
            if end > self.next_offset:
                frames.append((at, header))
                available += end - max(self.next_offset, header.base_offset)
            at += header.size
            self._pos += header.size
            self._scanned = end
        if not frames:
            return 0 if found else None
        first = frames[0][1].base_offset
        values = values_of_frames(data, pa.py_buffer(data), frames)
        skip = max(self.next_offset - first, 0)  # > 0 after a seek into the first frame
        return self._take((first + skip, values.slice(skip)), budget, out)

    def _next_block(self) -> bytes | None:
        """The bytes from the read position on: a block, or the whole next frame if larger."""
        size = os.fstat(self._fd).st_size
        if size <= self._pos:
            return None
        data = os.pread(self._fd, min(size - self._pos, _BLOCK), self._pos)
        header = read_header(data, 0)
        if header is not None and header.size > len(data) and self._pos + header.size <= size:
            data = os.pread(self._fd, header.size, self._pos)
        return data

    def _visible(self, data: bytes, at: int, header: FrameHeader | None) -> bool:
        return (
            header is not None
            and at + header.size <= len(data)
            and header.base_offset == self._scanned
            and crc_ok(data, at, header)
        )

    def _step_over_damage(self) -> bool:
        """At a frame that is not visible: if it is damaged (not merely being written), fail or
        skip it by the policy. True if reading can go on after it."""
        assert self._fd is not None  # called while a segment is open
        damage = find_damage(self._fd, self.directory, self._pos, self._scanned)
        if damage is None:
            return False
        if self.corrupt == "fail":
            raise LogCorruptionError(corrupt_message(damage.frame, self.directory, self._segment, self._pos))
        if damage.resume_at is None:
            return False  # nothing valid after it in this segment: `_advance` goes on from the next
        self._skip(damage.frame)
        self._pos, self._scanned = damage.resume_at, damage.resume_offset
        return True

    def _skip(self, frame: CorruptFrame) -> None:
        part = within(frame, self.next_offset, self.stop)
        if part is not None:
            self.skipped.append(part)
        self.next_offset = max(self.next_offset, frame.end)
        self._pending = None

    def _advance(self) -> bool:
        """At the end of the visible frames: move to the next segment once this one is done."""
        later = [b for b in list_segments(self.directory) if b > self._segment]
        if not later:
            return False
        if self._scanned < later[0]:
            # Sealed after the block was read, so its last frames are whole now: read once more.
            # Nothing new on that second read means a damaged frame, not one being written.
            if not self._retried:
                self._retried = True
                return True
            lost = lost_to_next_segment(self.directory, self._scanned, later[0])
            if self.corrupt == "fail":
                raise LogCorruptionError(corrupt_message(lost, self.directory, self._segment, self._pos))
            self._skip(lost)
        self.next_offset = max(self.next_offset, later[0])
        self._close_segment()
        return self._open_segment()

    def _close_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _close_tail(self) -> None:
        if self._tail is not None:
            os.close(self._tail[1])
            self._tail = None

    def close(self) -> None:
        self._close_segment()
        self._close_tail()
