"""ORDER BY and LIMIT on a stream, with Flink's streaming meaning.

- `LIMIT n [OFFSET m]` alone: the first rows as they arrive (Limit); the query then ends.
- `ORDER BY rowtime [, ...]` alone: rows released in time order as the watermark passes them
  (TemporalSort). Any other ORDER BY without LIMIT is refused with Flink's message: a stream
  cannot be sorted on a value that may still come.
- `ORDER BY ... LIMIT n [OFFSET m]`: Top-N over the whole stream (Flink's SortLimit, a Rank
  without partition); the result is updating, rows leave and enter the top N.

Order keys name output columns (or positions); a key that is not an output column is computed as a
hidden column of the SELECT and dropped after the sort.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from clickstream.errors import PlanningError, SqlValidationError, UnsupportedFeatureError
from clickstream.schema import Column
from clickstream.sql import render
from clickstream.sql.plan import CalcNode, LimitNode, PlanNode, RankNode, TemporalSortNode
from clickstream.sql.scope import Scope, ScopeEntry, unique_name
from clickstream.sql.statements import position_of

if TYPE_CHECKING:
    from clickstream.sql.planner import Planner

_Planned = tuple[PlanNode, Scope]
_HIDDEN = "$sort"


def plan_sorted(planner: Planner, query: exp.Expression) -> _Planned:
    order = query.args.get("order")
    keys: list[exp.Ordered] = list(order.expressions) if order else []
    fetch = _count(query.args.get("limit"))
    offset = _count(query.args.get("offset")) or 0
    body = query.copy()
    for clause in ("order", "limit", "offset"):
        body.set(clause, None)
    if fetch is None:
        if offset:
            raise PlanningError(
                "FETCH is missed, which on streaming table is not supported currently.",
                *position_of(query.args["offset"]),
                hint="Add LIMIT n.",
            )
        return _temporal_sort(planner, body, keys)
    if not keys:
        return _limit(planner, body, query.args["limit"], offset, fetch)
    return _top_n(planner, body, keys, offset, fetch)


def _count(clause: exp.Expression | None) -> int | None:
    if clause is None:
        return None
    value = clause.args.get("count") if isinstance(clause, exp.Fetch) else clause.expression
    if not isinstance(value, exp.Literal) or value.is_string or not value.this.isdigit():
        raise SqlValidationError(
            f"{clause.key.upper()} needs a non-negative integer literal", *position_of(clause)
        )
    return int(value.this)


def _limit(
    planner: Planner, body: exp.Expression, clause: exp.Expression, offset: int, fetch: int
) -> _Planned:
    node, scope = planner.query_plan(body)
    if node.updating:
        raise UnsupportedFeatureError(
            "LIMIT without ORDER BY over an updating input (a GROUP BY, a join, a Top-N) is not "
            "supported yet",
            *position_of(clause),
        )
    return LimitNode(columns=list(node.columns), input=node, offset=offset, fetch=fetch), scope


def _temporal_sort(planner: Planner, body: exp.Expression, keys: list[exp.Ordered]) -> _Planned:
    node, scope, order = _with_keys(planner, body, keys)
    first, descending = order[0]
    if first == node.rowtime and not descending:
        sort = TemporalSortNode(columns=list(node.columns), input=node, order=order)
        return _visible(sort, scope)
    if not descending and "PROCTIME" in node.column(first).flink_type:
        return _visible(node, scope)  # rows already arrive in processing-time order
    raise PlanningError(
        "Sort on a non-time-attribute field is not supported.",
        *position_of(keys[0]),
        hint="A stream can only be sorted by its rowtime, ascending, first; add LIMIT n for a Top-N.",
    )


def _top_n(
    planner: Planner, body: exp.Expression, keys: list[exp.Ordered], offset: int, fetch: int
) -> _Planned:
    node, scope, order = _with_keys(planner, body, keys)
    rank = Column(unique_name("$rank", {c.name.lower() for c in node.columns}), "BIGINT", "BIGINT")
    top = RankNode(
        columns=list(node.columns) + [rank],
        input=node,
        order=order,
        limit=offset + fetch,
        start=offset + 1,  # the first `offset` rows are ranked, not emitted
        rank_column=rank.name,
        row_key=node.upsert_keys,
    )
    return _visible(top, scope)


def _with_keys(
    planner: Planner, body: exp.Expression, keys: list[exp.Ordered]
) -> tuple[PlanNode, Scope, list[tuple[str, bool]]]:
    """The body's plan and each key as (column, descending); keys that are not output columns are
    added to a SELECT as hidden columns `$sort0, ...`."""
    for key in keys:
        if key.args.get("nulls_first") != (not key.args.get("desc")):
            raise UnsupportedFeatureError(
                "NULLS FIRST / NULLS LAST in ORDER BY is not supported", *position_of(key)
            )
    node, scope = planner.query_plan(body)
    columns = [_output_column(key.this, scope) for key in keys]
    missing = [i for i, c in enumerate(columns) if c is None]
    if missing and isinstance(body, exp.Select):
        widened = body.copy()
        extra = [exp.alias_(keys[i].this.copy(), f"{_HIDDEN}{i}", quoted=True) for i in missing]
        widened.set("expressions", list(widened.expressions) + extra)
        node, scope = planner.query_plan(widened)
        hidden = {f"{_HIDDEN}{i}" for i in missing}
        entries = [
            ScopeEntry(e.qualifier, e.name, e.internal, e.column, e.name in hidden) for e in scope.entries
        ]
        scope = Scope(entries)
        for i in missing:
            columns[i] = next(e.internal for e in entries if e.name == f"{_HIDDEN}{i}")
    order = []
    for key, column in zip(keys, columns, strict=True):
        if column is None:  # a UNION's result has only its own columns
            raise SqlValidationError("ORDER BY of a UNION must name one of its columns", *position_of(key))
        order.append((column, bool(key.args.get("desc"))))
    return node, scope, order


def _output_column(key: exp.Expression, scope: Scope) -> str | None:
    """The output column an order key names (`name`, or a position `2`), if it names one."""
    visible = scope.visible()
    if isinstance(key, exp.Literal) and not key.is_string and key.this.isdigit():
        position = int(key.this)
        if not 1 <= position <= len(visible):
            raise SqlValidationError(
                f"Ordinal out of range: ORDER BY {position}, the query has {len(visible)} columns",
                *position_of(key),
            )
        return visible[position - 1].internal
    if isinstance(key, exp.Column) and not key.table:
        matches = [e for e in visible if e.name.lower() == key.name.lower()]
        if len(matches) == 1:
            return matches[0].internal
    return None


def _visible(node: PlanNode, scope: Scope) -> _Planned:
    """`node` without its hidden columns (order keys, the rank)."""
    visible = scope.visible()
    if [e.internal for e in visible] == [c.name for c in node.columns]:
        return node, scope
    columns = [node.column(e.internal) for e in visible]
    rowtime = node.rowtime if node.rowtime in {c.name for c in columns} else None
    calc = CalcNode(
        columns=columns,
        input=node,
        projections=[render.column(c.name) for c in columns],
        keeps_rowtime=rowtime,
        key_map={c.name: c.name for c in columns},
    )
    return calc, Scope(list(visible))
