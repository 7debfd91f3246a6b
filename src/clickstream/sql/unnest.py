"""`CROSS JOIN UNNEST(...)`: a row per element of an ARRAY or entry of a MAP (Flink's Correlate).

    FROM t CROSS JOIN UNNEST(t.items) AS u(x)            -- ARRAY<T>: one column
    FROM t, UNNEST(t.lines) AS u(sku, n)                 -- ARRAY<ROW<...>>: the ROW's fields
    FROM t CROSS JOIN UNNEST(t.qty) AS u(k, v)           -- MAP<K, V>: key and value
    FROM t LEFT JOIN UNNEST(t.items) AS u(x) ON TRUE     -- rows without elements kept, NULLs
    FROM t LEFT JOIN UNNEST(t.items) AS u(x) ON x <> ''  -- elements that meet it; else NULLs
    FROM t CROSS JOIN UNNEST(t.items) WITH ORDINALITY AS u(x, pos)

The argument is any expression over the left side's columns. NULL elements of an array of ROWs
give no row, as in Flink. The result keeps the left side's
columns (and its rowtime, so a window can follow) and adds the element's; it appends when the
left side appends and passes each change through otherwise, as Flink's stateless Correlate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.schema import Column, plan_name
from clickstream.sql import collection_types
from clickstream.sql.plan import CorrelateNode, PlanNode
from clickstream.sql.scope import Scope, ScopeEntry, unique_name
from clickstream.sql.statements import position_of
from clickstream.sql.types import flink_type_of_duckdb, normalize_duckdb_type

if TYPE_CHECKING:
    from clickstream.sql.planner import Planner


def plan_unnest(planner: Planner, node: PlanNode, scope: Scope, join: exp.Join) -> tuple[PlanNode, Scope]:
    """`node` joined with the UNNEST in `join` (whose argument reads `scope`)."""
    unnest: exp.Unnest = join.this
    outer, on = _join_type(join)
    if len(unnest.expressions) != 1:
        raise UnsupportedFeatureError("UNNEST of more than one value is not supported", *position_of(unnest))
    expression = planner.bind(unnest.expressions[0], scope)
    duck = normalize_duckdb_type(planner.infer_types(node, [expression])[0])
    kind, names, types = _elements(duck, unnest)
    fields = list(names) if kind == "rows" else []
    ordinality = isinstance(unnest.args.get("offset"), exp.Identifier)
    if ordinality:
        names, types = [*names, "ORDINALITY"], [*types, "INTEGER"]
    alias = unnest.args.get("alias")
    names = _aliased(names, alias, unnest, ordinality)
    taken = {c.name.lower() for c in node.columns}
    columns = []
    for name, duck_type in zip(names, types, strict=True):
        internal = unique_name(plan_name(name), taken)
        taken.add(internal.lower())
        columns.append(Column(internal, flink_type_of_duckdb(duck_type), duck_type))
    correlate = CorrelateNode(
        columns=list(node.columns) + columns,
        input=node,
        expression=expression,
        kind=kind,
        fields=fields,
        outer=outer,
        ordinality=ordinality,
    )
    qualifier = alias.name if alias is not None and alias.name else None
    entries = [ScopeEntry(qualifier, n, c.name, c) for n, c in zip(names, columns, strict=True)]
    joined = Scope(scope.entries + entries)
    if on is not None:
        if ordinality:
            raise UnsupportedFeatureError(
                "JOIN UNNEST ... WITH ORDINALITY with an ON condition is not supported", *position_of(on)
            )
        correlate.condition = planner.bind(on, joined)
        planner.infer_types(correlate, [], correlate.condition)
    return correlate, joined


def _join_type(join: exp.Join) -> tuple[bool, exp.Expression | None]:
    """(outer, the ON condition unless TRUE); RIGHT, FULL and USING are refused by name."""
    side, on = join.side.upper(), join.args.get("on")
    if join.args.get("using"):
        raise UnsupportedFeatureError("JOIN UNNEST ... USING is not supported", *position_of(join))
    if side in ("RIGHT", "FULL"):
        raise UnsupportedFeatureError(f"{side} JOIN UNNEST is not supported", *position_of(join))
    if isinstance(on, exp.Boolean) and on.this is True:
        on = None
    return side == "LEFT", on


def _elements(duck: str, unnest: exp.Unnest) -> tuple[str, list[str], list[str]]:
    """(kind, default column names, column types) of what UNNEST of a `duck` value gives."""
    pair = collection_types.map_types(duck)
    if pair is not None:
        return "map", ["KEY", "VALUE"], list(pair)
    element = collection_types.element_type(duck)
    if element is None:
        raise SqlValidationError(
            f"UNNEST takes an ARRAY or a MAP, not {flink_type_of_duckdb(duck)}", *position_of(unnest)
        )
    fields = collection_types.fields(element)
    if fields:
        return "rows", [n for n, _ in fields], [t for _, t in fields]
    return "array", ["EXPR$0"], [element]


def _aliased(
    names: list[str], alias: exp.TableAlias | None, unnest: exp.Unnest, ordinality: bool
) -> list[str]:
    """The column names: the alias list `AS t(a, b)` (its last one is the ordinality's, which
    sqlglot keeps apart), else the defaults."""
    given = [c.name for c in alias.columns] if alias is not None else []
    if ordinality:
        given = given + [unnest.args["offset"].name] if given else []
    if not given:
        return names
    if len(given) != len(names):
        raise SqlValidationError(
            f"List of column aliases must have same degree as table; table has {len(names)} "
            f"columns {names}, whereas alias list has {len(given)} columns",
            *position_of(alias or unnest),
        )
    return given
