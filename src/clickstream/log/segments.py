"""Segment files of one partition: `<base offset, 20 digits>.log`, each a run of frames.

A partition directory holds segments in offset order; the one with the highest base offset is the
active one, the only one appended to. Older segments are sealed and may be deleted whole by
retention. `scan` walks frame headers to find where the valid frames of a segment end.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from clickstream.log.frames import HEADER_BYTES, crc_ok, read_header

SUFFIX = ".log"
_NAME = re.compile(r"^(\d{20})\.log$")
_SCAN_BLOCK = 1 << 20


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}{SUFFIX}"


def list_segments(directory: Path) -> list[int]:
    """Base offsets of the partition's segments, oldest first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(_NAME.match, names) if m)


@dataclass
class ScanResult:
    end: int  # byte position after the last valid frame
    next_offset: int  # offset the next frame will have
    last_frame: int | None  # byte position of the last valid frame
    clean: bool  # the file holds nothing past `end`


def scan(fd: int, pos: int, next_offset: int, verify_last: bool = False) -> ScanResult:
    """Walk frames from `pos` (a frame boundary holding `next_offset`) to the end of the file.

    Only headers and lengths are checked (a killed appender leaves a short tail, never wrong
    bytes); with `verify_last` the last frame's CRC is checked too, which catches the garbage a
    power loss can leave. Reads in blocks, so small frames do not cost a system call each.
    """
    size = os.fstat(fd).st_size
    last: int | None = None
    while pos < size:
        block = os.pread(fd, min(_SCAN_BLOCK, size - pos), pos)
        header = read_header(block, 0)
        if header is None or header.base_offset != next_offset or pos + header.size > size:
            break
        at = 0
        while header is not None and header.base_offset == next_offset and pos + header.size <= size:
            last, pos, next_offset = pos, pos + header.size, next_offset + header.count
            at += header.size
            header = read_header(block, at)
    if verify_last and last is not None:
        header = read_header(os.pread(fd, HEADER_BYTES, last), 0)
        assert header is not None  # the walk above accepted it
        if not crc_ok(os.pread(fd, header.size, last), 0, header):
            return ScanResult(last, header.base_offset, None, False)
    return ScanResult(pos, next_offset, last, pos == size)
