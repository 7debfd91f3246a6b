"""Flink SQL data types and their DuckDB / Arrow counterparts.

A column keeps its Flink type name (what DESCRIBE shows and what the user wrote) and the DuckDB type the
engine computes with. TIMESTAMP_LTZ is an instant: DuckDB's TIMESTAMPTZ, rendered in the session time
zone (`table.local-time-zone`), which is exactly Flink's meaning.
"""

from __future__ import annotations

from sqlglot import exp

from clickstream.errors import UnsupportedFeatureError
from clickstream.schema import Column
from clickstream.sql import collection_types

_SIMPLE: dict[exp.DType, tuple[str, str]] = {
    exp.DType.BOOLEAN: ("BOOLEAN", "BOOLEAN"),
    exp.DType.TINYINT: ("TINYINT", "TINYINT"),
    exp.DType.SMALLINT: ("SMALLINT", "SMALLINT"),
    exp.DType.INT: ("INT", "INTEGER"),
    exp.DType.BIGINT: ("BIGINT", "BIGINT"),
    exp.DType.FLOAT: ("FLOAT", "FLOAT"),
    exp.DType.DOUBLE: ("DOUBLE", "DOUBLE"),
    exp.DType.DATE: ("DATE", "DATE"),
    exp.DType.TIME: ("TIME(0)", "TIME"),
    exp.DType.TEXT: ("STRING", "VARCHAR"),
    exp.DType.VARCHAR: ("STRING", "VARCHAR"),
    exp.DType.NVARCHAR: ("STRING", "VARCHAR"),
    exp.DType.CHAR: ("STRING", "VARCHAR"),
    exp.DType.VARBINARY: ("BYTES", "BLOB"),
    exp.DType.BINARY: ("BYTES", "BLOB"),
}

# DuckDB result types back to Flink names, for DESCRIBE / EXPLAIN of derived columns.
_FROM_DUCKDB = {
    "BOOLEAN": "BOOLEAN",
    "TINYINT": "TINYINT",
    "SMALLINT": "SMALLINT",
    "INTEGER": "INT",
    "BIGINT": "BIGINT",
    "HUGEINT": "DECIMAL(38, 0)",
    "FLOAT": "FLOAT",
    "DOUBLE": "DOUBLE",
    "DATE": "DATE",
    "TIME": "TIME(0)",
    "VARCHAR": "STRING",
    "BLOB": "BYTES",
    "TIMESTAMP": "TIMESTAMP(3)",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP_LTZ(3)",
    "TIMESTAMPTZ": "TIMESTAMP_LTZ(3)",
    "INTERVAL": "INTERVAL",
}


def column_from_datatype(name: str, datatype: exp.DataType, nullable: bool = True) -> Column:
    """Map a parsed Flink type to a Column; an unsupported type is named in the error."""
    flink, duck = datatype_names(datatype)
    return Column(name, flink, duck, nullable)


def datatype_names(datatype: exp.DataType) -> tuple[str, str]:
    """(Flink name, DuckDB name) of a parsed type."""
    kind = datatype.this
    params = [p.this.this if isinstance(p.this, exp.Literal) else p.sql() for p in datatype.expressions]
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind in collection_types.NESTED_KINDS:
        return collection_types.nested_names(datatype, datatype_names)
    if kind in (exp.DType.TIMESTAMP, exp.DType.DATETIME, exp.DType.TIMESTAMPNTZ):
        precision = params[0] if params else "6"
        return f"TIMESTAMP({precision})", "TIMESTAMP"
    if kind in (exp.DType.TIMESTAMPLTZ, exp.DType.TIMESTAMPTZ):
        precision = params[0] if params else "6"
        return f"TIMESTAMP_LTZ({precision})", "TIMESTAMPTZ"
    if kind == exp.DType.DECIMAL:
        precision, scale = (params + ["10", "0"])[:2] if params else ("10", "0")
        if len(params) == 1:
            scale = "0"
        return f"DECIMAL({precision}, {scale})", f"DECIMAL({precision}, {scale})"
    raise UnsupportedFeatureError(f"data type {datatype.sql()} is not supported")


def duckdb_leaf_names(datatype: exp.DataType) -> tuple[str, str]:
    """(Flink name, DuckDB name) of a non-collection type parsed from a DuckDB type name."""
    try:
        duck = datatype_names(datatype)[1]
    except UnsupportedFeatureError:
        duck = datatype.sql(dialect="duckdb")
    return flink_type_of_duckdb(duck), duck


def flink_type_of_duckdb(duck_type: str) -> str:
    """Flink name for a type DuckDB inferred."""
    if collection_types.is_nested(duck_type):
        return collection_types.flink_name(duck_type)
    if duck_type.startswith("DECIMAL"):
        return duck_type
    if duck_type.startswith("TIMESTAMP") and "TIME ZONE" not in duck_type and duck_type != "TIMESTAMPTZ":
        return "TIMESTAMP(3)"
    return _FROM_DUCKDB.get(duck_type, duck_type)


def normalize_duckdb_type(duck_type: str) -> str:
    """DuckDB spells TIMESTAMPTZ two ways, and collection types several; keep one."""
    if collection_types.is_nested(duck_type):
        return collection_types.canonical(collection_types.parse_duck(duck_type))
    if duck_type == "TIMESTAMP WITH TIME ZONE":
        return "TIMESTAMPTZ"
    if duck_type.startswith("TIMESTAMP_") and duck_type != "TIMESTAMPTZ":
        return "TIMESTAMP"
    return duck_type
