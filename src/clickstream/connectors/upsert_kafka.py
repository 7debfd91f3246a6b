"""The `upsert-kafka` connector: a topic as a primary-keyed changelog, as Flink's.

The source reads each record as an upsert of its key (the planner completes them into -U/+U with
a ChangelogNormalize) and a tombstone (a record without value) as the deletion of its key; it
reads every topic from its earliest offset, as Flink's. The sink writes +I/+U keyed by the
primary key and -D as tombstones. `key.format` and `value.format` are required, as in Flink.
"""

from __future__ import annotations

from clickstream.config import Settings
from clickstream.connectors.filesystem import DEAD_LETTER_PATH
from clickstream.connectors.kafka import KafkaSource
from clickstream.connectors.kafka_options import UPSERT_KAFKA_OPTIONS
from clickstream.connectors.kafka_sink import KafkaSink
from clickstream.errors import ConnectorError
from clickstream.schema import TableDef

OPTIONS = (*UPSERT_KAFKA_OPTIONS, DEAD_LETTER_PATH)


def _check(table: TableDef) -> None:
    if not table.primary_key:
        raise ConnectorError(
            f"Table '{table.name}': 'upsert-kafka' tables require to define a PRIMARY KEY constraint. "
            "The PRIMARY KEY specifies which columns should be read from or write to the Kafka message key."
        )
    missing = [k for k in ("key.format", "value.format") if k not in table.options]
    if missing:
        raise ConnectorError(f"Table '{table.name}': 'upsert-kafka' needs '{missing[0]}'")


class UpsertKafkaSource(KafkaSource):
    upsert = True

    def __init__(self, table: TableDef, settings: Settings) -> None:
        _check(table)
        super().__init__(table, settings)

    def check_table(self) -> None:
        pass  # a keyed changelog: the PRIMARY KEY is its key

    def _start(self, found):
        return {p: self._watermarks(p)[0] for p in found}  # a changelog is read from its start


class UpsertKafkaSink(KafkaSink):
    upsert = True

    def __init__(self, table: TableDef, settings: Settings) -> None:
        _check(table)
        super().__init__(table, settings)
