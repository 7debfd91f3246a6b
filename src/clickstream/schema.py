"""What every layer shares about a table: its columns, their types, its time attributes and options.

Neutral ground between the layers of ARCHITECTURE.md: the SQL front end declares tables with these
classes, connectors read and write rows shaped by them, and the runtime runs plans over them, so no
layer has to import another to talk about a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from sqlglot import exp

from clickstream.errors import UnsupportedFeatureError

# The hidden column every batch carries with the watermark just before each row (epoch ms): the
# runtime stamps it, and CURRENT_WATERMARK(rowtime) in a query reads it.
WATERMARK_COLUMN = "__wm"

SECRET_OPTIONS = ("password", "properties.sasl.jaas.config", "properties.ssl.key.password")


@dataclass(frozen=True)
class Column:
    """One column of a table or of an intermediate result."""

    name: str
    flink_type: str
    duck_type: str
    nullable: bool = True

    @property
    def is_timestamp(self) -> bool:
        return self.duck_type in ("TIMESTAMP", "TIMESTAMPTZ")

    @property
    def is_ltz(self) -> bool:
        return self.duck_type == "TIMESTAMPTZ"


@dataclass
class ComputedColumn:
    name: str
    expression: exp.Expression  # Flink SQL over the physical columns

    @property
    def is_proctime(self) -> bool:
        return isinstance(self.expression, exp.Anonymous) and self.expression.name.upper() == ("PROCTIME")


@dataclass(frozen=True)
class MetadataColumn:
    """`col TYPE METADATA [FROM 'key'] [VIRTUAL]`: the connector reads the column from a record's
    metadata (`key`, else the column's name); a VIRTUAL one is not written by a sink."""

    key: str
    virtual: bool = False


@dataclass
class Watermark:
    column: str
    expression: exp.Expression  # Flink SQL over the table's columns; value is the watermark


@dataclass
class TableDef:
    """A `CREATE TABLE`: its physical columns, derived columns, time attributes and options."""

    name: str
    physical: list[Column]
    computed: list[ComputedColumn] = field(default_factory=list)
    computed_columns: list[Column] = field(default_factory=list)  # types, once planned
    watermark: Watermark | None = None
    primary_key: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    # physical columns read from record metadata, by column name
    metadata: dict[str, MetadataColumn] = field(default_factory=dict)

    @property
    def connector(self) -> str:
        return self.options.get("connector", "")

    @property
    def proctime_column(self) -> str | None:
        return next((c.name for c in self.computed if c.is_proctime), None)

    @property
    def columns(self) -> list[Column]:
        """All columns in declaration order: physical first, then computed (as Flink lists them)."""
        return self.physical + self.computed_columns

    @property
    def persisted(self) -> list[Column]:
        """The physical columns an INSERT writes: all but the VIRTUAL metadata ones."""
        return [c for c in self.physical if not (c.name in self.metadata and self.metadata[c.name].virtual)]

    def column(self, name: str) -> Column | None:
        lowered = name.lower()
        return next((c for c in self.columns if c.name.lower() == lowered), None)

    def public_options(self) -> dict[str, str]:
        """Options with secrets masked, for DESCRIBE, EXPLAIN, logs and the dashboard."""
        return {k: ("******" if k in SECRET_OPTIONS else v) for k, v in self.options.items()}


def is_collection_type(duck_type: str | None) -> bool:
    """Whether a DuckDB type name is a LIST, MAP or STRUCT (Flink's ARRAY, MAP, ROW)."""
    if not duck_type:
        return False
    return duck_type.endswith("]") or duck_type.startswith(("MAP(", "STRUCT("))


def arrow_type(column: Column):
    """The Arrow type a connector should produce for a column."""

    return _arrow_of(column.duck_type, column.flink_type)


def _arrow_of(duck: str, flink_type: str):
    """The Arrow type of a DuckDB type name; LIST, MAP and STRUCT ones element by element."""
    import pyarrow as pa

    if is_collection_type(duck):
        datatype = exp.DataType.build(duck, dialect="duckdb")
        parts = [
            (p.name, p.args["kind"]) if isinstance(p, exp.ColumnDef) else ("", p)
            for p in datatype.expressions
        ]
        types = [_arrow_of(_duck_name(t), flink_type) for _, t in parts]
        if datatype.this == exp.DType.MAP:
            return pa.map_(types[0], types[1])
        if datatype.this == exp.DType.STRUCT:
            return pa.struct([pa.field(n, t) for (n, _), t in zip(parts, types, strict=True)])
        return pa.list_(types[0])
    simple = {
        "BOOLEAN": pa.bool_(),
        "TINYINT": pa.int8(),
        "SMALLINT": pa.int16(),
        "INTEGER": pa.int32(),
        "BIGINT": pa.int64(),
        "FLOAT": pa.float32(),
        "DOUBLE": pa.float64(),
        "DATE": pa.date32(),
        "TIME": pa.time64("us"),
        "VARCHAR": pa.string(),
        "BLOB": pa.binary(),
        "TIMESTAMP": pa.timestamp("us"),
        "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    }
    if duck in simple:
        return simple[duck]
    if duck.startswith("DECIMAL"):
        precision, scale = duck[duck.index("(") + 1 : -1].split(",")
        return pa.decimal128(int(precision), int(scale))
    raise UnsupportedFeatureError(f"data type {flink_type} has no Arrow mapping")


def _duck_name(datatype: exp.DataType) -> str:
    """DuckDB's own name of a type inside a collection (sqlglot spells some differently)."""
    names = {
        exp.DType.INT: "INTEGER",
        exp.DType.TEXT: "VARCHAR",
        exp.DType.VARCHAR: "VARCHAR",
        exp.DType.TIMESTAMPTZ: "TIMESTAMPTZ",
        exp.DType.TIMESTAMP: "TIMESTAMP",
        exp.DType.TIMESTAMPNTZ: "TIMESTAMP",
        exp.DType.FLOAT: "FLOAT",
        exp.DType.VARBINARY: "BLOB",
        exp.DType.BLOB: "BLOB",
    }
    return names.get(datatype.this) or datatype.sql(dialect="duckdb")


def plan_name(name: str) -> str:
    """The name a user's column goes by inside a plan. Operators give their own columns names
    starting with `__` (and `_op`); a user name that could be one of them is carried as `$__...`
    between the scan (or SELECT list) and the sink, so it never meets an operator's column."""
    return "$" + name if name.startswith("__") or name == "_op" else name


def with_plan_name(column: Column) -> Column:
    return replace(column, name=plan_name(column.name))


def window_time_sql(column: Column, time_zone: str) -> str:
    """DuckDB SQL for the wall-clock epoch milliseconds of a rowtime value: windows align in the
    session time zone for TIMESTAMP_LTZ (as in Flink) and on the value itself for TIMESTAMP."""
    quoted = '"' + column.name.replace('"', '""') + '"'
    if column.is_ltz and time_zone.upper() not in ("UTC", "Z", "GMT", "ETC/UTC"):
        return f"epoch_ms(timezone('{time_zone}', {quoted}))"
    return f"epoch_ms({quoted})"


Role = Literal["source", "sink", "lookup"]
SinkMode = Literal["upsert", "changelog", "append"]
# What a source emits: only inserts; every change (-U/+U/-D, from a changelog format such as
# debezium-json); or upserts and deletes by primary key (the log connector with a PRIMARY KEY,
# as upsert-kafka), which the planner completes with a ChangelogNormalize.
SourceMode = Literal["insert", "all", "upsert"]


@dataclass(frozen=True)
class ConnectorCapabilities:
    """What a connector declares once, and the planner reads: the roles it can play and how its sink
    takes a changelog (Flink's `DynamicTableSink.getChangelogMode`)."""

    roles: frozenset[Role]
    # "upsert": applies changes by the table's primary key (appends when it has none);
    # "changelog": writes every change as it comes (print, blackhole), so it takes updates with no key;
    # "append": writes every change as a row, whatever its key: only for insert-only queries.
    sink_mode: SinkMode = "upsert"
    source_mode: SourceMode = "insert"

    def can_be(self, role: Role) -> bool:
        return role in self.roles
