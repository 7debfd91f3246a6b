"""Planning GROUP BY: a Calc that computes keys and arguments, the aggregate (windowed or
unbounded), and a Calc that computes the SELECT list and HAVING from keys and results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from clickstream.errors import SqlError, SqlValidationError, UnsupportedFeatureError
from clickstream.schema import Column, plan_name
from clickstream.sql import render
from clickstream.sql.aggregate_calls import (
    ORDERED,
    argument_of,
    call_position,
    collect_calls,
    function_of,
    is_call,
    is_distinct,
    result_type,
    separator_of,
)
from clickstream.sql.clauses import output_name
from clickstream.sql.grouping_sets import (
    GROUPING_ID,
    check_group_clause,
    check_supported,
    expand_node,
    grouping_sets,
    replace_grouping_calls,
)
from clickstream.sql.json_aggregates import check_legacy_window
from clickstream.sql.plan import (
    AggCall,
    CalcNode,
    GroupAggregateNode,
    PlanNode,
    WindowAggregateNode,
    WindowSpec,
)
from clickstream.sql.scope import Scope, ScopeEntry, unique_name
from clickstream.sql.statements import position_of
from clickstream.sql.types import flink_type_of_duckdb, normalize_duckdb_type
from clickstream.sql.windowing import (
    LEGACY_AUXILIARY,
    LEGACY_WINDOWS,
    WINDOW_COLUMNS,
    WINDOW_END,
    WINDOW_START,
    WINDOW_TIME,
    WindowTvfRelation,
    last_row_dedup,
    legacy_window,
)

if TYPE_CHECKING:
    from clickstream.sql.planner import Planner

_MARK = "__agg__"  # qualifier of columns that refer to the aggregate's output


class AggregatePlanner:
    def __init__(self, planner: Planner) -> None:
        self.planner = planner

    def plan(
        self,
        query: exp.Select,
        node: PlanNode,
        scope: Scope,
        condition: exp.Expression | None,
        tvf: WindowTvfRelation | None,
    ) -> tuple[PlanNode, Scope]:
        group = query.args.get("group")
        check_group_clause(group)
        items = list(group.expressions) if group else []
        if query.args.get("distinct"):
            items += self._distinct_keys(query, scope)
        window, window_time_column, keys = self._split_group(items, node, scope, tvf, query)
        sets = grouping_sets(keys, lambda key: self.planner.bind(key, scope))
        check_supported(
            sets, window.kind if window else None, window is not None and tvf is None, group or query
        )

        # 1. the Calc before the aggregate: one column per key, per argument, and the rowtime
        projections: list[exp.Expression] = []
        names: list[str] = []
        # bound expressions (equal trees compute the same) -> the column that holds them
        key_lookup: dict[exp.Expression, str] = {}
        for index, expression in enumerate(sets.keys):
            bound = self.planner.bind(expression, scope)
            name = unique_name(
                plan_name(expression.name) if isinstance(expression, exp.Column) else f"$k{index}",
                {n.lower() for n in names},
            )
            key_lookup[bound] = name
            projections.append(bound)
            names.append(name)
        key_names = list(names)
        set_number = unique_name(GROUPING_ID, {n.lower() for n in names})
        query = replace_grouping_calls(
            query, sets, lambda e: _key_index(self.planner.bind(e, scope), key_lookup), _mark(set_number)
        )
        calls = self._collect_calls(query)
        arg_names: dict[exp.Expression, str] = {}
        for call in calls.values():
            argument = argument_of(call)
            if argument is None:
                continue
            bound = self.planner.bind(argument, scope)
            if bound not in arg_names:
                arg_names[bound] = f"$a{len(arg_names)}"
                projections.append(bound)
                names.append(arg_names[bound])
        if window is not None:
            projections.append(render.column(window_time_column.name))
            names.append(window.time_column)
        types = self.planner.infer_types(node, projections, condition)
        pre_columns = [
            Column(n, flink_type_of_duckdb(t), normalize_duckdb_type(t))
            for n, t in zip(names, types, strict=True)
        ]
        pre = CalcNode(
            columns=pre_columns,
            input=node,
            projections=projections,
            condition=condition,
            keeps_rowtime=window.time_column if window else None,
            key_map={},
        )

        # 2. the aggregate
        agg_calls: dict[exp.Expr, AggCall] = {}
        for key, call in calls.items():
            argument = argument_of(call)
            arg_name = arg_names[self.planner.bind(argument, scope)] if argument is not None else None
            arg_type = pre.column(arg_name).duck_type if arg_name else None
            function = function_of(call)
            out_type = result_type(function, arg_type)
            output = Column(f"$agg{len(agg_calls)}", flink_type_of_duckdb(out_type), out_type)
            agg_calls[key] = AggCall(
                function, arg_name, is_distinct(call), output, arg_type, separator_of(call)
            )
            if node.updating and function in ORDERED and is_distinct(call):
                raise UnsupportedFeatureError(
                    f"{function}(DISTINCT ...) over an updating input is not supported",
                    *call_position(call),
                )
        key_columns = [pre.column(n) for n in key_names]
        source: PlanNode = pre
        if not sets.trivial:  # one copy of each row per grouping set, numbered in `set_number`
            source = expand_node(pre, sets, key_names, set_number)
            key_names, key_columns = key_names + [set_number], key_columns + [source.columns[-1]]
        agg_columns = [a.output for a in agg_calls.values()]
        if window is not None:
            dedup = last_row_dedup(node)
            if dedup is not None and window.kind == "SESSION":
                raise UnsupportedFeatureError(
                    "a SESSION window over an updating input (a deduplication keeping the last "
                    "row) is not supported yet",
                    *position_of(group or query),
                )
            ordered = [(e, a) for e, a in agg_calls.items() if a.function in _IN_ARRIVAL_ORDER]
            if dedup is not None and ordered:
                raise UnsupportedFeatureError(
                    f"{ordered[0][1].function} in a window over an updating input (a deduplication "
                    "keeping the last row) is not supported yet",
                    *call_position(ordered[0][0]),
                )
            if dedup is not None:
                # Flink 2 aggregates windows over this changelog, change by change.
                dedup.per_record = True
            elif node.updating:
                raise UnsupportedFeatureError(
                    "a window aggregation over an updating input (produced by node "
                    f"{_first_updating(node).describe()}) is not supported yet",
                    *position_of(group or query),
                    hint="Aggregate the append-only rows in the window, or use a GROUP BY.",
                )
            _check_mergeable(window, list(agg_calls.values()), group or query)
            distinct_ordered = [(e, a) for e, a in ordered if a.distinct]
            if distinct_ordered:
                # a window keeps its distinct values without their arrival order
                raise UnsupportedFeatureError(
                    f"{distinct_ordered[0][1].function}(DISTINCT ...) in a {window.kind} window "
                    "is not supported yet",
                    *call_position(distinct_ordered[0][0]),
                    hint="Use it without DISTINCT, or in a GROUP BY without a window.",
                )
            if tvf is None:
                check_legacy_window([a.function for a in agg_calls.values()], group or query)
            window_cols = WindowTvfRelation(window, window_time_column).window_columns()
            aggregate: PlanNode = WindowAggregateNode(
                columns=key_columns + agg_columns + window_cols,
                input=source,
                window=window,
                keys=key_names,
                aggregates=list(agg_calls.values()),
                window_columns=list(WINDOW_COLUMNS),
                time_is_ltz=window_time_column.is_ltz,
            )
        else:
            aggregate = GroupAggregateNode(
                columns=key_columns + agg_columns,
                input=source,
                keys=key_names,
                aggregates=list(agg_calls.values()),
            )

        # 3. the Calc after it: SELECT list and HAVING over keys, results and window bounds
        # window bounds grouped as plain keys (a TVF's rows filtered by a semi join) are keys
        lookup: dict[exp.Expression, str] = {render.column(c): c for c in WINDOW_COLUMNS}
        lookup.update(key_lookup)
        rewrite = _Rewriter(
            self.planner, scope, lookup, {s: a.output.name for s, a in agg_calls.items()}, window
        )
        post_scope = Scope([ScopeEntry(_MARK, c.name, c.name, c) for c in aggregate.columns])
        return self._post_calc(query, aggregate, scope, post_scope, rewrite)

    def plan_distinct(self, node: PlanNode, scope: Scope) -> tuple[PlanNode, Scope]:
        """`SELECT DISTINCT` of a query's result: Flink's GROUP BY of every column."""
        columns = [exp.column(e.name, quoted=True) for e in scope.visible()]
        query = exp.Select(expressions=columns, group=exp.Group(expressions=[c.copy() for c in columns]))
        return self.plan(query, node, scope, None, None)

    def _distinct_keys(self, query: exp.Select, scope: Scope) -> list[exp.Expression]:
        """SELECT DISTINCT groups by every selected expression, as Flink plans it."""
        distinct = query.args["distinct"]
        if distinct.args.get("on"):
            raise UnsupportedFeatureError("SELECT DISTINCT ON is not supported", *position_of(query))
        items = self.planner.expand_star(query.expressions, scope)
        return [item.this if isinstance(item, exp.Alias) else item for item in items]

    def _post_calc(
        self, query: exp.Select, aggregate: PlanNode, scope: Scope, post_scope: Scope, rewrite: _Rewriter
    ) -> tuple[PlanNode, Scope]:
        items = self.planner.expand_star(query.expressions, scope)
        projections: list[exp.Expression] = []
        names: list[str] = []
        key_map: dict[str, str] = {}
        rowtime = None
        for index, item in enumerate(items):
            inner = item.this if isinstance(item, exp.Alias) else item
            rewritten = rewrite(inner)
            name = unique_name(output_name(item, index), {n.lower() for n in names})
            projections.append(self.planner.bind(rewritten, _GroupedScope(post_scope, scope)))
            names.append(name)
            if isinstance(rewritten, exp.Column) and rewritten.table == _MARK:
                key_map.setdefault(rewritten.name, plan_name(name))
                if rewritten.name == WINDOW_TIME:
                    rowtime = plan_name(name)
        having = query.args.get("having")
        condition = None
        if having is not None:
            condition = self.planner.bind(rewrite(having.this), _GroupedScope(post_scope, scope))
        types = self.planner.infer_types(aggregate, projections, condition)
        columns = [
            Column(plan_name(n), flink_type_of_duckdb(t), normalize_duckdb_type(t))
            for n, t in zip(names, types, strict=True)
        ]
        calc = CalcNode(
            columns=columns,
            input=aggregate,
            projections=projections,
            condition=condition,
            keeps_rowtime=rowtime,
            key_map=key_map,
        )
        return calc, Scope([ScopeEntry(None, n, c.name, c) for n, c in zip(names, columns, strict=True)])

    def _split_group(self, items, node, scope, tvf, query):
        """Separate the window (legacy call or TVF bounds) from the grouping keys."""
        keys: list[exp.Expression] = []
        window: WindowSpec | None = None
        time_column: Column | None = None
        bounds: set[str] = set()
        for item in items:
            if isinstance(item, exp.Anonymous) and item.name.upper() in LEGACY_WINDOWS:
                if window is not None:
                    raise SqlValidationError("only one group window per query", *position_of(item))
                if tvf is not None:
                    raise SqlValidationError(
                        "a group window cannot be used on a window TVF", *position_of(item)
                    )
                window, time_column = legacy_window(item, node, scope)
                continue
            entry = scope.find(item) if tvf is not None and isinstance(item, exp.Column) else None
            if entry is not None:
                internal = entry.internal
                if internal in (WINDOW_START, WINDOW_END):
                    bounds.add(internal)
                    continue
                if internal == WINDOW_TIME:
                    continue  # follows from window_end: Flink's form for cascading windows
            keys.append(item)
        if tvf is not None:
            if bounds != {WINDOW_START, WINDOW_END}:
                raise SqlValidationError(
                    "a window aggregation over a window TVF must GROUP BY both window_start and window_end",
                    *position_of(query.args.get("group") or query),
                )
            window, time_column = tvf.spec, tvf.time_column
        return window, time_column, keys

    def _collect_calls(self, query: exp.Select) -> dict[exp.Expr, exp.Expr]:
        """Each distinct aggregate call of SELECT and HAVING, keyed by itself (equal trees)."""
        roots = list(query.expressions)
        if query.args.get("having"):
            roots.append(query.args["having"].this)
        return collect_calls(roots)


class _Rewriter:
    """Replaces, in a SELECT item, what the aggregate computed by a reference to its column."""

    def __init__(
        self,
        planner: Planner,
        scope: Scope,
        keys: dict[exp.Expression, str],
        aggregates: dict[exp.Expr, str],
        window: WindowSpec | None,
    ) -> None:
        self.planner, self.scope = planner, scope
        self.keys, self.aggregates, self.window = keys, aggregates, window

    def __call__(self, node: exp.Expression) -> exp.Expression:
        return node.copy().transform(self._replace, copy=False)

    def _replace(self, node: exp.Expression) -> exp.Expression:
        if is_call(node):
            return _mark(self.aggregates[node])
        if isinstance(node, exp.Anonymous):
            auxiliary = self._auxiliary(node)
            if auxiliary:
                return _mark(auxiliary)
        if isinstance(node, exp.Literal | exp.Identifier | exp.Star) or (
            isinstance(node, exp.Column) and node.table == _MARK
        ):
            return node
        try:
            bound = self.planner.bind(node, self.scope)
        except SqlError:
            return node
        if bound in self.keys:
            return _mark(self.keys[bound])
        return node

    def _auxiliary(self, node: exp.Anonymous) -> str | None:
        name = node.name.upper()
        for kind in LEGACY_WINDOWS:
            for suffix, column in LEGACY_AUXILIARY.items():
                if name == kind + suffix:
                    if self.window is None or self.window.kind != kind:
                        raise SqlValidationError(
                            f"{name} needs a matching {kind}(...) in GROUP BY", *position_of(node)
                        )
                    return column
        return None


class _GroupedScope(Scope):
    """After GROUP BY only keys, aggregates and window bounds can be referenced. `source` is the
    scope of the rows grouped."""

    def __init__(self, post: Scope, source: Scope) -> None:
        super().__init__(post.entries)
        self.source = source

    def resolve(self, node: exp.Column) -> exp.Expression:
        if node.table == _MARK:
            return exp.column(node.name, quoted=True)
        # An unknown or ambiguous name is reported as such first: Calcite validates names before
        # grouping, so a typo in SELECT is "not found", not "not being grouped".
        self.source.resolve_entry(node)
        shown = f"{node.table}.{node.name}" if node.table else node.name
        raise SqlValidationError(
            f"Expression '{shown}' is not being grouped",
            *position_of(node),
            hint="Add it to GROUP BY or use it inside an aggregate.",
        )


def _key_index(bound: exp.Expression, keys: dict[exp.Expression, str]) -> int | None:
    """The position of a grouping key among the keys, None if `bound` is none of them."""
    return next((i for i, key in enumerate(keys) if key == bound), None)


def _mark(name: str) -> exp.Column:
    return exp.Column(this=exp.Identifier(this=name, quoted=True), table=exp.Identifier(this=_MARK))


_UNMERGEABLE = ("FIRST_VALUE", "LAST_VALUE", "JSON_ARRAYAGG")
# aggregates of values in arrival order: the window over a changelog does not keep that order
_IN_ARRIVAL_ORDER = ("FIRST_VALUE", "LAST_VALUE", "LISTAGG", "JSON_ARRAYAGG", "JSON_OBJECTAGG")


def _check_mergeable(window: WindowSpec, calls: list[AggCall], where: exp.Expression) -> None:
    """HOP and CUMULATE windows merge slices (and SESSION windows sessions, for JSON_ARRAYAGG);
    Flink's FIRST_VALUE, LAST_VALUE and JSON_ARRAYAGG cannot merge."""
    unmergeable = {"HOP": _UNMERGEABLE, "CUMULATE": _UNMERGEABLE, "SESSION": ("JSON_ARRAYAGG",)}
    for call in calls:
        if call.function in unmergeable.get(window.kind, ()):
            raise UnsupportedFeatureError(
                f"Could not find an implementation method 'merge' for function '{call.function}': "
                f"it cannot be used in a {window.kind} window",
                *position_of(where),
            )


def _first_updating(node: PlanNode) -> PlanNode:
    """The node where updates start (a GROUP BY, a deduplication keeping the last row, ...)."""
    while True:
        updating = [i for i in node.inputs if i.updating]
        if not updating:
            return node
        node = updating[0]
