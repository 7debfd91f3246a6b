"""`'connector' = '...'` to the classes that implement it, and the options each one declares."""

from __future__ import annotations

import importlib

from clickstream.config import Settings
from clickstream.connectors import options
from clickstream.connectors.base import BaseLookupSource, BaseSink, BaseSource
from clickstream.connectors.changelog import is_changelog_format
from clickstream.connectors.formats import FORMATS
from clickstream.errors import ConnectorError
from clickstream.schema import ConnectorCapabilities, Role, SinkMode, SourceMode, TableDef

# connector name -> (module, source class, sink class, lookup class); None where a role is missing.
# Each module declares its `WITH` options in `OPTIONS` (see `options.Option`).
_CONNECTORS: dict[str, tuple[str, str | None, str | None, str | None]] = {
    "filesystem": ("clickstream.connectors.filesystem", "FileSystemSource", "FileSystemSink", None),
    "jdbc": ("clickstream.connectors.jdbc", None, "JdbcSink", "JdbcLookupSource"),
    "print": ("clickstream.connectors.print", None, "PrintSink", None),
    "blackhole": ("clickstream.connectors.blackhole", None, "BlackholeSink", None),
    "datagen": ("clickstream.connectors.datagen", "DataGenSource", None, None),
    "log": ("clickstream.connectors.log", "LogSource", "LogSink", None),
    "kafka": ("clickstream.connectors.kafka", "KafkaSource", "KafkaSink", None),
    "upsert-kafka": ("clickstream.connectors.upsert_kafka", "UpsertKafkaSource", "UpsertKafkaSink", None),
}
# connectors whose tables may declare METADATA columns
_METADATA = ("kafka", "upsert-kafka")

_ROLES: dict[Role, int] = {"source": 1, "sink": 2, "lookup": 3}

# How each sink takes a changelog (see ConnectorCapabilities); the others upsert by primary key.
_SINK_MODES: dict[str, SinkMode] = {
    "print": "changelog",
    "blackhole": "changelog",
    "filesystem": "append",
    "kafka": "append",
}


def connector_names() -> list[str]:
    return sorted(_CONNECTORS)


def _load(table: TableDef, role: Role):
    name = table.connector
    if not name:
        raise ConnectorError(f"Table '{table.name}' has no 'connector' option in its WITH clause")
    entry = _CONNECTORS.get(name)
    if entry is None:
        raise ConnectorError(
            f"Table '{table.name}': connector '{name}' is not supported; "
            f"available: {', '.join(connector_names())}"
        )
    class_name = entry[_ROLES[role]]
    if class_name is None:
        raise ConnectorError(f"Table '{table.name}': connector '{name}' cannot be used as a {role}")
    return getattr(importlib.import_module(entry[0]), class_name)


def capabilities(table: TableDef) -> ConnectorCapabilities:
    """What the table's connector can do (no role at all for an unknown connector)."""
    entry = _CONNECTORS.get(table.connector)
    roles = frozenset(
        role for role, index in _ROLES.items() if entry is not None and entry[index] is not None
    )
    return ConnectorCapabilities(roles, _SINK_MODES.get(table.connector, "upsert"), _source_mode(table))


def _source_mode(table: TableDef) -> SourceMode:
    """A changelog format gives every kind of change; the log connector reads a table with a
    PRIMARY KEY as upserts (Flink's filesystem connector keeps a json table insert-only)."""
    if is_changelog_format(table):
        return "all"
    if table.connector == "log" and table.primary_key:
        return "upsert"
    if table.connector == "upsert-kafka":
        return "upsert"
    return "insert"


def declared_options(connector: str) -> tuple[options.Option, ...]:
    """The options a connector declares (not counting `connector` and its formats' options)."""
    entry = _CONNECTORS[connector]
    return tuple(importlib.import_module(entry[0]).OPTIONS)


def check_options(table: TableDef) -> None:
    """Refuse the table's `WITH` options its connector does not declare, values its options do not
    take and required options it lacks (`ConnectorOptionError`), as Flink's `FactoryUtil` does.
    A table whose connector is unknown is left alone: using it fails, naming the connectors."""
    if table.connector not in _CONNECTORS:
        return
    if table.metadata and table.connector not in _METADATA:
        raise ConnectorError(
            f"Table '{table.name}': connector '{table.connector}' has no metadata columns "
            f"('{next(iter(table.metadata))}' is declared METADATA); only kafka and upsert-kafka do"
        )
    options.check(
        table.connector,
        table.name,
        declared_options(table.connector),
        FORMATS,
        table.options,
        [c.name for c in table.physical],
    )


def create_source(table: TableDef, settings: Settings) -> BaseSource:
    return _load(table, "source")(table, settings)


def create_sink(table: TableDef, settings: Settings) -> BaseSink:
    return _load(table, "sink")(table, settings)


def create_lookup(table: TableDef, settings: Settings) -> BaseLookupSource:
    return _load(table, "lookup")(table, settings)
