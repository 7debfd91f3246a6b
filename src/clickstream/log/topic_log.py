"""`TopicLog`: the embedded durable topic log, a directory that processes share without a server.

    <root>/<topic>/topic.json                 {"partitions": N, "format": 1}
    <root>/<topic>/<partition>/<base offset:020d>.log   segments of frames (see `frames`)
    <root>/<topic>/<partition>/.lock          flock of the partition's appenders
    <root>/<topic>/groups/<group>.json        committed offsets of a consumer group

Any number of processes may append to and read from the same root at once.
"""

from __future__ import annotations

import itertools
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from clickstream.log.errors import LogError
from clickstream.log.reader import LogReader
from clickstream.log.topics import (
    check_topic_name,
    ensure_topic,
    meta_version,
    partition_dir,
    read_partitions,
)
from clickstream.log.writer import PartitionWriter, WriterOptions


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of a key: stable across processes and runs (CRC-32, not Python's hash)."""
    return zlib.crc32(key) % partitions


class TopicLog:
    """Topics under `root`. Appends are safe from many processes; readers never block them.

    `sync`, `segment_bytes`, `retention_ms` and `retention_bytes` apply to this process's appends
    (see `WriterOptions`); `default_partitions` is used for topics created on first use.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        sync: str = "flush",
        segment_bytes: int = 64 << 20,
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
        default_partitions: int = 1,
    ) -> None:
        self.root = Path(root)
        self.options = WriterOptions(sync, segment_bytes, retention_ms, retention_bytes)
        self.default_partitions = default_partitions
        self._writers: dict[tuple[str, int], PartitionWriter] = {}
        self._dirs: dict[str, Path] = {}
        self._partitions: dict[str, tuple[tuple[int, int], int]] = {}  # topic -> (version, count)
        # Unkeyed batches go to one partition each, in turn; processes start at different ones.
        self._sticky = itertools.count(os.getpid())

    def topic_dir(self, topic: str) -> Path:
        directory = self._dirs.get(topic)
        if directory is None:
            directory = self._dirs[topic] = self.root / check_topic_name(topic)
        return directory

    def create_topic(self, topic: str, partitions: int = 1) -> int:
        """Create `topic` (idempotent), or grow it to `partitions`; return its partition count."""
        return ensure_topic(self.topic_dir(topic), partitions)

    def partitions(self, topic: str) -> int:
        """The topic's partition count (0 if it does not exist)."""
        return read_partitions(self.topic_dir(topic))

    def topics(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "topic.json").is_file())

    # --- appending ----------------------------------------------------------------------------

    def append(
        self,
        topic: str,
        values: Sequence[bytes],
        keys: Sequence[bytes | None] | None = None,
        partition: int | None = None,
    ) -> None:
        """Append records to `topic` (created on first use).

        Each record goes to `partition` if given, else to the partition of its key, else (no
        key) to this call's sticky partition. Returns once the records are written (and
        fsynced with sync='fsync'); a record is readable by then.
        """
        if not values:
            return
        if keys is not None and len(keys) != len(values):
            raise LogError(f"append: {len(values)} values but {len(keys)} keys")
        count = self._partition_count(topic)
        if partition is not None:
            if not 0 <= partition < count:
                raise LogError(f"topic '{topic}' has no partition {partition} (it has {count})")
            self._writer(topic, partition).append(values)
            return
        sticky = next(self._sticky) % count
        if keys is None or count == 1:
            self._writer(topic, sticky).append(values)
            return
        for target, batch in by_partition(values, keys, count, sticky).items():
            self._writer(topic, target).append(batch)

    def _partition_count(self, topic: str) -> int:
        """The partition count, re-read when the topic's metadata changed (another process
        created or grew it): one `stat` per call."""
        directory = self.topic_dir(topic)
        version = meta_version(directory)
        cached = self._partitions.get(topic)
        if cached is not None and cached[0] == version:
            return cached[1]
        count = read_partitions(directory) or ensure_topic(directory, self.default_partitions)
        self._partitions[topic] = (meta_version(directory), count)
        return count

    def _writer(self, topic: str, partition: int) -> PartitionWriter:
        writer = self._writers.get((topic, partition))
        if writer is None:
            directory = partition_dir(self.topic_dir(topic), partition)
            writer = self._writers[(topic, partition)] = PartitionWriter(directory, self.options)
        return writer

    # --- reading ------------------------------------------------------------------------------

    def open_reader(
        self,
        topic: str,
        group: str | None = None,
        start: str | Mapping[int, int] = "earliest",
        stop: str | Mapping[int, int] | None = None,
        corrupt: str = "fail",
    ) -> LogReader:
        """A reader of `topic` (created if missing, so a reader may start before any writer).

        `start`: 'earliest', 'latest', 'committed' (the group's offsets; partitions without
        one from the earliest), or offsets per partition. `stop`: None (read for ever),
        'latest' (the end offsets now: the reader is bounded), or offsets per partition.
        `corrupt`: what a damaged frame does, 'fail' or 'skip' (see `log.damage`).
        """
        self._partition_count(topic)
        return LogReader(self.topic_dir(topic), group, start, stop, corrupt)

    def end_offsets(self, topic: str) -> dict[int, int]:
        with self.open_reader(topic) as reader:
            return reader.end_offsets()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def __enter__(self) -> TopicLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def by_partition(
    values: Sequence[bytes], keys: Sequence[bytes | None], count: int, sticky: int
) -> dict[int, list[bytes]]:
    """The records per partition: a keyed one by its key's hash, the others to `sticky`."""
    buckets: dict[int, list[bytes]] = {}
    for value, key in zip(values, keys, strict=True):
        target = sticky if key is None else zlib.crc32(key) % count
        bucket = buckets.get(target)
        if bucket is None:
            bucket = buckets[target] = []
        bucket.append(value)
    return buckets
