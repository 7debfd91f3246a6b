"""Flink's collection types, ARRAY<T>, MAP<K, V> and ROW<name T, ...>, and DuckDB's LIST, MAP and STRUCT.

A column of such a type carries its Flink name (`ARRAY<INT>`, `ROW<`x` INT, `y` STRING>`) and its
DuckDB name in one canonical spelling (`INTEGER[]`, `MAP(VARCHAR, INTEGER)`, `STRUCT("x" INTEGER,
"y" VARCHAR)`): the spelling DuckDB reports for a derived column is brought to it, so two columns
of one type always compare equal. Element, value and field types are read back from the DuckDB
name, so the translator knows the type of `a[1]`, `m['k']` and `r.x`.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from clickstream.schema import is_collection_type

NESTED_KINDS = (exp.DType.ARRAY, exp.DType.LIST, exp.DType.MAP, exp.DType.STRUCT)

# A leaf type's (Flink name, DuckDB name).
Leaf = Callable[[exp.DataType], tuple[str, str]]


is_nested = is_collection_type


def nested_names(datatype: exp.DataType, leaf: Leaf) -> tuple[str, str]:
    """(Flink name, canonical DuckDB name) of a collection type, leaves named by `leaf`."""
    kind = datatype.this
    if kind not in NESTED_KINDS:
        return leaf(datatype)
    parts = [_part(p) for p in datatype.expressions]
    if kind in (exp.DType.ARRAY, exp.DType.LIST):
        flink, duck = nested_names(parts[0][1], leaf)
        return f"ARRAY<{flink}>", f"{duck}[]"
    if kind == exp.DType.MAP:
        (kf, kd), (vf, vd) = (nested_names(t, leaf) for _, t in parts)
        return f"MAP<{kf}, {vf}>", f"MAP({kd}, {vd})"
    fields = [(name, *nested_names(t, leaf)) for name, t in parts]
    flink = ", ".join(f"`{n}` {f}" for n, f, _ in fields)
    duck = ", ".join(f"{quote(n)} {d}" for n, _, d in fields)
    return f"ROW<{flink}>", f"STRUCT({duck})"


def parse_duck(duck_type: str) -> exp.DataType:
    return exp.DataType.build(duck_type, dialect="duckdb")


def element_type(duck_type: str) -> str | None:
    """The element type of a LIST type, else None."""
    datatype = parse_duck(duck_type) if is_nested(duck_type) else None
    if datatype is None or datatype.this not in (exp.DType.ARRAY, exp.DType.LIST):
        return None
    return canonical(datatype.expressions[0])


def map_types(duck_type: str) -> tuple[str, str] | None:
    """(key type, value type) of a MAP type, else None."""
    datatype = parse_duck(duck_type) if is_nested(duck_type) else None
    if datatype is None or datatype.this != exp.DType.MAP:
        return None
    key, value = datatype.expressions
    return canonical(key), canonical(value)


def fields(duck_type: str | None) -> list[tuple[str, str]] | None:
    """The (name, DuckDB type) fields of a STRUCT type, else None."""
    datatype = parse_duck(duck_type) if duck_type and duck_type.startswith("STRUCT(") else None
    if datatype is None or datatype.this != exp.DType.STRUCT:
        return None
    return [(name, canonical(t)) for name, t in (_part(p) for p in datatype.expressions)]


def field_type(duck_type: str | None, name: str) -> str | None:
    """The type of field `name` (as Flink matches it: case-insensitively here) of a STRUCT type."""
    return next((t for n, t in fields(duck_type) or [] if n.lower() == name.lower()), None)


def canonical(datatype: exp.DataType) -> str:
    """The canonical DuckDB name of a type parsed from a DuckDB name."""
    from clickstream.sql.types import duckdb_leaf_names

    return nested_names(datatype, duckdb_leaf_names)[1]


def flink_name(duck_type: str) -> str:
    """The Flink name of a DuckDB collection type."""
    from clickstream.sql.types import duckdb_leaf_names

    return nested_names(parse_duck(duck_type), duckdb_leaf_names)[0]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _part(node: exp.Expression) -> tuple[str, exp.DataType]:
    """A nested type's part: a field `name type` (a ColumnDef) or a bare type."""
    if isinstance(node, exp.ColumnDef):
        kind = node.args["kind"]
        return node.name, kind
    assert isinstance(node, exp.DataType)
    return "", node
