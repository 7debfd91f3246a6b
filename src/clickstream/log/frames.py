"""Frames: how a batch of records is laid out in a segment file.

One `append` call writes one frame per partition (split if it would exceed `MAX_FRAME_BYTES`):

    header  24 bytes, little endian: magic b"CSL1", payload bytes (u32), base offset (i64),
            record count (u32), CRC-32 of the payload (u32)
    payload record lengths (count x u32), then the records' bytes back to back

The payload is exactly an Arrow binary array's offsets (after a cumulative sum) and data, so a
reader turns a frame into a `pa.BinaryArray` without copying a record. A frame is visible only once
all its bytes are in the file and its CRC matches: a reader can never see a torn record.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

MAGIC = b"CSL1"
HEADER = struct.Struct("<4sIqII")
HEADER_BYTES = HEADER.size
MAX_FRAME_BYTES = 16 << 20  # keeps Arrow's int32 offsets safe and a reader's reads bounded


@dataclass(frozen=True)
class FrameHeader:
    payload_bytes: int
    base_offset: int
    count: int
    crc: int

    @property
    def size(self) -> int:
        return HEADER_BYTES + self.payload_bytes


def encode(values: Sequence[bytes], base_offset: int) -> list[bytes]:
    """The frames holding `values`, numbered from `base_offset`, as buffers to write in order
    (`os.writev` writes them without joining them into one more copy)."""
    count = len(values)
    body = b"".join(values)
    total = len(body) + 4 * count
    if total > MAX_FRAME_BYTES and count > 1:
        half = count // 2
        return encode(values[:half], base_offset) + encode(values[half:], base_offset + half)
    prefix = np.fromiter(map(len, values), dtype="<u4", count=count).tobytes()
    crc = zlib.crc32(body, zlib.crc32(prefix))
    return [HEADER.pack(MAGIC, total, base_offset, count, crc), prefix, body]


def read_header(data: bytes | memoryview, pos: int) -> FrameHeader | None:
    """The header at `pos`, or None if fewer than a header's bytes are there or the magic is wrong."""
    if pos + HEADER_BYTES > len(data):
        return None
    magic, payload_bytes, base_offset, count, crc = HEADER.unpack_from(data, pos)
    if magic != MAGIC or payload_bytes < 4 * count:
        return None
    return FrameHeader(payload_bytes, base_offset, count, crc)


def crc_ok(data: bytes, pos: int, header: FrameHeader) -> bool:
    start = pos + HEADER_BYTES
    return zlib.crc32(memoryview(data)[start : start + header.payload_bytes]) == header.crc


def values_of(data: bytes, buffer: pa.Buffer, pos: int, header: FrameHeader) -> pa.BinaryArray:
    """The frame's records as a binary array over `buffer` (= `data` as an Arrow buffer)."""
    start = pos + HEADER_BYTES
    lengths = np.frombuffer(data, dtype="<u4", count=header.count, offset=start)
    offsets = np.zeros(header.count + 1, dtype=np.int32)
    np.cumsum(lengths, dtype=np.int32, out=offsets[1:])
    body = buffer.slice(start + 4 * header.count, header.payload_bytes - 4 * header.count)
    return pa.Array.from_buffers(pa.binary(), header.count, [None, pa.py_buffer(offsets), body])


def values_of_frames(data: bytes, buffer: pa.Buffer, frames: list[tuple[int, FrameHeader]]) -> pa.BinaryArray:
    """The records of several frames of `data` (at their positions) as one binary array: many
    small frames (one record per append) cost one array, not one each. One frame: no copy."""
    if len(frames) == 1:
        return values_of(data, buffer, *frames[0])
    lengths = np.concatenate(
        [np.frombuffer(data, dtype="<u4", count=h.count, offset=at + HEADER_BYTES) for at, h in frames]
    )
    view = memoryview(data)
    body = b"".join(view[at + HEADER_BYTES + 4 * h.count : at + h.size] for at, h in frames)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)  # a block is far below 2 GiB
    np.cumsum(lengths, dtype=np.int32, out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(body)])
