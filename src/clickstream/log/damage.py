"""Damaged frames: telling them from frames still being written, and stepping over them.

A frame being written is never complete: an appender writes header, lengths and records in one
`writev`, and the file only ever shows bytes already written. So a frame whose bytes are all in
the file but whose header or CRC does not check out was damaged after it was written (a flipped
byte, a bad disk). Waiting for it would wait for ever; instead it is reported by its topic,
partition and offset and, by the reader's policy (`CORRUPT_POLICIES`), the job fails with that
message or the frame's records are skipped (and handed to the caller, for its dead letters).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from clickstream.log.frames import HEADER_BYTES, MAGIC, FrameHeader, crc_ok, read_header, values_of
from clickstream.log.segments import ScanResult, scan, segment_name

CORRUPT_POLICIES = ("fail", "skip")


@dataclass(frozen=True)
class CorruptFrame:
    """Records a reader skipped: offsets `first` to `end` (exclusive) of a partition."""

    topic: str
    partition: int
    first: int
    end: int
    reason: str
    records: list[bytes]  # their bytes when the frame still says where each one is, else empty

    def describe(self) -> str:
        return (
            f"topic '{self.topic}', partition {self.partition}, offset {self.first}: corrupt frame "
            f"({self.reason})"
        )


@dataclass(frozen=True)
class Damage:
    """A damaged frame at byte `at` of a segment, and where reading can go on after it."""

    frame: CorruptFrame
    resume_at: int | None  # byte position of the next good frame (None: none yet in the file)
    resume_offset: int  # its offset


def find_damage(fd: int, directory: Path, at: int, offset: int) -> Damage | None:
    """The damage at byte `at` (a frame boundary where `offset` should start), or None if the
    bytes there are only a frame not yet complete. Read again from the file, so a frame that an
    appender rewrote meanwhile (after cutting off a torn tail) is not taken for damage."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, HEADER_BYTES, at)
    if len(head) < HEADER_BYTES:
        return None  # a header being written
    header = read_header(head, 0)
    if header is not None and header.base_offset == offset:
        if at + header.size > size:
            if _lengths_agree(fd, at, header, size):
                return None  # a frame being written
            return _resync(fd, directory, at, offset, size, "frame length does not match its records")
        data = os.pread(fd, header.size, at)
        if crc_ok(data, 0, header):
            return None  # whole now: the caller reads it on its next pass
        end = offset + header.count
        frame = _frame(directory, offset, end, "CRC mismatch", _records(data, header))
        return Damage(frame, at + header.size, end)
    reason = "bad frame header" if header is None else f"frame header says offset {header.base_offset}"
    return _resync(fd, directory, at, offset, size, reason)


def scan_past_damage(
    fd: int, directory: Path, pos: int, offset: int, verify_last: bool = False
) -> ScanResult:
    """`segments.scan`, going on past damaged frames that have valid frames after them: their
    offsets are taken (readers report them by their policy), so an appender must not cut the
    segment there and reuse them. Damage at the very end is left to the caller, as a torn tail."""
    result = scan(fd, pos, offset, verify_last)
    while not result.clean:
        damage = find_damage(fd, directory, result.end, result.next_offset)
        if damage is None or damage.resume_at is None or damage.resume_at >= os.fstat(fd).st_size:
            break
        result = scan(fd, damage.resume_at, damage.resume_offset, verify_last)
    return result


def _resync(fd: int, directory: Path, at: int, offset: int, size: int, reason: str) -> Damage:
    """The header itself is damaged, so the frame's length is unknown: look for the next frame
    that checks out (its magic, a later offset, its CRC) further on in the segment."""
    data = os.pread(fd, size - at, at)
    start = 1
    while (found := data.find(MAGIC, start)) >= 0:
        header = read_header(data, found)
        if (
            header is not None
            and header.base_offset >= offset
            and found + header.size <= len(data)
            and crc_ok(data, found, header)
        ):
            frame = _frame(directory, offset, header.base_offset, reason, [])
            return Damage(frame, at + found, header.base_offset)
        start = found + 1
    return Damage(_frame(directory, offset, offset, reason, []), None, offset)


def _lengths_agree(fd: int, at: int, header: FrameHeader, size: int) -> bool:
    """Whether the record lengths after a header add up to its payload (True while they are not
    all written yet: an appender writes them with the header, so the reader sees them soon)."""
    if at + HEADER_BYTES + 4 * header.count > size:
        return True
    lengths = np.frombuffer(os.pread(fd, 4 * header.count, at + HEADER_BYTES), dtype="<u4")
    return int(lengths.sum(dtype=np.int64)) == header.payload_bytes - 4 * header.count


def _records(data: bytes, header: FrameHeader) -> list[bytes]:
    """The frame's records, if its lengths still add up to its payload."""
    lengths = np.frombuffer(data, dtype="<u4", count=header.count, offset=HEADER_BYTES)
    if int(lengths.sum(dtype=np.int64)) != header.payload_bytes - 4 * header.count:
        return []
    return values_of(data, pa.py_buffer(data), 0, header).to_pylist()


def _frame(directory: Path, first: int, end: int, reason: str, records: list[bytes]) -> CorruptFrame:
    return CorruptFrame(directory.parent.name, int(directory.name), first, end, reason, records)


def lost_to_next_segment(directory: Path, first: int, end: int) -> CorruptFrame:
    """Offsets of a sealed segment past its last valid frame, up to the next segment's base."""
    return _frame(directory, first, end, "no valid frame up to the next segment", [])


def within(frame: CorruptFrame, start: int, stop: int | None) -> CorruptFrame | None:
    """The part of `frame` from `start` (the reader's next offset) to `stop`, if any."""
    first, end = max(frame.first, start), min(frame.end, stop if stop is not None else frame.end)
    if end <= first:
        return None
    records = frame.records[first - frame.first : end - frame.first] if frame.records else []
    return CorruptFrame(frame.topic, frame.partition, first, end, frame.reason, records)


def corrupt_message(frame: CorruptFrame, directory: Path, segment: int, at: int) -> str:
    return (
        f"{frame.describe()} at byte {at} of {directory / segment_name(segment)}; set the "
        "source's 'scan.corrupt-frame.policy' = 'skip' to send its records to the dead letters "
        "and go on"
    )
