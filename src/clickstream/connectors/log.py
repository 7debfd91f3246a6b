"""The `log` connector: tables over the embedded topic log (`clickstream.log`), no server needed.

Options mirror Flink's Kafka connector (default in brackets):

- `path` [`$CLICKSTREAM_LOG_DIR`, else `./clickstream-log`]: the log's root directory.
- `topic` [required]: one topic; created on first use.
- `format` / `value.format` [`json`]: record format, decoded by `formats.Decoder`.
- `scan.startup.mode` [`earliest-offset`]: or `latest-offset`; `group-offsets` (the committed
  offsets of `properties.group.id`, earliest where there are none); `specific-offsets` (from
  `scan.startup.specific-offsets` = `partition:0,offset:42;partition:1,offset:300`).
- `scan.bounded.mode` [`unbounded`]: `latest-offset` stops at the end offsets seen when the job
  starts, which makes the source bounded; also `group-offsets` and `specific-offsets` (from
  `scan.bounded.specific-offsets`).
- `properties.group.id`: the consumer group whose offsets `commit()` stores.
- `scan.corrupt-frame.policy` [`fail`]: a damaged frame in the log (see `log.damage`) fails the
  job with its topic, partition and offset; `skip` sends its records to the dead letters instead.
- `sink.partitioner` [`default`]: `default` hashes the key (`key.fields` = `a;b`, else the PRIMARY
  KEY) and sends unkeyed rows to one partition per batch; `fixed` writes to partition 0;
  `round-robin` spreads rows one by one.
- `sink.delivery-guarantee` [`exactly-once`]: with checkpoints, an append sink's records go in
  at each checkpoint, once (see `LogSink.commit`); `at-least-once` appends each batch at once.
- `log.partitions` [1]: partitions of a topic this table creates.
- `log.sync` [`flush`]: `fsync` makes each sink write wait for the disk (survives power loss).
- `log.segment.bytes` [67108864]: size at which a new segment file is started.
- `log.retention.ms`, `log.retention.bytes` [keep all]: older or excess sealed segments are deleted.

A source batch carries an int32 `__partition` column beside the table's columns, so the engine
keeps a watermark per partition. The sink writes each row as a JSON object (TIMESTAMP_LTZ as
ISO-8601 with `Z`), which this source's JSON decoder reads back.

A table with a `PRIMARY KEY (...) NOT ENFORCED` is an upsert stream, as Flink's `upsert-kafka`
reads a topic: a record replaces the row with its key, a tombstone (`{<key fields>, "__deleted":
true}`, see `upsert`) deletes it; the sink writes -D as such tombstones. `format` may also be a
changelog format (`debezium-json`, `canal-json`, `maxwell-json`) to read CDC events.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clickstream.config import Settings, parse_duration_ms
from clickstream.connectors.base import (
    DELETE,
    INSERT,
    OP_COLUMN,
    PARTITION,
    UPDATE_AFTER,
    BaseSink,
    BaseSource,
)
from clickstream.connectors.changelog import decoder_for
from clickstream.connectors.filesystem import DEAD_LETTER_PATH, DeadLetters
from clickstream.connectors.formats import FORMATS
from clickstream.connectors.json_rows import dumps, rows_of
from clickstream.connectors.options import (
    ANY,
    DELIVERY_GUARANTEE,
    Option,
    exactly_once,
    parse_specific_offsets,
)
from clickstream.connectors.upsert import DELETED
from clickstream.errors import ConnectorError
from clickstream.log import LogError, LogReader, TopicLog
from clickstream.log.damage import CORRUPT_POLICIES
from clickstream.log.files import read_json, write_atomically
from clickstream.log.groups import GroupOffsets
from clickstream.log.topic_log import by_partition
from clickstream.paths import default_log_dir
from clickstream.schema import TableDef

STARTUP_MODES = {
    "earliest-offset": "earliest",
    "latest-offset": "latest",
    "group-offsets": "committed",
    "specific-offsets": None,
}
BOUNDED_MODES = ("unbounded", "latest-offset", "group-offsets", "specific-offsets")
PARTITIONERS = ("default", "fixed", "round-robin")

_COMPATIBILITY = "Accepted for Flink compatibility (Kafka connector option)."
OPTIONS = (
    Option("topic", required=True, description="The topic to read or write; created on first use."),
    Option(
        "topic-pattern",
        description="Refused when used: the log connector reads one topic, not a pattern.",
    ),
    Option(
        "path",
        description="The log's root directory (default: $CLICKSTREAM_LOG_DIR, else ./clickstream-log).",
    ),
    Option(
        "format",
        "enum",
        "json",
        values=tuple(FORMATS),
        format=True,
        description="The record format (the sink writes json only).",
    ),
    Option("value.format", "enum", values=tuple(FORMATS), format=True, description="Same as 'format'."),
    Option(
        "key.format",
        "enum",
        values=tuple(FORMATS),
        format=True,
        description="Accepted for Flink compatibility; keys are written as JSON.",
    ),
    Option(
        "key.fields",
        description="The columns a keyed row is partitioned by, 'a;b' (default: the primary key).",
    ),
    Option(
        "scan.startup.mode",
        "enum",
        "earliest-offset",
        values=tuple(STARTUP_MODES),
        description="Where reading starts.",
    ),
    Option(
        "scan.startup.specific-offsets",
        description="Start offsets for 'specific-offsets': 'partition:0,offset:42;partition:1,offset:300'.",
    ),
    Option("scan.startup.timestamp-millis", "int", description=_COMPATIBILITY),
    Option(
        "scan.bounded.mode",
        "enum",
        "unbounded",
        values=BOUNDED_MODES,
        description="Where reading stops; 'latest-offset' stops at the end seen at start, so the "
        "source is bounded.",
    ),
    Option(
        "scan.bounded.specific-offsets",
        description="Stop offsets for 'specific-offsets', as scan.startup.specific-offsets.",
    ),
    Option("scan.bounded.timestamp-millis", "int", description=_COMPATIBILITY),
    Option(
        "scan.corrupt-frame.policy",
        "enum",
        "fail",
        values=CORRUPT_POLICIES,
        description="A damaged frame in the log: 'fail' the job with its topic, partition and "
        "offset, or 'skip' its records into the dead letters and go on.",
    ),
    Option("scan.topic-partition-discovery.interval", "duration", description=_COMPATIBILITY),
    Option("properties.group.id", description="The consumer group whose committed offsets are used."),
    Option(f"properties.{ANY}", description=_COMPATIBILITY),
    Option(
        "sink.partitioner",
        "enum",
        "default",
        values=PARTITIONERS,
        description="How rows are spread over partitions: by key, all to partition 0, or one by one.",
    ),
    DELIVERY_GUARANTEE,
    Option("sink.transactional-id-prefix", description=_COMPATIBILITY),
    Option("sink.parallelism", "int", minimum=1, description=_COMPATIBILITY),
    Option("log.partitions", "int", "1", minimum=1, description="Partitions of a topic this table creates."),
    Option(
        "log.sync",
        "enum",
        "flush",
        values=("flush", "fsync"),
        description="'fsync' makes each sink write wait for the disk.",
    ),
    Option(
        "log.segment.bytes",
        "int",
        str(64 << 20),
        minimum=1,
        description="Size at which a new segment file is started.",
    ),
    Option("log.retention.ms", "duration", description="Sealed segments older than this are deleted."),
    Option(
        "log.retention.bytes",
        "int",
        minimum=0,
        description="Sealed segments beyond this size are deleted, oldest first.",
    ),
    DEAD_LETTER_PATH,
)


# --- options ----------------------------------------------------------------------------------


def open_log(table: TableDef) -> tuple[TopicLog, str]:
    """The table's log (from `path` and the `log.*` options) and topic; the topic exists after."""
    options = table.options
    topic = options.get("topic")
    if not topic:
        raise ConnectorError(f"Table '{table.name}': the log connector needs 'topic'")
    if ";" in topic or "topic-pattern" in options:
        raise ConnectorError(
            f"Table '{table.name}': the log connector reads one topic, not a list or a pattern ('{topic}')"
        )
    root = options.get("path") or default_log_dir()
    try:
        log = TopicLog(
            Path(root.removeprefix("file://")),
            sync=options.get("log.sync", "flush"),
            segment_bytes=_int(table, "log.segment.bytes", 64 << 20),
            retention_ms=_duration(table, "log.retention.ms"),
            retention_bytes=_int(table, "log.retention.bytes", None),
        )
        log.create_topic(topic, _int(table, "log.partitions", 1))
    except LogError as e:
        raise ConnectorError(f"Table '{table.name}': {e}") from None
    return log, topic


def _int(table: TableDef, key: str, default: int | None) -> int | None:
    value = table.options.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConnectorError(f"Table '{table.name}': '{key}' needs an integer, got '{value}'") from None


def _duration(table: TableDef, key: str) -> int | None:
    value = table.options.get(key)
    return None if value is None else parse_duration_ms(value)


def _choice(table: TableDef, key: str, default: str, allowed) -> str:
    value = table.options.get(key, default).lower()
    if value not in allowed:
        raise ConnectorError(
            f"Table '{table.name}': '{key}' = '{value}' is not supported; use one of {', '.join(allowed)}"
        )
    return value


# --- source -----------------------------------------------------------------------------------


class LogSource(BaseSource):
    """Reads a topic; decodes each record with the table's format, dead letters the malformed."""

    def __init__(self, table: TableDef, settings: Settings) -> None:
        super().__init__(table, settings)
        self.log, self.topic = open_log(table)
        self.group = table.options.get("properties.group.id")
        # with a PRIMARY KEY the topic holds upserts and tombstones, as upsert-kafka reads one
        self.decoder = decoder_for(table, upserts=bool(table.primary_key))
        self.dead_letters = DeadLetters(table, settings)
        bounded = _choice(table, "scan.bounded.mode", "unbounded", BOUNDED_MODES)
        self.bounded = bounded != "unbounded"
        try:
            self.reader: LogReader = self.log.open_reader(
                self.topic, self.group, self._start(), self._stop(bounded), self._corrupt()
            )
        except LogError as e:
            raise ConnectorError(f"Table '{table.name}': {e}") from None
        self.partitions = len(self.reader.partitions)

    def _start(self) -> str | dict[int, int]:
        mode = _choice(self.table, "scan.startup.mode", "earliest-offset", STARTUP_MODES)
        if mode == "group-offsets" and not self.group:
            raise ConnectorError(
                f"Table '{self.table.name}': 'scan.startup.mode' = "
                "'group-offsets' needs 'properties.group.id'"
            )
        if mode == "specific-offsets":
            return parse_specific_offsets(self.table, "scan.startup.specific-offsets")
        return STARTUP_MODES[mode]

    def _stop(self, mode: str) -> str | dict[int, int] | None:
        if mode == "latest-offset":
            return "latest"
        if mode == "specific-offsets":
            return parse_specific_offsets(self.table, "scan.bounded.specific-offsets")
        if mode == "group-offsets":
            if not self.group:
                raise ConnectorError(
                    f"Table '{self.table.name}': 'scan.bounded.mode' = "
                    "'group-offsets' needs 'properties.group.id'"
                )
            return GroupOffsets(self.log.topic_dir(self.topic), self.group).load()
        return None

    def _corrupt(self) -> str:
        return _choice(self.table, "scan.corrupt-frame.policy", "fail", CORRUPT_POLICIES)

    def poll(self, max_rows: int) -> pa.Table | None:
        records = self.reader.poll(max_rows)
        self._skipped_frames()
        if records.num_rows == 0:
            return None
        self.metrics.bytes_in += records.column("value").nbytes
        rows = self._decode(records)
        self.metrics.malformed = self.dead_letters.count
        self.metrics.records_in += rows.num_rows
        return rows

    def _decode(self, records: pa.Table) -> pa.Table:
        """Typed rows plus `__partition`, in one decode for the whole batch; the malformed
        records to the dead letters with their partition and offset."""
        records = self._utf8(records)
        partitions = records.column("partition")
        decoded = self.decoder.decode(records.column("value"))
        self._dead_letters(records, decoded.malformed, decoded.positions)
        if decoded.origin is not None:  # a changelog: rows say which record they came from
            return decoded.rows.append_column(PARTITION, partitions.take(pa.array(decoded.origin)))
        if decoded.kept is None:
            return decoded.rows.append_column(PARTITION, partitions)
        return decoded.rows.append_column(PARTITION, partitions.filter(pa.array(decoded.kept)))

    def _dead_letters(
        self, records: pa.Table, malformed: list[tuple[str, str]], positions: list[int]
    ) -> None:
        if not malformed:
            return
        at = pa.array(positions, pa.int64())
        where = [
            {"partition": p, "offset": o}
            for p, o in zip(
                records.column("partition").take(at).to_pylist(),
                records.column("offset").take(at).to_pylist(),
                strict=True,
            )
        ]
        self.dead_letters.write(malformed, f"log:{self.topic}", where)

    def _skipped_frames(self) -> None:
        """Records of damaged frames the reader skipped (policy 'skip'): one dead letter each."""
        for frame in self.reader.skipped():
            records = frame.records or [b""] * (frame.end - frame.first)
            self.dead_letters.write(
                [(r.decode(errors="replace"), f"corrupt frame ({frame.reason})") for r in records],
                f"log:{self.topic}",
                [{"partition": frame.partition, "offset": o} for o in range(frame.first, frame.end)],
            )
        self.metrics.malformed = self.dead_letters.count

    def _utf8(self, records: pa.Table) -> pa.Table:
        """`value` as text; records that are not UTF-8 go to the dead letters."""
        try:
            return records.set_column(2, "value", records.column("value").cast(pa.string()))
        except pa.ArrowInvalid:
            pass
        ok = []
        for value in records.column("value").to_pylist():
            try:
                value.decode()
                ok.append(True)
            except UnicodeDecodeError:
                ok.append(False)
        mask = np.array(ok)
        bad = records.column("value").filter(pa.array(~mask)).to_pylist()
        self._dead_letters(
            records,
            [(b.decode(errors="replace"), "not UTF-8 text") for b in bad],
            np.flatnonzero(~mask).tolist(),
        )
        return self._utf8(records.filter(pa.array(mask)))

    def exhausted(self) -> bool:
        return self.bounded and self.reader.finished()

    def lag(self) -> int:
        """Records appended to the topic that this source has not read yet."""
        return sum(self.lag_per_partition().values())

    def offsets(self) -> dict[int, int]:
        """Per partition, the next offset to read."""
        return self.reader.position()

    def lag_per_partition(self) -> dict[int, int]:
        """Per partition, records appended that this source has not read yet."""
        position = self.reader.position()
        return {p: max(end - position.get(p, 0), 0) for p, end in self.reader.end_offsets().items()}

    def position(self) -> object:
        # the stop offsets too: a bounded reader stops where the first run would have
        return {"offsets": self.reader.position(), "stops": self.reader.stops, "turn": self.reader.turn}

    def seek(self, position: object) -> None:
        assert isinstance(position, dict)
        self.reader.restore(position["offsets"], position["stops"], position["turn"])

    def commit_checkpoint(self, position: object) -> None:
        """A checkpoint holding `position` is complete: commit its offsets for the group (a
        consumer group's offsets say what a job has finished with, as Flink's Kafka source)."""
        if self.group:
            assert isinstance(position, dict)
            self.reader.commit(position["offsets"])

    def commit(self, offsets: dict[int, int] | None = None) -> None:
        """Store `offsets` (default: the current position) as `properties.group.id`'s offsets."""
        if not self.group:
            raise ConnectorError(f"Table '{self.table.name}': committing offsets needs 'properties.group.id'")
        self.reader.commit(offsets)

    def close(self) -> None:
        self.reader.close()
        self.log.close()


# --- sink -------------------------------------------------------------------------------------


class LogSink(BaseSink):
    """Appends each +I/+U row as a JSON object and each -D as a tombstone of its key; -U is
    dropped (the +U after it carries the row)."""

    def __init__(self, table: TableDef, settings: Settings) -> None:
        super().__init__(table, settings)
        fmt = table.options.get("format", table.options.get("value.format", "json"))
        if fmt != "json":
            raise ConnectorError(f"Table '{table.name}': the log sink writes format 'json' only, not '{fmt}'")
        self.partitioner = _choice(table, "sink.partitioner", "default", PARTITIONERS)
        self.key_fields = self._key_fields()
        self.log, self.topic = open_log(table)
        self._round_robin = itertools.count()

    def _key_fields(self) -> list[str]:
        """`key.fields` ('a;b'), else the primary key: declared names, so rows can be indexed."""
        text = self.table.options.get("key.fields")
        names = [k.strip() for k in text.split(";") if k.strip()] if text else self.table.primary_key
        fields = []
        for name in names:
            column = self.table.column(name)
            if column is None:
                raise ConnectorError(
                    f"Table '{self.table.name}': key field '{name}' is not a column of the table"
                )
            fields.append(column.name)
        return fields

    def write(self, batch: pa.Table) -> None:
        """+I/+U rows as JSON objects; -D as tombstones (`upsert.DELETED`) for a table with a
        primary key, which the log source reads back as deletions."""
        values, rows = self._records(batch)
        if values:
            self._append(values, rows)

    def _records(self, batch: pa.Table) -> tuple[list[bytes], list[dict]]:
        """The batch's records, and its rows (by column name) that their keys are taken from."""
        deletes = None
        if OP_COLUMN in batch.column_names:
            ops = batch.column(OP_COLUMN)
            keep = pc.is_in(ops, pa.array([INSERT, UPDATE_AFTER, DELETE], ops.type))
            batch = batch.filter(keep)
            deletes = pc.equal(batch.column(OP_COLUMN), DELETE).to_pylist()
            if any(deletes) and not self.table.primary_key:
                raise ConnectorError(
                    f"Table '{self.table.name}': the log sink writes deletions (-D) as tombstones "
                    "of a key; declare a PRIMARY KEY (...) NOT ENFORCED"
                )
            batch = batch.drop_columns([OP_COLUMN])
        if batch.num_rows == 0:
            return [], []
        rows = rows_of(batch)
        written = [
            self._tombstone(r) if d else r for r, d in zip(rows, deletes or [False] * len(rows), strict=True)
        ]
        values = [dumps(row) for row in written]
        return values, rows

    def _key(self, row: dict) -> bytes:
        return dumps({k: row[k] for k in self.key_fields})

    @property
    def transactional(self) -> bool:
        # an upsert topic (with a primary key) is written through, as jdbc upserts are
        return not self.table.primary_key and exactly_once(self.table.options)

    def commit(self, writer: str, checkpoint: int, batches: list[pa.Table]) -> None:
        """Append the checkpoint's records, between two notes in `<topic>/producers/`: one
        with the partitions' end offsets before (where its records begin), one saying it is
        committed. After a kill between the two, the records already appended are not appended
        again: the partitions are chosen from the checkpoint's rows alone, so a replay puts the
        same records in the same order (this sink must be the topic's only writer)."""
        notes_path = self.log.topic_dir(self.topic) / "producers" / f"{quote(writer, safe='')}.json"
        notes = read_json(notes_path) or {"checkpoint": -1}
        if notes["checkpoint"] >= checkpoint:
            return
        ends = self.log.end_offsets(self.topic)
        if notes.get("pending") == checkpoint:  # interrupted: its records begin there
            begin = {int(p): o for p, o in notes["begin"].items()}
        else:
            begin = ends
            notes_path.parent.mkdir(parents=True, exist_ok=True)
            begun = {str(p): o for p, o in begin.items()}
            write_atomically(notes_path, {**notes, "pending": checkpoint, "begin": begun})
        for partition, values in self._partitioned(batches, checkpoint).items():
            written = ends.get(partition, 0) - begin.get(partition, 0)
            self.log.append(self.topic, values[written:], partition=partition)
        write_atomically(notes_path, {"checkpoint": checkpoint})

    def _partitioned(self, batches: list[pa.Table], checkpoint: int) -> dict[int, list[bytes]]:
        """The checkpoint's records per partition, as the partitioner spreads them, with a
        partition for unkeyed rows that depends on the checkpoint only."""
        values: list[bytes] = []
        keys: list[bytes | None] = []
        for batch in batches:
            batch_values, rows = self._records(batch)
            values += batch_values
            keys += [self._key(row) for row in rows] if self.key_fields else [None] * len(rows)
        count = self.log.partitions(self.topic)
        if self.partitioner == "fixed":
            return {0: values}
        if self.partitioner == "round-robin":
            return {p: values[p::count] for p in range(min(count, len(values)))}
        return by_partition(values, keys, count, checkpoint % count)

    def _tombstone(self, row: dict) -> dict:
        key = {self.table.column(k).name: None for k in self.table.primary_key}  # type: ignore[union-attr]
        return {**{k: row[k] for k in key}, DELETED: True}

    def _append(self, values: list[bytes], rows: list[dict]) -> None:
        if self.partitioner == "fixed":
            self.log.append(self.topic, values, partition=0)
        elif self.partitioner == "round-robin":
            count = self.log.partitions(self.topic)
            start = next(self._round_robin)
            for offset in range(min(count, len(values))):
                self.log.append(self.topic, values[offset::count], partition=(start + offset) % count)
        elif self.key_fields:
            self.log.append(self.topic, values, [self._key(row) for row in rows])
        else:
            self.log.append(self.topic, values)

    def close(self) -> None:
        self.log.close()
