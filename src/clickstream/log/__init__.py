"""The embedded durable topic log: partitioned topics in a directory, shared by processes.

The default bus between simulator processes and the engine: no server, appends from many
processes at once (a file lock per partition), readers that never lock, and records that are
either whole or invisible (length-prefixed, checksummed frames).
"""

from clickstream.log.errors import LogCorruptionError, LogError
from clickstream.log.reader import SCHEMA, LogReader
from clickstream.log.topic_log import TopicLog, partition_for
from clickstream.log.writer import WriterOptions

__all__ = [
    "SCHEMA",
    "LogCorruptionError",
    "LogError",
    "LogReader",
    "TopicLog",
    "WriterOptions",
    "partition_for",
]
