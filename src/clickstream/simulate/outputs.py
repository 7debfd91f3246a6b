"""Where generated records go: JSON Lines or CSV files, stdout, the embedded log, or Kafka.

One output serves every topic of a generator. Single-topic generators write to the target as
named; multi-topic ones write each topic beside it: `out.jsonl` -> `out.<topic>.jsonl`,
`log:<prefix>` -> log topic `<prefix><topic>`, and `kafka://host:port/<prefix>` -> Kafka topic
`<prefix><topic>` (see `kafka_output`). `targets` says where each topic went, for the command to
print. An output that cannot be opened (a directory in the way, no permission) raises `CommandError`.
"""

from __future__ import annotations

import csv
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO, Any

from clickstream.errors import CommandError
from clickstream.paths import default_log_dir
from clickstream.simulate.base import Record, to_line

LOG_PREFIX = "log:"
KAFKA_PREFIX = "kafka://"
LOG_BATCH = 1_000  # records per append: one call per record would dominate the cost


class BaseOutput(ABC):
    """Writes records; `targets` says where each topic went, `location` where they all are (the
    log's directory), if anywhere."""

    def __init__(self) -> None:
        self.targets: dict[str, str] = {}
        self.location: str | None = None

    @abstractmethod
    def write(self, record: Record) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class StdoutOutput(BaseOutput):
    """Every topic's lines, interleaved in arrival order (the records tell their kind apart)."""

    def __init__(self, topics: list[str]) -> None:
        super().__init__()
        self.stream = getattr(sys.stdout, "buffer", None)
        self.targets = dict.fromkeys(topics, "-")

    def write(self, record: Record) -> None:
        line = to_line(record.value) + b"\n"
        if self.stream is not None:
            self.stream.write(line)
        else:  # a text-only stdout (captured in tests, some IDEs)
            sys.stdout.write(line.decode())

    def close(self) -> None:
        sys.stdout.flush()
        if self.stream is not None:
            self.stream.flush()


def topic_path(out: Path, topic: str, topics: list[str]) -> Path:
    return out if len(topics) == 1 else out.with_name(f"{out.stem}.{topic}{out.suffix or '.jsonl'}")


def create_file(path: Path, text: bool = False) -> IO[Any]:
    """`path` opened for writing, its directory created if missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if text:
            return path.open("w", newline="", buffering=1 << 20)
        return path.open("wb", buffering=1 << 20)
    except OSError as error:
        raise _cannot_write(path, error) from None


def _cannot_write(path: Path, error: OSError) -> CommandError:
    if isinstance(error, IsADirectoryError):
        fix = f"it is a directory: give a file name, such as {path / 'events.jsonl'}"
    elif isinstance(error, NotADirectoryError | FileExistsError):
        fix = f"{error.filename} is a file, not a directory: choose another path"
    elif isinstance(error, PermissionError):
        fix = "permission denied: choose a directory you can write to"
    else:
        fix = f"{(error.strerror or str(error)).lower()}: choose another path"
    return CommandError(f"cannot write --out {path}: {fix}")


class JsonLinesOutput(BaseOutput):
    def __init__(self, out: Path, topics: list[str]) -> None:
        super().__init__()
        self.files: dict[str, IO[bytes]] = {}
        for topic in topics:
            path = topic_path(out, topic, topics)
            self.files[topic] = create_file(path)
            self.targets[topic] = str(path)

    def write(self, record: Record) -> None:
        self.files[record.topic].write(to_line(record.value) + b"\n")

    def close(self) -> None:
        for file in self.files.values():
            file.close()


class CsvOutput(BaseOutput):
    """A header from each topic's first record; a malformed record goes in as its raw text."""

    def __init__(self, out: Path, topics: list[str]) -> None:
        super().__init__()
        self.files: dict[str, IO[str]] = {}
        self.writers: dict[str, Any] = {}
        self.columns: dict[str, list[str]] = {}
        for topic in topics:
            path = topic_path(out, topic, topics)
            self.files[topic] = create_file(path, text=True)
            self.writers[topic] = csv.writer(self.files[topic])
            self.targets[topic] = str(path)

    def write(self, record: Record) -> None:
        file, value = self.files[record.topic], record.value
        if isinstance(value, str):
            file.write(value + "\n")
            return
        columns = self.columns.get(record.topic)
        if columns is None:
            columns = self.columns[record.topic] = list(value)
            self.writers[record.topic].writerow(columns)
        self.writers[record.topic].writerow([value.get(column, "") for column in columns])

    def close(self) -> None:
        for file in self.files.values():
            file.close()


class LogOutput(BaseOutput):
    """Appends to the embedded log (`clickstream.log.TopicLog`) in batches; keys, when a topic has
    them (upserts), choose the partition, so one key's changes stay in order."""

    def __init__(
        self,
        name: str,
        topics: list[str],
        log_dir: str | None,
        partitions: int = 1,
        retention_bytes: int | None = None,
    ) -> None:
        super().__init__()
        from clickstream.log import LogError, TopicLog  # imported here: the CLI works without the log

        # the log connector's default: a job without 'path' reads what is written here
        root = log_dir or default_log_dir()
        self.location = f"the log in {root}"
        # retention is applied by appenders when they roll a segment: this writer is the one
        self.log = TopicLog(root, retention_bytes=retention_bytes)
        self.pending: dict[str, tuple[list[bytes], list[bytes | None]]] = {}
        try:
            for topic in topics:
                target = name if len(topics) == 1 else f"{name}{topic}"
                self.log.create_topic(target, partitions)  # idempotent: generating again appends
                self.targets[topic] = LOG_PREFIX + target
                self.pending[topic] = ([], [])
        except LogError as error:  # a topic name the log refuses
            self.log.close()
            raise CommandError(f"--out {LOG_PREFIX}{name}: {error}") from None
        except OSError as error:
            self.log.close()
            reason = (error.strerror or str(error)).lower()
            raise CommandError(
                f"cannot write the log in {root}: {reason}; "
                "choose another --log-dir (or $CLICKSTREAM_LOG_DIR)"
            ) from None

    def write(self, record: Record) -> None:
        values, keys = self.pending[record.topic]
        values.append(to_line(record.value))
        keys.append(record.key.encode() if record.key is not None else None)
        if len(values) >= LOG_BATCH:
            self._flush(record.topic)

    def _flush(self, topic: str) -> None:
        values, keys = self.pending[topic]
        if values:
            target = self.targets[topic].removeprefix(LOG_PREFIX)
            self.log.append(target, values, keys=keys if any(k is not None for k in keys) else None)
            self.pending[topic] = ([], [])

    def close(self) -> None:
        try:
            for topic in self.pending:
                self._flush(topic)
        finally:
            self.log.close()


def open_output(
    out: str, topics: list[str], log_dir: str | None = None, log_retention_bytes: int | None = None
) -> BaseOutput:
    """`-` (stdout), `log:<name>` (the embedded log), `kafka://host:port/<name>` (a Kafka broker),
    `*.csv` (CSV) or any other path (JSON Lines).

    `log_retention_bytes`: the log keeps about this much per partition (None: everything)."""
    if out == "-":
        return StdoutOutput(topics)
    if out.startswith(LOG_PREFIX):
        name = out.removeprefix(LOG_PREFIX)
        if not name and len(topics) == 1:  # several topics with no prefix keep their names
            raise CommandError("--out log: needs a topic name: log:<topic> (or log:<prefix> for several)")
        return LogOutput(name, topics, log_dir, retention_bytes=log_retention_bytes)
    if out.startswith(KAFKA_PREFIX):
        from clickstream.simulate.kafka_output import KafkaOutput  # it builds on this module

        return KafkaOutput(out, topics)
    path = Path(out)
    if path.suffix.lower() == ".csv":
        return CsvOutput(path, topics)
    return JsonLinesOutput(path, topics)
