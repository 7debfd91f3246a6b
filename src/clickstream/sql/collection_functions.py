"""Flink's functions on ARRAY, MAP and ROW values, in DuckDB's LIST, MAP and STRUCT terms.

- `a[i]` is 1-based; an index past the end is NULL, a literal index below 1 is refused and a
  computed one is NULL, as in Flink (DuckDB would count a negative index from the end). `m[k]`
  is the value of key k or NULL; `r[i]` is a ROW's i-th field.
- `r.x`, `t.r.x`, `a[1].x`: a ROW's field; a table qualifier wins over a column of the same name,
  as in Flink's name resolution.
- Constructors: `ARRAY[...]` (DuckDB's list), `MAP[k1, v1, ...]`, `ROW(a, b)` (fields `EXPR$0`,
  `EXPR$1`, ... as Flink names them).
- CAST of a collection to STRING writes Flink's text: `[1, NULL]`, `{k=1, j=2}`, `(1, b)`, each
  element as CAST(element AS STRING) writes it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from clickstream.errors import SqlValidationError
from clickstream.sql import collection_types as ct
from clickstream.sql.base_functions import Builder, Call, func, sql
from clickstream.sql.expressions import MapConstructor

# The DuckDB type of a Flink expression where it follows from the query, else None.
TypeOf = Callable[[exp.Expression], str | None]


def element_at(
    container: exp.Expression, index: exp.Expression, container_type: str | None, constant: int | None
) -> exp.Expression:
    """`container[index]`: an ARRAY element (1-based; NULL past the end, and a literal index below
    1 refused, as in Flink), a MAP value, or a ROW's field by position; `constant`: the index
    when it is an integer literal."""
    if ct.map_types(container_type or "") is not None:
        return func("map_extract_value", container, index)
    fields = ct.fields(container_type)
    if fields is not None and constant is not None and 1 <= constant <= len(fields):
        return func("struct_extract", container, exp.Literal.string(fields[constant - 1][0]))
    if ct.element_type(container_type or "") is None:
        raise SqlValidationError(
            f"Cannot apply 'ITEM' to a value of type {_flink(container_type)}: an ARRAY, a MAP or a ROW "
            "(with a field position) is needed"
        )
    if constant is not None and constant < 1:
        raise SqlValidationError(f"Array element access needs an index starting at 1 but was {constant}.")
    if constant is not None:
        return func("list_extract", container, exp.Literal.number(constant))
    return func("list_extract", container, sql("CASE WHEN __a0 >= 1 THEN __a0 END", index))


def field(value: exp.Expression, name: str, value_type: str | None) -> exp.Expression:
    """Field `name` of a ROW value."""
    if value_type is not None and ct.field_type(value_type, name) is None:
        names = [n for n, _ in ct.fields(value_type) or []]
        if not names:
            raise SqlValidationError(f"Cannot read field '{name}' of a value of type {_flink(value_type)}")
        raise SqlValidationError(
            f"Unknown field '{name}' of {_flink(value_type)}; fields: {', '.join(names)}"
        )
    return _named(value, name)


def field_path(
    node: exp.Column, column_type: Callable[[exp.Column], str]
) -> tuple[exp.Column, list[str]] | None:
    """`r.x`, `t.r.x`, `r.s.x` read as (the ROW column, its field names), trying the longest
    column reference first; None when no prefix of the name is a ROW column."""
    parts = [p.name for p in node.parts]
    for k in range(min(len(parts) - 1, 2), 0, -1):
        column = exp.column(parts[k - 1], table=parts[k - 2] if k == 2 else None)
        column.meta.update(node.meta)
        try:
            kind = column_type(column)
        except SqlValidationError:
            continue
        if ct.fields(kind) is not None:
            return column, parts[k:]
    return None


def path_type(column_type: str | None, names: list[str]) -> str | None:
    """The type of field path `names` inside a ROW type."""
    for name in names:
        column_type = ct.field_type(column_type, name)
    return column_type


def row_comparison(
    node: exp.EQ | exp.NEQ,
    types: tuple[str | None, str | None],
    visit: Callable[[exp.Expression], exp.Expression],
) -> exp.Expression | None:
    """`r = ROW(1, 'b')`: ROWs compare field by field in order, whatever their field names (DuckDB
    matches STRUCTs by name); None (nothing translated) unless both sides are ROWs with other names."""
    fields = [ct.fields(t) for t in types]
    if not fields[0] or not fields[1] or [n for n, _ in fields[0]] == [n for n, _ in fields[1]]:
        return None
    sides = [
        sql(
            "CASE WHEN __a0 IS NULL THEN NULL ELSE __a1 END",
            value,
            func("row", *(_named(value, n) for n, _ in f)),
        )
        for value, f in ((visit(node.this), fields[0]), (visit(node.expression), fields[1]))
    ]
    return type(node)(this=sides[0], expression=sides[1])


def _named(value: exp.Expression, name: str) -> exp.Expression:
    return func("struct_extract", value, exp.Literal.string(name))


def type_of(node: exp.Expression, type_of: TypeOf) -> str | None:
    """The DuckDB type of a collection expression (access, constructor, function), else None."""
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
        container = type_of(node.this) or ""
        pair = ct.map_types(container)
        return pair[1] if pair else ct.element_type(container)
    if isinstance(node, exp.Dot):
        return ct.field_type(type_of(node.this), node.name)
    if isinstance(node, exp.Array):
        element = next((type_of(e) for e in node.expressions if not isinstance(e, exp.Null)), None)
        return f"{element}[]" if element else None
    name = node.name.upper() if isinstance(node, exp.Anonymous) else None
    args = node.expressions if isinstance(node, exp.Anonymous) else []
    if name == "ROW" and args:
        types = [type_of(a) for a in args]
        if None in types:
            return None
        return "STRUCT(" + ", ".join(f'"EXPR${i}" {t}' for i, t in enumerate(types)) + ")"
    if name in ("CARDINALITY", "ARRAY_POSITION"):
        return "INTEGER"
    if name == "ARRAY_CONTAINS":
        return "BOOLEAN"
    if name in ("ELEMENT", "ARRAY_MAX", "ARRAY_MIN") and args:
        return ct.element_type(type_of(args[0]) or "")
    if name in ("ARRAY_REVERSE", "ARRAY_DISTINCT", "ARRAY_CONCAT") and args:
        return type_of(args[0])
    return None


def _cardinality(call: Call) -> exp.Expression:
    call.arity(1)
    kind = call.type(0) or ""
    if ct.map_types(kind) is not None:
        return sql("CAST(cardinality(__a0) AS INTEGER)", call.args[0])
    if ct.element_type(kind) is not None:
        return sql("CAST(len(__a0) AS INTEGER)", call.args[0])
    raise SqlValidationError(f"CARDINALITY takes an ARRAY or a MAP, not {_flink(call.type(0))}")


def _array_arg(call: Call, i: int = 0) -> str:
    element = ct.element_type(call.type(i) or "")
    if element is None:
        raise SqlValidationError(f"argument {i + 1} must be an ARRAY, not {_flink(call.type(i))}")
    return element


def _array_contains(call: Call) -> exp.Expression:
    """ARRAY_CONTAINS(a, x): NULL for a NULL array; a NULL x is found if the array holds a NULL."""
    call.arity(2)
    _array_arg(call)
    return sql(
        "CASE WHEN __a0 IS NULL THEN NULL WHEN __a1 IS NULL THEN list_count(__a0) < len(__a0) "
        "ELSE list_contains(__a0, __a1) END",
        *call.args,
    )


def _element(call: Call) -> exp.Expression:
    """ELEMENT(a): the only element of a one-element array, NULL for an empty one; more fail the job."""
    call.arity(1)
    _array_arg(call)
    return sql(
        "CASE WHEN len(__a0) > 1 THEN error('Array has more than one element.') "
        "ELSE list_extract(__a0, 1) END",
        call.args[0],
    )


def _array_function(text: str, arity: tuple[int, ...] = (1,)) -> Builder:
    """A function of an ARRAY (argument 1) written as DuckDB SQL over __a0, __a1, ..."""

    def build(call: Call) -> exp.Expression:
        call.arity(*arity)
        _array_arg(call)
        return sql(text, *call.args)

    return build


def _array_join(call: Call) -> exp.Expression:
    """ARRAY_JOIN(a, separator[, null_replacement]): NULL elements left out unless replaced."""
    call.arity(2, 3)
    _array_arg(call)
    if len(call.args) == 2:
        return sql("array_to_string(__a0, __a1)", *call.args)
    return sql("array_to_string(list_transform(__a0, lambda __x: coalesce(__x, __a2)), __a1)", *call.args)


def _array_concat(call: Call) -> exp.Expression:
    """ARRAY_CONCAT(a, b, ...): NULL when any array is NULL."""
    if not call.args:
        raise SqlValidationError("ARRAY_CONCAT needs at least one array")
    for i in range(len(call.args)):
        _array_arg(call, i)
    names = [f"__a{i}" for i in range(len(call.args))]
    nulls = " OR ".join(f"{n} IS NULL" for n in names)
    return sql(f"CASE WHEN {nulls} THEN NULL ELSE list_concat({', '.join(names)}) END", *call.args)


def _map_function(name: str) -> Builder:
    def build(call: Call) -> exp.Expression:
        call.arity(1)
        if ct.map_types(call.type(0) or "") is None:
            raise SqlValidationError(f"argument 1 must be a MAP, not {_flink(call.type(0))}")
        return func(name, call.args[0])

    return build


def _row(call: Call) -> exp.Expression:
    """ROW(a, b, ...): a ROW with fields EXPR$0, EXPR$1, ... (Flink's names)."""
    if not call.args:
        raise SqlValidationError("ROW needs at least one value")
    return exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.to_identifier(f"EXPR${i}", quoted=True), expression=arg)
            for i, arg in enumerate(call.args)
        ]
    )


def map_constructor(
    node: MapConstructor, visit: Callable[[exp.Expression], exp.Expression]
) -> exp.Expression:
    """MAP[k1, v1, k2, v2, ...]; of equal keys the last one's value stays, as in Flink."""
    sources = node.expressions
    if not sources or len(sources) % 2:
        raise SqlValidationError("MAP[...] needs an even number of arguments: key, value, key, value, ...")
    args = [visit(a) for a in sources]
    keys, values = exp.Array(expressions=args[0::2]), exp.Array(expressions=args[1::2])
    literal_keys = [k.this for k in sources[0::2] if isinstance(k, exp.Literal)]
    if len(set(literal_keys)) == len(sources) // 2:  # distinct literal keys: nothing to drop
        return func("map", keys, values)
    last = "NOT list_contains(list_slice(__a0, __i + 1, len(__a0)), list_extract(__a0, __i))"
    return sql(
        f"map(list_filter(__a0, lambda __x, __i: {last}), list_filter(__a1, lambda __x, __i: {last}))",
        keys,
        values,
    )


def to_string(
    value: exp.Expression, duck_type: str, scalar: Callable[[exp.Expression, str], exp.Expression]
) -> exp.Expression:
    """CAST(value AS STRING) of a collection, each element written by `scalar(element, its type)`."""

    def text(element: exp.Expression, kind: str) -> exp.Expression:
        inner = to_string(element, kind, scalar) if ct.is_nested(kind) else scalar(element, kind)
        return sql("coalesce(__a0, 'NULL')", inner)

    element = ct.element_type(duck_type)
    if element is not None:
        x = exp.column("__x")
        body = text(x, element)
        items = sql("list_transform(__a0, lambda __x: __a1)", value, body)
        return sql("'[' || array_to_string(__a0, ', ') || ']'", items)
    pair = ct.map_types(duck_type)
    if pair is not None:
        e = exp.column("__e")
        key, value_ = (func("struct_extract", e, exp.Literal.string(n)) for n in ("key", "value"))
        entry = sql("__a0 || '=' || __a1", text(key, pair[0]), text(value_, pair[1]))
        items = sql("list_transform(map_entries(__a0), lambda __e: __a1)", value, entry)
        return sql(
            "CASE WHEN __a0 IS NULL THEN NULL ELSE '{' || array_to_string(__a1, ', ') || '}' END",
            value,
            items,
        )
    parts = [
        text(func("struct_extract", value, exp.Literal.string(n)), t) for n, t in ct.fields(duck_type) or []
    ]
    joined = " || ', ' || ".join(f"__a{i + 1}" for i in range(len(parts)))
    return sql(f"CASE WHEN __a0 IS NULL THEN NULL ELSE '(' || {joined} || ')' END", value, *parts)


def _flink(duck_type: str | None) -> str:
    from clickstream.sql.types import flink_type_of_duckdb

    return flink_type_of_duckdb(duck_type) if duck_type else "unknown type"


COLLECTION_FUNCTIONS: dict[str, Builder] = {
    "CARDINALITY": _cardinality,
    "ARRAY_CONTAINS": _array_contains,
    "ELEMENT": _element,
    "ROW": _row,
    "ARRAY_REVERSE": _array_function("list_reverse(__a0)"),
    "ARRAY_MAX": _array_function("list_max(__a0)"),
    "ARRAY_MIN": _array_function("list_min(__a0)"),
    # 0 when absent; NULL for a NULL array
    "ARRAY_POSITION": _array_function(
        "CASE WHEN __a0 IS NULL THEN NULL ELSE CAST(coalesce(list_position(__a0, __a1), 0) AS INTEGER) END",
        (2,),
    ),
    # the first of equal elements, in order (NULL too, once)
    "ARRAY_DISTINCT": _array_function("list_filter(__a0, lambda __x, __i: list_position(__a0, __x) = __i)"),
    "ARRAY_JOIN": _array_join,
    "ARRAY_CONCAT": _array_concat,
    "MAP_KEYS": _map_function("map_keys"),
    "MAP_VALUES": _map_function("map_values"),
}
