"""`'connector' = '...'` to the classes that implement it."""

from __future__ import annotations

import importlib

from clickstream.config import Settings
from clickstream.connectors.base import BaseLookupSource, BaseSink, BaseSource
from clickstream.errors import ConnectorError
from clickstream.schema import ConnectorCapabilities, Role, SinkMode, TableDef

# connector name -> (module, source class, sink class, lookup class); None where a role is missing.
_CONNECTORS: dict[str, tuple[str, str | None, str | None, str | None]] = {
    "filesystem": ("clickstream.connectors.filesystem", "FileSystemSource", "FileSystemSink", None),
    "jdbc": ("clickstream.connectors.jdbc", None, "JdbcSink", "JdbcLookupSource"),
    "print": ("clickstream.connectors.print", None, "PrintSink", None),
    "blackhole": ("clickstream.connectors.blackhole", None, "BlackholeSink", None),
    "datagen": ("clickstream.connectors.datagen", "DataGenSource", None, None),
    "log": ("clickstream.connectors.log", "LogSource", "LogSink", None),
}

_ROLES: dict[Role, int] = {"source": 1, "sink": 2, "lookup": 3}

# How each sink takes a changelog (see ConnectorCapabilities); the others upsert by primary key.
_SINK_MODES: dict[str, SinkMode] = {"print": "changelog", "blackhole": "changelog", "filesystem": "append"}


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
    return ConnectorCapabilities(roles, _SINK_MODES.get(table.connector, "upsert"))


def create_source(table: TableDef, settings: Settings) -> BaseSource:
    return _load(table, "source")(table, settings)


def create_sink(table: TableDef, settings: Settings) -> BaseSink:
    return _load(table, "sink")(table, settings)


def create_lookup(table: TableDef, settings: Settings) -> BaseLookupSource:
    return _load(table, "lookup")(table, settings)
