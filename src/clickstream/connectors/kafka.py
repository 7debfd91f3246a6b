"""The `kafka` connector: tables over Apache Kafka topics, on confluent-kafka, with Flink's options
(see `kafka_options`).

The source assigns itself every partition of its topics (as Flink's KafkaSource: the group id is
only where offsets are committed, there is no group rebalancing), starting where
`scan.startup.mode` says and, with `scan.bounded.mode`, stopping at offsets fixed when the job
starts. It polls whole batches (`consume`) and decodes them at once (`kafka_records`). Each row
carries an int32 `__partition`, an index per (topic, partition) in the order the partitions were
found, so the engine keeps a watermark per Kafka partition. Its `position()` holds the next offset
of each partition, the stop offsets and that index, so a checkpoint resumes exactly; after each
checkpoint the offsets go to the consumer group (`enable.auto.commit` is off), so Kafka's tools
show the job's real lag. New partitions (and topics of a pattern) are looked for every
`scan.topic-partition-discovery.interval` and read from their start.
"""

from __future__ import annotations

import gc
import itertools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from clickstream.config import Settings, parse_duration_ms
from clickstream.connectors.base import BaseSource
from clickstream.connectors.changelog import is_changelog_format
from clickstream.connectors.filesystem import DEAD_LETTER_PATH, DeadLetters
from clickstream.connectors.kafka_client import TRANSIENT, ask, consumer, metadata, partitions_of, where
from clickstream.connectors.kafka_options import (
    KAFKA_OPTIONS,
    choice,
    required_int,
    topics,
)
from clickstream.connectors.kafka_records import RecordDecoder, Records
from clickstream.connectors.kafka_sink import KafkaSink
from clickstream.connectors.options import parse_specific_offsets
from clickstream.errors import ConnectorError
from clickstream.schema import TableDef

OPTIONS = (*KAFKA_OPTIONS, DEAD_LETTER_PATH)
__all__ = ["OPTIONS", "KafkaSink", "KafkaSource"]

Partition = tuple[str, int]  # (topic, partition)
_POLL_TIMEOUT_S = 0.1
# librdkafka's defaults that a table's `properties.*` may change. A partition whose local queue
# holds `queued.min.messages` (100,000) records is not fetched again for `fetch.queue.backoff.ms`,
# 1 s by default: a source that takes a quarter of a million records at a time empties the queues
# at once and then waited for that second (a bare consumer drained 1M records in 3.4-4.6 s
# instead of 1.8-2.5 s; 10 ms costs no CPU that could be measured).
CONSUMER_DEFAULTS = {"fetch.queue.backoff.ms": 10}
# a running job does not wait longer for a discovery while the broker is away: it tries again later
_DISCOVERY_TIMEOUT_S = 1.0
_LOG = logging.getLogger("clickstream.kafka")


def _partition(message: Message) -> Partition:
    return message.topic(), message.partition()  # type: ignore[return-value]  # a record has both


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a batch is consumed and decoded. A batch is
    up to `max_rows` Message objects, which the collector tracks: hundreds of thousands of them
    alive at once set off full collections that walk them all again and again (measured: half
    the CPU of consuming a million records). They hold no cycles, and are freed when the poll
    returns, before the collector is back on."""
    if not gc.isenabled():  # paused already (another source's poll), or by the application
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _committed(error: KafkaError | None, _offsets: list) -> None:
    """A failed offset commit is not fatal (as in Flink): the next checkpoint commits newer ones."""
    if error is not None:
        _LOG.warning("committing the consumer group's offsets failed: %s", error.str())


class KafkaSource(BaseSource):
    """Reads a table's topics; decodes each batch with the table's formats."""

    upsert = False
    # bounded, polled one batch ahead on a thread: consuming the next batch (librdkafka waits
    # without the GIL) and decoding it overlap with the job's operators. A poll has no effect the
    # job must see first: offsets are committed only with checkpoints, from the position the
    # reader took with the batch.
    read_ahead = True

    def __init__(self, table: TableDef, settings: Settings) -> None:
        super().__init__(table, settings)
        self.topics = topics(table)
        self.check_table()
        self.group = table.options.get("properties.group.id")
        self.decoder = RecordDecoder(table, self.upsert)
        self.dead_letters = DeadLetters(table, settings)
        self.bounded = choice(table, "scan.bounded.mode", "unbounded") != "unbounded"
        idle = table.options.get("scan.watermark.idle-timeout")
        self.idle_timeout_ms = parse_duration_ms(idle) if idle else None
        discovery = parse_duration_ms(table.options.get("scan.topic-partition-discovery.interval", "5 min"))
        self.discovery_s = discovery / 1000 if discovery > 0 and not self.bounded else None
        self.consumer, self.errors = consumer(table, self._config(), CONSUMER_DEFAULTS)
        self.index: dict[Partition, int] = {}  # partition -> its __partition index
        self.next: dict[Partition, int] = {}  # partition -> next offset to read
        self.stops: dict[Partition, int] = {}  # bounded: partition -> offset to stop before
        self.paused: set[Partition] = set()
        self.closed = False
        self._lags: dict[int, int] = {}
        found = self._discover()
        self.next = self._start(found)
        if self.bounded:
            self.stops = self._stop_offsets(found)
        self._assign()
        self.partitions = len(self.index)
        self._discovered_at = time.monotonic()

    def check_table(self) -> None:
        """A plain topic has no keys to upsert by (Flink refuses a PRIMARY KEY without a changelog format)."""
        if self.table.primary_key and not is_changelog_format(self.table):
            raise ConnectorError(
                f"Table '{self.table.name}': the kafka connector does not take a PRIMARY KEY (it cannot "
                "guarantee it); use the 'upsert-kafka' connector for a keyed changelog"
            )

    def _config(self) -> dict:
        return {
            "group.id": self.group or f"clickstream-{self.table.name}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "on_commit": _committed,
        }

    # --- partitions and offsets -----------------------------------------------------------------

    def _discover(self, timeout_s: float | None = None) -> list[Partition]:
        """Every partition of the table's topics, those not seen before given the next indexes."""
        # polling serves the client's error callback: only before anything is assigned
        meta = metadata(self.consumer, self.errors, self.table, self.topics, not self.next, timeout_s)
        counts = partitions_of(meta, self.table, self.topics)
        found = sorted((t, p) for t, n in counts.items() for p in range(n))
        for partition in found:
            self.index.setdefault(partition, len(self.index))
        return found

    def _watermarks(self, partition: Partition) -> tuple[int, int]:
        return ask(
            self.table,
            partition[0],
            f"read the offsets of partition {partition[1]}",
            lambda timeout: self.consumer.get_watermark_offsets(TopicPartition(*partition), timeout=timeout),
        )

    def _start(self, found: list[Partition]) -> dict[Partition, int]:
        mode = choice(self.table, "scan.startup.mode", "group-offsets")
        if mode == "earliest-offset":
            return {p: self._watermarks(p)[0] for p in found}
        if mode == "latest-offset":
            return {p: self._watermarks(p)[1] for p in found}
        if mode == "group-offsets":
            return self._committed(found, "scan.startup.mode")
        if mode == "timestamp":
            return self._at_time(found, required_int(self.table, "scan.startup.timestamp-millis"))
        given = self._specific("scan.startup.specific-offsets")
        return {p: given.get(p, self._watermarks(p)[0]) for p in found}

    def _stop_offsets(self, found: list[Partition]) -> dict[Partition, int]:
        mode = choice(self.table, "scan.bounded.mode", "unbounded")
        if mode == "latest-offset":
            return {p: self._watermarks(p)[1] for p in found}
        if mode == "group-offsets":
            return self._committed(found, "scan.bounded.mode")
        if mode == "timestamp":
            return self._at_time(found, required_int(self.table, "scan.bounded.timestamp-millis"))
        given = self._specific("scan.bounded.specific-offsets")
        # a partition without a stop offset is not read (Flink's default: its earliest offset)
        return {p: given.get(p, self.next[p]) for p in found}

    def _specific(self, key: str) -> dict[Partition, int]:
        if len(self.topics.names) != 1:
            raise ConnectorError(f"Table '{self.table.name}': '{key}' needs a single 'topic'")
        return {(self.topics.names[0], p): o for p, o in parse_specific_offsets(self.table, key).items()}

    def _committed(self, found: list[Partition], key: str) -> dict[Partition, int]:
        """The group's committed offsets; where it has none, as `properties.auto.offset.reset`
        says (Flink's fallback): the earliest by default, the latest, or a refusal ('none')."""
        if not self.group:
            raise ConnectorError(
                f"Table '{self.table.name}': '{key}' = 'group-offsets' needs 'properties.group.id'"
            )
        asked = [TopicPartition(*p) for p in found]
        committed = ask(
            self.table,
            self.topics,
            "read the group's offsets",
            lambda timeout: self.consumer.committed(asked, timeout=timeout),
        )
        return {
            (tp.topic, tp.partition): tp.offset if tp.offset >= 0 else self._reset(tp) for tp in committed
        }

    def _reset(self, tp: TopicPartition) -> int:
        reset = self.table.options.get("properties.auto.offset.reset", "earliest").lower()
        if reset == "none":
            raise ConnectorError(
                f"{where(self.table, tp.topic)}: the group '{self.group}' has no committed offset for "
                f"partition {tp.partition} and 'properties.auto.offset.reset' is '{reset}'"
            )
        low, high = self._watermarks((tp.topic, tp.partition))
        return high if reset == "latest" else low

    def _at_time(self, found: list[Partition], millis: int) -> dict[Partition, int]:
        """The first offset of each partition at or after `millis` (its end where there is none)."""
        asked = [TopicPartition(t, p, millis) for t, p in found]
        answered = ask(
            self.table,
            self.topics,
            "look up offsets by time",
            lambda timeout: self.consumer.offsets_for_times(asked, timeout=timeout),
        )
        return {
            (tp.topic, tp.partition): tp.offset
            if tp.offset >= 0
            else self._watermarks((tp.topic, tp.partition))[1]
            for tp in answered
        }

    def _assign(self) -> None:
        """Read every partition from its next offset (those at their stop are not assigned)."""
        self.paused = {p for p in self.next if p in self.stops and self.next[p] >= self.stops[p]}
        self.consumer.assign(
            [TopicPartition(t, p, o) for (t, p), o in self.next.items() if (t, p) not in self.paused]
        )

    def _discover_new(self) -> None:
        """Partitions (and pattern topics) added since: read from their start, as Flink does."""
        if self.discovery_s is None or time.monotonic() - self._discovered_at < self.discovery_s:
            return
        self._discovered_at = time.monotonic()
        try:
            found = self._discover(timeout_s=_DISCOVERY_TIMEOUT_S)
        except ConnectorError:
            return  # the broker is away: look again at the next interval
        start = {p: self._watermarks(p)[0] for p in found if p not in self.next}
        if start:
            self.next.update(start)
            self.consumer.incremental_assign([TopicPartition(t, p, o) for (t, p), o in start.items()])

    # --- reading --------------------------------------------------------------------------------

    def poll(self, max_rows: int) -> pa.Table | None:
        self._discover_new()
        if self.exhausted():
            return None
        with _collector_paused():
            return self._poll(max_rows)

    def _poll(self, max_rows: int) -> pa.Table | None:
        """A bounded source fills its batch up to `max_rows` (what has arrived is handed out only
        when nothing more comes within the poll timeout): each batch has a fixed cost in every
        operator downstream, and a consume returns what arrived within 0.1 s, often a fifth of a
        batch. An unbounded source hands out what one consume returned, not to add latency."""
        chunks: list[tuple[list[Message], np.ndarray]] = []
        count = 0
        while count < max_rows and not self.exhausted():
            chunk = self._consume(max_rows - count)
            if chunk is None:
                break
            chunks.append(chunk)
            count += len(chunk[0])
            if not self.bounded:
                break
        if not chunks:
            return None
        if len(chunks) == 1:
            return self._decode(*chunks[0])
        messages = list(itertools.chain.from_iterable(m for m, _ in chunks))
        return self._decode(messages, np.concatenate([codes for _, codes in chunks]))

    def _consume(self, max_rows: int) -> tuple[list[Message], np.ndarray] | None:
        """The records of one consume (None: none) and their partition indexes; the partitions'
        positions move past them."""
        messages = self._records(self.consumer.consume(max_rows, _POLL_TIMEOUT_S))
        if not messages:
            return None
        # Per record only what cannot be had otherwise (its partition, offset and value), each in
        # one pass over the batch; the bookkeeping is per partition, on arrays.
        codes = self._codes(messages)
        keep = self._advance(codes, np.array([m.offset() for m in messages], np.int64))
        if keep is not None:
            messages, codes = [m for m, kept in zip(messages, keep, strict=True) if kept], codes[keep]
            if not messages:
                return None
        return messages, codes

    def _records(self, messages: list[Message]) -> list[Message]:
        """The records among `messages`; the others (a partition's end, errors) go to `_data`."""
        others = [m for m in messages if m.error() is not None]
        for message in others:
            self._data(message)
        return [m for m in messages if m.error() is None] if others else messages

    def _data(self, message) -> bool:
        """Whether `message` is a record; the end of a partition moves its position on (past
        transaction markers); a lasting error fails the job."""
        error = message.error()
        if error is None:
            return True
        if error.code() == KafkaError._PARTITION_EOF:
            partition = _partition(message)
            self.next[partition] = max(self.next.get(partition, 0), message.offset())
            self._pause_finished(partition)
            return False
        if error.code() in TRANSIENT or error.retriable():
            return False  # the client reconnects and goes on
        topic = message.topic() or self.topics.describe()
        raise ConnectorError(f"{where(self.table, topic)}: {error.str()}")

    def _codes(self, messages: list[Message]) -> np.ndarray:
        """Each record's partition index (`__partition`)."""
        if self.topics.pattern is None and len(self.topics.names) == 1:  # partitions of one topic
            by_number = np.zeros(max(p for _, p in self.index) + 1, np.int32)
            for (_, number), code in self.index.items():
                by_number[number] = code
            return by_number[np.array([m.partition() for m in messages], np.int64)]
        return np.array([self.index[_partition(m)] for m in messages], np.int32)

    def _advance(self, codes: np.ndarray, offsets: np.ndarray) -> np.ndarray | None:
        """Moves each partition's next offset past its records in the batch (never back: the end
        of a partition may have moved it past markers). A bounded source keeps the records before
        the stop offsets and pauses the partitions that reached them. The records to keep (None:
        all of them)."""
        partitions = sorted(self.index, key=self.index.__getitem__)
        last = np.full(len(partitions), -1, np.int64)
        np.maximum.at(last, codes, offsets)
        stops = np.array([self.stops.get(p, 0) for p in partitions], np.int64)
        for code in np.flatnonzero(last >= 0):
            partition = partitions[code]
            reached = min(last[code] + 1, stops[code]) if self.bounded else last[code] + 1
            self.next[partition] = max(self.next.get(partition, 0), int(reached))
            self._pause_finished(partition)
        if not self.bounded:
            return None
        keep = offsets < stops[codes]
        return None if keep.all() else keep

    def _pause_finished(self, partition: Partition) -> None:
        if (
            self.bounded
            and partition not in self.paused
            and self.next.get(partition, 0) >= self.stops.get(partition, 0)
        ):
            self.paused.add(partition)
            self.consumer.incremental_unassign([TopicPartition(*partition)])

    def _decode(self, messages: list[Message], codes: np.ndarray) -> pa.Table | None:
        values = [m.value() for m in messages]
        records = Records(messages, codes, values)
        self.metrics.bytes_in += records.value_bytes
        rows, malformed, positions = self.decoder.decode(records)
        if malformed:
            topics, places = records.where(positions)
            for topic in sorted(set(topics)):
                chosen = [i for i, t in enumerate(topics) if t == topic]
                self.dead_letters.write(
                    [malformed[i] for i in chosen], f"kafka:{topic}", [places[i] for i in chosen]
                )
            self.metrics.malformed = self.dead_letters.count
        self.metrics.records_in += rows.num_rows
        return rows if rows.num_rows else None

    def exhausted(self) -> bool:
        return self.bounded and all(self.next.get(p, 0) >= stop for p, stop in self.stops.items())

    # --- lag, checkpoints and commits -----------------------------------------------------------

    def lag(self) -> int:
        return sum(self.lag_per_partition().values())

    def lag_per_partition(self) -> dict[int, int]:
        """Per partition index, records in the topic this source has not read yet (from the
        client's cached end offsets: no broker round trip). The last ones once closed."""
        if self.closed:
            return self._lags
        lags = {}
        for partition, offset in self.next.items():
            try:
                _, high = self.consumer.get_watermark_offsets(TopicPartition(*partition), cached=True)
            except KafkaException:
                continue
            if high >= 0:
                lags[self.index[partition]] = max(high - offset, 0)
        self._lags = lags
        return lags

    def position(self) -> object:
        return {"next": dict(self.next), "stops": dict(self.stops), "index": dict(self.index)}

    def seek(self, position: object) -> None:
        assert isinstance(position, dict)
        # the checkpoint's partition indexes (its watermarks are kept by them); partitions found
        # since get the next ones, and are read from where the startup mode says
        index = dict(position["index"])
        for partition in self.index:
            index.setdefault(partition, len(index))
        self.index = index
        self.next = {**self.next, **position["next"]}
        if self.bounded:
            self.stops = dict(position["stops"])
        self._assign()

    def commit_checkpoint(self, position: object) -> None:
        """A checkpoint holding `position` is complete: its offsets become the group's."""
        if not self.group:
            return
        assert isinstance(position, dict)
        offsets = [TopicPartition(t, p, o) for (t, p), o in position["next"].items() if o >= 0]
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=True)
            except KafkaException as e:
                _committed(e.args[0], offsets)

    def close(self) -> None:
        if not self.closed:
            self.lag_per_partition()
            self.closed = True
            self.consumer.close()
