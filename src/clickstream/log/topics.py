"""Topic metadata: `<root>/<topic>/topic.json` holds the partition count.

A topic is created on first use; its partition count can grow (as `kafka-topics --alter` does)
but never shrink. Readers notice new partitions by the file's modification time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from clickstream.log.errors import LogError
from clickstream.log.files import file_lock, read_json, write_atomically

META_FILE = "topic.json"
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def check_topic_name(topic: str) -> str:
    if not _TOPIC_NAME.match(topic) or topic in (".", ".."):
        raise LogError(
            f"'{topic}' is not a valid topic name: use letters, digits, '.', '_' and '-' (at most 200)"
        )
    return topic


def partition_dir(topic_dir: Path, partition: int) -> Path:
    return topic_dir / str(partition)


def read_partitions(topic_dir: Path) -> int:
    """The topic's partition count; 0 if the topic does not exist."""
    content = read_json(topic_dir / META_FILE)
    return int(content["partitions"]) if content else 0


def meta_version(topic_dir: Path) -> tuple[int, int]:
    """Changes whenever the metadata is rewritten (a rename gives the file a new inode)."""
    try:
        stat = os.stat(topic_dir / META_FILE)
    except FileNotFoundError:
        return (0, 0)
    return (stat.st_ino, stat.st_mtime_ns)


def ensure_topic(topic_dir: Path, partitions: int) -> int:
    """Create the topic with `partitions` partitions, or grow it to that many; return the count.

    Several processes may race to create a topic: a lock file serializes them, and the metadata
    is written only once every partition directory exists.
    """
    if partitions < 1:
        raise LogError(f"a topic needs at least one partition, got {partitions}")
    current = read_partitions(topic_dir)
    if current >= partitions:
        return current
    topic_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(topic_dir / ".topic.lock"):
        current = read_partitions(topic_dir)
        if current >= partitions:
            return current
        for partition in range(partitions):
            partition_dir(topic_dir, partition).mkdir(exist_ok=True)
        write_atomically(topic_dir / META_FILE, {"partitions": partitions, "format": 1})
    return partitions
