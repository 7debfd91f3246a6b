"""Planning OVER aggregation: `agg(x) OVER (PARTITION BY k ORDER BY rowtime RANGE BETWEEN
INTERVAL '1' HOUR PRECEDING AND CURRENT ROW)` (or `ROWS BETWEEN n PRECEDING`), Flink's
OverAggregate on event time: each row is emitted once, when the watermark passes it, with the
aggregates over the rows of its partition in the frame that ends at it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.schema import Column
from clickstream.sql import render
from clickstream.sql.plan import CalcNode, OverAggregateNode, OverCall, PlanNode
from clickstream.sql.scope import Scope, ScopeEntry, unique_name
from clickstream.sql.statements import position_of
from clickstream.sql.types import flink_type_of_duckdb, normalize_duckdb_type
from clickstream.sql.windowing import interval_ms

if TYPE_CHECKING:
    from clickstream.sql.planner import Planner

_FUNCTIONS = {exp.Count: "COUNT", exp.Sum: "SUM", exp.Min: "MIN", exp.Max: "MAX", exp.Avg: "AVG"}


def over_windows(select: exp.Select) -> list[exp.Window]:
    """The aggregate OVER windows of a SELECT list (ROW_NUMBER is ranking, not this)."""
    return [
        node
        for item in select.expressions
        for node in item.walk()
        if isinstance(node, exp.Window) and not isinstance(node.this, exp.RowNumber)
    ]


def plan_over(
    planner: Planner, query: exp.Select, node: PlanNode, scope: Scope, condition: exp.Expression | None
) -> tuple[PlanNode, Scope]:
    query = query.copy()  # its OVER calls are replaced by columns below; the statement may be planned again
    windows = over_windows(query)
    named = {w.this.name: w for w in query.args.get("windows") or []}
    specs = [_resolve_named(w, named) for w in windows]
    first = specs[0]
    for spec in specs[1:]:
        if _frame_key(spec) != _frame_key(first):
            raise UnsupportedFeatureError(
                "all OVER windows of a query must use the same PARTITION BY, ORDER BY and frame",
                *position_of(spec),
            )
    order = first.args.get("order")
    if order is None or len(order.expressions) != 1 or order.expressions[0].args.get("desc"):
        raise SqlValidationError(
            "OVER windows must be ORDER BY the event-time attribute ASC", *position_of(first)
        )
    time_entry = scope.resolve_entry(order.expressions[0].this)
    if node.updating:
        raise UnsupportedFeatureError(
            "OVER windows over an updating input (a changelog source, ...) are not supported",
            *position_of(order),
        )
    if time_entry.internal != node.rowtime:
        raise UnsupportedFeatureError(
            "OVER windows are supported on the event-time attribute only", *position_of(order)
        )
    kind, preceding = _frame(first)

    # Calc before: every input column, the partition keys and the arguments
    partition = list(first.args.get("partition_by") or [])
    projections: list[exp.Expression] = [render.column(c.name) for c in node.columns]
    names = [c.name for c in node.columns]

    def internal(name: str) -> str:
        """`name`, renamed apart from the input's columns (which users name)."""
        return unique_name(name, {n.lower() for n in names})

    partition_names = []
    for key in partition:
        projections.append(planner.bind(key, scope))
        partition_names.append(internal("$p"))
        names.append(partition_names[-1])
    calls = []
    for window in windows:
        function = _FUNCTIONS.get(type(window.this))
        if function is None:
            raise UnsupportedFeatureError(
                f"{window.this.sql()} OVER (...) is not supported", *position_of(window)
            )
        argument = window.this.this
        if isinstance(argument, exp.Distinct):
            raise UnsupportedFeatureError(
                "DISTINCT aggregates OVER (...) are not supported", *position_of(window)
            )
        arg_name = None
        if argument is not None and not isinstance(argument, exp.Star):
            arg_name = internal("$a")
            projections.append(planner.bind(argument, scope))
            names.append(arg_name)
        calls.append((function, arg_name))
    types = planner.infer_types(node, projections, condition)
    columns = list(node.columns) + [
        Column(n, flink_type_of_duckdb(t), normalize_duckdb_type(t))
        for n, t in zip(names[len(node.columns) :], types[len(node.columns) :], strict=True)
    ]
    pre = CalcNode(
        columns=columns,
        input=node,
        projections=projections,
        condition=condition,
        keeps_rowtime=node.rowtime,
        key_map={c.name: c.name for c in node.columns},
    )
    over_calls = []
    for function, arg_name in calls:
        arg_type = pre.column(arg_name).duck_type if arg_name else None
        out_type = (
            "BIGINT"
            if function == "COUNT"
            else (arg_type if function in ("MIN", "MAX") or arg_type in ("BIGINT", "INTEGER") else "DOUBLE")
        )
        output = Column(internal("$over"), flink_type_of_duckdb(out_type), out_type)
        names.append(output.name)
        over_calls.append(OverCall(function, arg_name, output))
    over = OverAggregateNode(
        columns=columns + [c.output for c in over_calls],
        input=pre,
        partition=partition_names,
        time_column=node.rowtime,
        frame=kind,
        preceding=preceding,
        calls=over_calls,
    )
    # the SELECT list, with each OVER expression replaced by its column
    replaced = {id(w): c.output.name for w, c in zip(windows, over_calls, strict=True)}
    post_entries = [ScopeEntry(e.qualifier, e.name, e.internal, e.column, e.hidden) for e in scope.entries]
    post_entries += [ScopeEntry("__over__", c.output.name, c.output.name, c.output) for c in over_calls]

    def swap(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Window) and id(n) in replaced:
            return exp.column(replaced[id(n)], table="__over__", quoted=True)
        return n

    rewritten = exp.select(*[item.transform(swap, copy=False) for item in query.expressions])
    return planner.select_over(rewritten, over, Scope(post_entries))


def _resolve_named(window: exp.Window, named: dict[str, exp.Window]) -> exp.Window:
    """`agg OVER w` with `WINDOW w AS (...)`: the named definition."""
    if window.args.get("order") is None and window.alias in named:
        return named[window.alias]
    return window


def _frame_key(window: exp.Window) -> str:
    parts = [window.args.get(k) for k in ("partition_by", "order", "spec")]
    return repr(
        [
            p.sql() if isinstance(p, exp.Expression) else [x.sql() for x in p] if isinstance(p, list) else p
            for p in parts
        ]
    )


def _frame(window: exp.Window) -> tuple[str, int | None]:
    """('RANGE', ms) or ('ROWS', n); None for UNBOUNDED PRECEDING. Default: RANGE UNBOUNDED."""
    spec = window.args.get("spec")
    if spec is None:
        return "RANGE", None
    kind = (spec.args.get("kind") or "RANGE").upper()
    end = spec.args.get("end")
    if (end if isinstance(end, str) else getattr(end, "name", "")).upper() != "CURRENT ROW":
        raise UnsupportedFeatureError("OVER frames must end at CURRENT ROW", *position_of(spec))
    start = spec.args.get("start")
    if isinstance(start, str) and start.upper() == "UNBOUNDED":
        return kind, None
    if kind == "RANGE":
        return kind, interval_ms(start, allow_zero=True)
    if isinstance(start, exp.Literal) and not start.is_string:
        return kind, int(start.this)
    raise UnsupportedFeatureError(f"OVER frame start {start} is not supported", *position_of(spec))
