"""Planning OVER aggregation, Flink's OverAggregate: `agg(x) OVER (PARTITION BY k ORDER BY time
RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW)` (or `ROWS BETWEEN n PRECEDING`, or
`UNBOUNDED PRECEDING`; the default frame is RANGE UNBOUNDED). On event time each row is emitted
once, when the watermark passes it; on a processing-time attribute each row takes the time it is
processed at. Its value is the function over the rows of its partition in the frame that ends at it.

Functions: COUNT, SUM, AVG, MIN, MAX, FIRST_VALUE, LAST_VALUE, LAG(x [, n [, default]]) and
ROW_NUMBER() (one without a filter on it: with `WHERE rn <= N` it is a Top-N, ranking.py). What
Flink refuses is refused with its message: LEAD, frames that end after the current row, several
different windows in one SELECT, DESC, ordering by anything but one time attribute."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.schema import Column
from clickstream.sql import render
from clickstream.sql.aggregate_calls import result_type
from clickstream.sql.plan import CalcNode, OverAggregateNode, OverCall, PlanNode
from clickstream.sql.scope import Scope, ScopeEntry, unique_name
from clickstream.sql.statements import position_of
from clickstream.sql.types import flink_type_of_duckdb, normalize_duckdb_type
from clickstream.sql.windowing import interval_ms

if TYPE_CHECKING:
    from clickstream.sql.planner import Planner

_FUNCTIONS = {
    exp.Count: "COUNT",
    exp.Sum: "SUM",
    exp.Min: "MIN",
    exp.Max: "MAX",
    exp.Avg: "AVG",
    exp.FirstValue: "FIRST_VALUE",
    exp.LastValue: "LAST_VALUE",
    exp.Lag: "LAG",
    exp.RowNumber: "ROW_NUMBER",
}
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")
_NUMERIC = (*_INTEGERS, "DECIMAL", "FLOAT", "DOUBLE", "HUGEINT")

# Flink's messages for the forms it refuses
SAME_WINDOW = (
    "Over Agg: Unsupported use of OVER windows. All aggregates must be computed on the same window. "
    "please re-check the over window statement."
)
SINGLE_TIME_COLUMN = "The window can only be ordered by a single time column."
ASCENDING = "The window can only be ordered in ASCENDING mode."
FOLLOWING = "OVER RANGE FOLLOWING windows are not supported yet."
LEAD = "LEAD Function is not supported in stream mode."
NON_TIME_BOUNDED = "Non-time attribute sort is not supported for bounded OVER window."
ROW_RANGE_NOT_ALLOWED = "ROW/RANGE not allowed with RANK, DENSE_RANK or ROW_NUMBER functions"
NON_TIME = "OVER windows' ordering in stream mode must be defined on a time attribute."


def over_windows(select: exp.Select) -> list[exp.Window]:
    """The OVER windows of a SELECT list."""
    return [node for item in select.expressions for node in item.walk() if isinstance(node, exp.Window)]


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
            raise UnsupportedFeatureError(SAME_WINDOW, *position_of(spec))
    kind, preceding = _frame(first)
    time_column, proctime = _time_attribute(node, scope, first, bounded=preceding is not None)
    if proctime and kind == "RANGE" and preceding is None:
        kind = "ROWS"  # Flink processes each row on its own: no peers in processing time

    # Calc before: every input column, the partition keys and the arguments
    projections: list[exp.Expression] = [render.column(c.name) for c in node.columns]
    names = [c.name for c in node.columns]

    def add(expression: exp.Expression, prefix: str) -> str:
        """A projected column, named apart from the input's columns (which users name)."""
        names.append(unique_name(prefix, {n.lower() for n in names}))
        projections.append(expression)
        return names[-1]

    partition_names = [add(planner.bind(key, scope), "$p") for key in first.args.get("partition_by") or []]
    calls = [_call(planner, window, scope, add) for window in windows]
    functions = {call.function for call in calls}
    if "ROW_NUMBER" in functions and len(functions) > 1:
        # Flink frames ROW_NUMBER() by ROWS, the others by RANGE: two different windows
        raise UnsupportedFeatureError(SAME_WINDOW, *position_of(first))
    for window, call in zip(windows, calls, strict=True):
        if call.function in ("LAG", "ROW_NUMBER") and first.args.get("spec") is not None:
            raise SqlValidationError(ROW_RANGE_NOT_ALLOWED, *position_of(window))
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
    for window, call in zip(windows, calls, strict=True):
        _check_default_type(pre, call, window)
        names.append(unique_name("$over", {n.lower() for n in names}))
        over_calls.append(_typed(pre, call, names[-1]))
    over = OverAggregateNode(
        columns=columns + [c.output for c in over_calls],
        input=pre,
        partition=partition_names,
        time_column=time_column,
        frame=kind,
        preceding=preceding,
        calls=over_calls,
        proctime=proctime,
    )
    # the SELECT list, with each OVER expression replaced by its column
    replaced = {id(w): c.output.name for w, c in zip(windows, over_calls, strict=True)}
    post_entries = [ScopeEntry(e.qualifier, e.name, e.internal, e.column, e.hidden) for e in scope.entries]
    # hidden: only the OVER expressions they replace read them, never a `SELECT *`
    post_entries += [ScopeEntry("__over__", c.output.name, c.output.name, c.output, True) for c in over_calls]

    def swap(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Window) and id(n) in replaced:
            return exp.column(replaced[id(n)], table="__over__", quoted=True)
        return n

    rewritten = exp.select(*[item.transform(swap, copy=False) for item in query.expressions])
    return planner.select_over(rewritten, over, Scope(post_entries))


def _call(
    planner: Planner, window: exp.Window, scope: Scope, add: Callable[[exp.Expression, str], str]
) -> OverCall:
    """The function of one OVER window, its arguments projected by `add`; typed later."""
    function = window.this
    if isinstance(function, exp.Lead):
        raise UnsupportedFeatureError(LEAD, *position_of(window))
    name = _FUNCTIONS.get(type(function))
    if name is None:
        raise UnsupportedFeatureError(f"{function.sql()} OVER (...) is not supported", *position_of(window))
    argument = function.this
    if isinstance(argument, exp.Distinct):
        raise UnsupportedFeatureError(
            "DISTINCT aggregates OVER (...) are not supported", *position_of(window)
        )
    arg_name = None
    if isinstance(argument, exp.Expression) and not isinstance(argument, exp.Star):
        arg_name = add(planner.bind(argument, scope), "$a")
    call = OverCall(name, arg_name, Column("", "", ""))
    if isinstance(function, exp.Lag):
        call.offset = _lag_offset(function.args.get("offset"))
        default = function.args.get("default")
        if default is not None:
            call.default = add(planner.bind(default, scope), "$d")
    return call


def _check_default_type(pre: CalcNode, call: OverCall, window: exp.Window) -> None:
    """Flink takes LAG's default without a cast only where it has the argument's type; a number
    of another numeric type (0.5 for a DOUBLE) needs an explicit CAST."""
    if call.default is None or call.argument is None:
        return
    arg_type, default_type = pre.column(call.argument).duck_type, pre.column(call.default).duck_type
    if default_type != arg_type and default_type.startswith(_NUMERIC):
        raise UnsupportedFeatureError(
            f"Please explicitly cast default value {flink_type_of_duckdb(default_type)} NOT NULL to "
            f"{flink_type_of_duckdb(arg_type)}.",
            *position_of(window.this.args.get("default")),
        )


def _lag_offset(offset: exp.Expression | None) -> int:
    if offset is None:
        return 1
    if isinstance(offset, exp.Literal) and not offset.is_string and offset.this.isdigit():
        return int(offset.this)
    raise SqlValidationError("LAG's offset must be a non-negative integer literal", *position_of(offset))


def _typed(pre: CalcNode, call: OverCall, output: str) -> OverCall:
    """`call` with its output column, typed as Flink types the function."""
    arg_type = pre.column(call.argument).duck_type if call.argument else "BIGINT"
    if call.function in ("COUNT", "ROW_NUMBER"):
        duck = "BIGINT"
    elif call.function in ("SUM", "AVG"):
        duck = result_type(call.function, arg_type)  # as GROUP BY's: a DECIMAL stays a DECIMAL
    else:
        duck = arg_type
    call.output = Column(output, flink_type_of_duckdb(duck), duck)
    return call


def _time_attribute(node: PlanNode, scope: Scope, window: exp.Window, bounded: bool) -> tuple[str, bool]:
    """The window's ORDER BY: one time attribute, ascending. (its column, is it processing time)"""
    order = window.args.get("order")
    if order is None or len(order.expressions) != 1:
        raise UnsupportedFeatureError(SINGLE_TIME_COLUMN, *position_of(window))
    ordered = order.expressions[0]
    if ordered.args.get("desc"):
        raise UnsupportedFeatureError(ASCENDING, *position_of(ordered))
    if node.updating:
        raise UnsupportedFeatureError(
            "OVER windows over an updating input (a changelog source, ...) are not supported",
            *position_of(order),
        )
    entry = scope.resolve_entry(ordered.this) if isinstance(ordered.this, exp.Column) else None
    if entry is not None and "PROCTIME" in entry.column.flink_type:
        return entry.internal, True
    if entry is None or entry.internal != node.rowtime:
        raise UnsupportedFeatureError(NON_TIME_BOUNDED if bounded else NON_TIME, *position_of(ordered))
    return entry.internal, False


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
        raise UnsupportedFeatureError(FOLLOWING, *position_of(spec))
    start = spec.args.get("start")
    if isinstance(start, str) and start.upper() == "UNBOUNDED":
        return kind, None
    if isinstance(start, str) and start.upper() == "CURRENT ROW":
        raise UnsupportedFeatureError(FOLLOWING, *position_of(spec))  # so says Flink 2.3
    if kind == "RANGE":
        return kind, interval_ms(start, allow_zero=True)
    if isinstance(start, exp.Literal) and not start.is_string:
        return kind, int(start.this)
    raise UnsupportedFeatureError(f"OVER frame start {start} is not supported", *position_of(spec))
