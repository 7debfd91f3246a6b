"""Reading a topic: a cursor per partition, polled fairly, with offsets a group can commit.

`poll` returns a `pa.Table` (`partition` int32, `offset` int64, `value` binary), rows of one
partition together and in offset order. Records are handed out once per reader; a reader that
restarts from its group's committed offsets sees again only what it read after its last commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from clickstream.log.cursor import Chunk, PartitionCursor
from clickstream.log.damage import CORRUPT_POLICIES, CorruptFrame
from clickstream.log.errors import LogError
from clickstream.log.groups import GroupOffsets
from clickstream.log.topics import meta_version, partition_dir, read_partitions

SCHEMA = pa.schema([("partition", pa.int32()), ("offset", pa.int64()), ("value", pa.binary())])
START_MODES = ("earliest", "latest", "committed")
Offsets = Mapping[int, int]


class LogReader:
    """Reads one topic from `start` ('earliest', 'latest', 'committed' or offsets per partition)
    up to `stop` (None: for ever; 'latest': the end offsets at open; or offsets per partition)."""

    def __init__(
        self,
        topic_dir: Path,
        group: str | None = None,
        start: str | Offsets = "earliest",
        stop: str | Offsets | None = None,
        corrupt: str = "fail",
    ) -> None:
        if corrupt not in CORRUPT_POLICIES:
            choices = ", ".join(CORRUPT_POLICIES)
            raise LogError(f"corrupt-frame policy '{corrupt}' is unknown; use one of {choices}")
        self.corrupt = corrupt
        if isinstance(start, str) and start not in START_MODES:
            raise LogError(
                f"start '{start}' is unknown; use one of {', '.join(START_MODES)} or offsets per partition"
            )
        if isinstance(stop, str) and stop != "latest":
            raise LogError(f"stop '{stop}' is unknown; use 'latest' or offsets per partition")
        if start == "committed" and group is None:
            raise LogError("start='committed' needs a group")
        self.topic_dir = topic_dir
        self.topic = topic_dir.name
        self.group = GroupOffsets(topic_dir, group) if group is not None else None
        self.cursors: dict[int, PartitionCursor] = {}
        self._start, self._stop = start, stop
        self._meta_version = (-1, -1)
        self._stops: Offsets | None = None
        self._refresh()
        if stop == "latest":
            self._stops = self.end_offsets()
        elif stop is not None and not isinstance(stop, str):
            self._stops = dict(stop)
        for partition, cursor in self.cursors.items():
            cursor.stop = self._stop_of(partition)
        self._turn = 0

    # --- partitions ---------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Pick up partitions added since the last look (the topic grew, or was just created)."""
        version = meta_version(self.topic_dir)
        if version == self._meta_version:
            return
        self._meta_version = version
        count = read_partitions(self.topic_dir)
        new = [p for p in range(count) if p not in self.cursors]
        latest = self._start == "latest" and not self.cursors  # later partitions are all new
        given = self._given_offsets() if new else {}
        for partition in new:
            cursor = PartitionCursor(
                partition_dir(self.topic_dir, partition),
                given.get(partition, 0),
                self._stop_of(partition),
                self.corrupt,
            )
            if latest:
                cursor.seek(cursor.end_offset())
            self.cursors[partition] = cursor

    def _given_offsets(self) -> Offsets:
        if self._start == "committed":
            return self.group.load()
        return {} if isinstance(self._start, str) else self._start

    def _stop_of(self, partition: int) -> int | None:
        if self._stops is None:
            return None if self._stop is None else 0  # a partition born after a bounded start
        return self._stops.get(partition, 0)

    @property
    def partitions(self) -> list[int]:
        return sorted(self.cursors)

    # --- reading ------------------------------------------------------------------------------

    def poll(self, max_records: int = 10_000) -> pa.Table:
        """Up to `max_records` records available now (maybe none), shared fairly by partitions."""
        self._refresh()
        cursors = self._rotated()
        if not cursors or max_records <= 0:
            return SCHEMA.empty_table()
        chunks: dict[int, list[Chunk]] = {p: [] for p, _ in cursors}
        remaining = max_records
        share = -(-max_records // len(cursors))
        for limit in (share, max_records):  # an even share first, then what others left over
            for partition, cursor in cursors:
                if remaining <= 0:
                    break
                got = cursor.read(min(limit, remaining))
                chunks[partition].extend(got)
                remaining -= sum(len(values) for _, values in got)
        return _table(chunks)

    def _rotated(self) -> list[tuple[int, PartitionCursor]]:
        items = [(p, c) for p, c in sorted(self.cursors.items()) if not c.done]
        if not items:
            return []
        self._turn = (self._turn + 1) % len(items)
        return items[self._turn :] + items[: self._turn]

    def skipped(self) -> list[CorruptFrame]:
        """Damaged frames skipped since the last call (policy 'skip'), in partition order."""
        frames = []
        for _, cursor in sorted(self.cursors.items()):
            frames.extend(cursor.skipped)
            cursor.skipped = []
        return frames

    def finished(self) -> bool:
        """True once a reader with a `stop` has read everything up to it."""
        self._refresh()
        return self._stop is not None and all(c.done for c in self.cursors.values())

    # --- positions ----------------------------------------------------------------------------

    def position(self) -> dict[int, int]:
        """The next offset this reader will return, per partition."""
        return {p: c.next_offset for p, c in sorted(self.cursors.items())}

    def seek(self, partition: int, offset: int) -> None:
        """Read `partition` from `offset` on (0, or anything before the first kept record, means
        from the beginning of what retention kept)."""
        self._refresh()
        if partition not in self.cursors:
            raise LogError(f"topic '{self.topic}' has no partition {partition}")
        self.cursors[partition].seek(offset)

    @property
    def stops(self) -> Offsets | None:
        """Where a bounded reader stops, per partition."""
        return None if self._stops is None else dict(self._stops)

    @property
    def turn(self) -> int:
        """Which partition the next poll reads first."""
        return self._turn

    def restore(self, offsets: Offsets, stops: Offsets | None, turn: int) -> None:
        """Continue from a position a checkpoint stored: the next offsets, the stops of a
        bounded reader (those of its first start, not the end now) and the partition turn."""
        if stops is not None:
            self._stops = dict(stops)
            for partition, cursor in self.cursors.items():
                cursor.stop = self._stop_of(partition)
        for partition, offset in offsets.items():
            self.seek(partition, offset)
        self._turn = turn

    def seek_to_beginning(self) -> None:
        for cursor in self.cursors.values():
            cursor.seek(cursor.earliest())

    def end_offsets(self) -> dict[int, int]:
        """Per partition, the offset the next appended record will get."""
        self._refresh()
        return {p: c.end_offset() for p, c in sorted(self.cursors.items())}

    def commit(self, offsets: Offsets | None = None) -> None:
        """Store `offsets` (default: this reader's position) as the group's committed offsets."""
        if self.group is None:
            raise LogError(f"reader of topic '{self.topic}' has no group to commit offsets for")
        committed = self.group.load()
        committed.update(self.position() if offsets is None else offsets)
        self.group.save(committed)

    def committed(self) -> dict[int, int]:
        return self.group.load() if self.group is not None else {}

    def close(self) -> None:
        for cursor in self.cursors.values():
            cursor.close()

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _table(chunks: dict[int, list[Chunk]]) -> pa.Table:
    parts, offsets, values = [], [], []
    for partition, items in sorted(chunks.items()):
        for first, array in items:
            parts.append(np.full(len(array), partition, dtype=np.int32))
            offsets.append(np.arange(first, first + len(array), dtype=np.int64))
            values.append(array)
    if not values:
        return SCHEMA.empty_table()
    return pa.Table.from_arrays(
        [
            pa.array(np.concatenate(parts)),
            pa.array(np.concatenate(offsets)),
            pa.chunked_array(values, pa.binary()),
        ],
        schema=SCHEMA,
    )
