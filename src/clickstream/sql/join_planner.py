"""Planning joins: lookup joins, event-time temporal joins, interval joins and regular joins
(Flink's LookupJoin, TemporalJoin, IntervalJoin and Join), told apart by FOR SYSTEM_TIME AS OF and
by what the ON condition bounds."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from sqlglot import exp

from clickstream.errors import PlanningError, SqlValidationError, UnsupportedFeatureError
from clickstream.schema import Column, TableDef, plan_name
from clickstream.sql import joins, render
from clickstream.sql.plan import (
    CalcNode,
    ChangelogNormalizeNode,
    IntervalJoinNode,
    JoinNode,
    LookupJoinNode,
    PlanNode,
    RankNode,
    ScanNode,
    TemporalJoinNode,
    WindowAggregateNode,
)
from clickstream.sql.scope import Scope, ScopeEntry, unique_name
from clickstream.sql.statements import position_of

if TYPE_CHECKING:
    from clickstream.sql.planner import Planner


class JoinPlanner:
    """One join of a FROM clause."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner

    def plan(self, left: PlanNode, scope: Scope, join: exp.Join) -> tuple[PlanNode, Scope]:
        """`left` joined with `join`'s right side; which join follows from FOR SYSTEM_TIME AS OF
        and the ON condition."""
        right = join.this
        version = right.args.get("version") if isinstance(right, exp.Table) else None
        side = (join.side or "").upper()
        kind = (join.kind or "").upper()
        if kind not in ("", "INNER", "OUTER"):
            raise UnsupportedFeatureError(f"{kind} JOIN is not supported", *position_of(join))
        if version is None:
            return self._stream_join(left, scope, join, side or "INNER")
        if side not in ("", "LEFT"):
            raise UnsupportedFeatureError(
                f"{side} lookup join is not supported; use INNER or LEFT", *position_of(join)
            )
        time_entry = (
            scope.resolve_entry(version.expression) if isinstance(version.expression, exp.Column) else None
        )
        if time_entry is not None and time_entry.internal == left.rowtime:
            return self._temporal_join(left, scope, join, side or "INNER")
        if time_entry is None or "PROCTIME" not in time_entry.column.flink_type:
            raise UnsupportedFeatureError(
                "FOR SYSTEM_TIME AS OF needs the left table's processing-time attribute (a "
                "lookup join) or its event-time attribute (a temporal join)",
                *position_of(version),
            )
        table = self.planner.catalog.table(right.name)
        if not self.planner.capabilities(table).can_be("lookup"):
            raise PlanningError(
                f"Table '{table.name}' (connector '{table.connector}') cannot be used for a lookup join",
                *position_of(right),
            )
        return LookupJoinPlanner(self.planner).plan(left, scope, join, table, side or "INNER")

    def _temporal_join(
        self, left: PlanNode, scope: Scope, join: exp.Join, join_type: str
    ) -> tuple[PlanNode, Scope]:
        """`JOIN versioned FOR SYSTEM_TIME AS OF l.rowtime ON l.k = v.pk`: each left row with the
        version of the right row that was current at the left row's event time."""
        table = join.this.copy()
        table.set("version", None)
        right, right_scope, _ = self.planner.relation(table)
        if isinstance(right, ChangelogNormalizeNode):
            right = right.input  # an upsert source's records are the versions, at their own time
        right = _versions_of(right)
        if right.rowtime is None or (right.updating and not right.upsert_keys):
            raise UnsupportedFeatureError(
                "the versioned table of an event-time temporal join needs a WATERMARK and either "
                "only appends (each row a new version of its key) or has a PRIMARY KEY (an "
                "upsert or CDC source, or a deduplication keeping the last row)",
                *position_of(join.this),
            )
        right_columns, entries, columns = self._rename_right(left, right, right_scope)
        condition = joins.analyze(join.args["on"], scope, right_scope, None, None)
        if not condition.left_keys or condition.rest:
            raise UnsupportedFeatureError(
                "a temporal join's ON must be equalities between the "
                "left table and the versioned table's key",
                *position_of(join),
            )
        if right.updating and not set(right.upsert_keys or []) <= set(condition.right_keys):
            raise UnsupportedFeatureError(
                "a temporal join against a versioned table that updates must join on its primary key",
                *position_of(join),
            )
        node = TemporalJoinNode(
            columns=columns,
            left=left,
            right=right,
            join_type=join_type,
            left_keys=condition.left_keys,
            right_keys=condition.right_keys,
            right_columns=right_columns,
        )
        return node, Scope(scope.entries + entries)

    def _rename_right(self, left: PlanNode, right: PlanNode, right_scope: Scope):
        """Right columns renamed apart from the left's: (right -> output pairs, scope entries,
        all output columns)."""
        taken = {c.name.lower() for c in left.columns}
        mapping: dict[str, str] = {}
        for column in right.columns:
            mapping[column.name] = unique_name(column.name, taken)
            taken.add(mapping[column.name].lower())
        entries = [
            ScopeEntry(
                e.qualifier,
                e.name,
                mapping[e.internal],
                Column(mapping[e.internal], e.column.flink_type, e.column.duck_type),
                e.hidden,
            )
            for e in right_scope.entries
            if e.internal in mapping
        ]
        columns = list(left.columns) + [
            Column(mapping[c.name], c.flink_type, c.duck_type) for c in right.columns
        ]
        return list(mapping.items()), entries, columns

    def _regular_join(
        self,
        left: PlanNode,
        scope: Scope,
        right: PlanNode,
        right_scope: Scope,
        join: exp.Join,
        join_type: str,
        on: exp.Expression,
    ):
        """Two changelog streams joined on equal keys, with no time bound."""
        condition = joins.analyze(on, scope, right_scope, None, None)
        if not condition.left_keys:
            raise UnsupportedFeatureError(
                "a regular join needs an equality between the two sides in ON (or, for an "
                "interval join, bounds like l.ts BETWEEN r.ts - INTERVAL '1' HOUR AND r.ts)",
                *position_of(join),
            )
        for side in (left, right):
            if side.updating and not side.upsert_keys and not _changelog_source(side):
                raise UnsupportedFeatureError(
                    "a join input that updates needs a unique key", *position_of(join)
                )
        right_columns, entries, columns = self._rename_right(left, right, right_scope)
        joined = Scope(scope.entries + entries)
        rest = _conjunction(condition.rest)
        window_ends = next(
            (
                (a, b)
                for a, b in zip(condition.left_keys, condition.right_keys, strict=True)
                if _is_window_end(left, a) and _is_window_end(right, b)
            ),
            None,
        )
        node = JoinNode(
            columns=columns,
            left=left,
            right=right,
            join_type=join_type,
            left_keys=condition.left_keys,
            right_keys=condition.right_keys,
            right_columns=right_columns,
            condition=self.planner.bind(rest, joined) if rest is not None else None,
            window_ends=window_ends,
        )
        return node, joined

    def _stream_join(
        self, left: PlanNode, scope: Scope, join: exp.Join, join_type: str
    ) -> tuple[PlanNode, Scope]:
        """A join of two streams: an interval join when ON bounds the time difference."""
        right, right_scope, window = self.planner.relation(join.this)
        if window is not None:
            raise UnsupportedFeatureError("window joins are not supported yet", *position_of(join))
        on = join.args.get("on")
        if on is None:
            raise UnsupportedFeatureError("a join without ON is not supported", *position_of(join))
        condition = joins.analyze(on, scope, right_scope, left.rowtime, right.rowtime)
        if left.updating or right.updating or not condition.is_interval:
            return self._regular_join(left, scope, right, right_scope, join, join_type, on)
        right_columns, entries, columns = self._rename_right(left, right, right_scope)
        joined = Scope(scope.entries + entries)
        rest = _conjunction(condition.rest)
        node = IntervalJoinNode(
            columns=columns,
            left=left,
            right=right,
            join_type=join_type,
            left_keys=condition.left_keys,
            right_keys=condition.right_keys,
            left_time=str(condition.left_time),  # set: the condition bounds both times
            right_time=str(condition.right_time),
            lower_ms=condition.lower_ms,
            upper_ms=condition.upper_ms,
            right_columns=right_columns,
            condition=self.planner.bind(rest, joined) if rest is not None else None,
        )
        return node, joined


class LookupJoinPlanner:
    """`JOIN dim FOR SYSTEM_TIME AS OF l.proctime AS d ON l.a = d.x [AND ...]`."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner

    def plan(
        self, left: PlanNode, scope: Scope, join: exp.Join, table: TableDef, join_type: str
    ) -> tuple[PlanNode, Scope]:
        qualifier = join.this.alias or table.name
        taken = {c.name.lower() for c in left.columns}
        right_entries: list[ScopeEntry] = []
        right_columns: list[tuple[str, str]] = []
        for column in table.physical:
            internal = unique_name(plan_name(column.name), taken)
            taken.add(internal.lower())
            right_columns.append((column.name, internal))
            right_entries.append(
                ScopeEntry(
                    qualifier, column.name, internal, Column(internal, column.flink_type, column.duck_type)
                )
            )
        joined = Scope(scope.entries + right_entries)
        right_scope = Scope(right_entries)
        left_keys, right_keys, rest = self._equalities(join.args.get("on"), scope, right_scope, join)
        condition = self.planner.bind(rest, joined) if rest is not None else None
        columns = list(left.columns) + [e.column for e in right_entries]
        node = LookupJoinNode(
            columns=columns,
            input=left,
            table=table,
            join_type=join_type,
            left_keys=left_keys,
            right_keys=right_keys,
            right_columns=right_columns,
            condition=condition,
        )
        return node, joined

    def _equalities(self, on: exp.Expression | None, left: Scope, right: Scope, join: exp.Join):
        """Split ON into `left.col = right.col` pairs (the lookup keys) and the rest."""
        if on is None:
            raise SqlValidationError("a lookup join needs an ON condition", *position_of(join))
        conjuncts: list[exp.Expression] = list(on.flatten()) if isinstance(on, exp.And) else [on]  # type: ignore[arg-type]
        left_keys, right_keys, rest = [], [], []
        for conjunct in conjuncts:
            pair = self._key_pair(conjunct, left, right)
            if pair is None:
                rest.append(conjunct)
            else:
                left_keys.append(pair[0])
                right_keys.append(pair[1])
        if not left_keys:
            raise SqlValidationError(
                "the ON condition of a lookup join needs an equality between a column of the "
                "left table and a column of the lookup table",
                *position_of(on),
            )
        return left_keys, right_keys, _conjunction(rest)

    @staticmethod
    def _key_pair(conjunct: exp.Expression, left: Scope, right: Scope):
        if not isinstance(conjunct, exp.EQ):
            return None
        a, b = conjunct.this, conjunct.expression
        if not (isinstance(a, exp.Column) and isinstance(b, exp.Column)):
            return None
        for l_col, r_col in ((a, b), (b, a)):
            try:
                l_entry = left.resolve_entry(l_col)
                r_entry = right.resolve_entry(r_col)
            except SqlValidationError:
                continue
            dim_name = next(e.name for e in right.entries if e.internal == r_entry.internal)
            return l_entry.internal, dim_name
        return None


def _versions_of(node: PlanNode) -> PlanNode:
    """A versioned view (a deduplication keeping the last row on event time, under projections)
    read as its input's rows, each a version of its key: the deduplication would fold versions
    that arrive in one batch, and a temporal join needs every one of them."""
    if isinstance(node, CalcNode):
        below = _versions_of(node.input)
        return node if below is node.input else replace(node, input=below)
    if isinstance(node, RankNode) and node.last_on_rowtime:
        rank = exp.cast(exp.Literal.number(1), exp.DataType.build("BIGINT"))  # every version is rn 1
        return CalcNode(
            columns=list(node.columns),
            input=node.input,
            projections=[render.column(c.name) for c in node.input.columns] + [rank],
            keeps_rowtime=node.input.rowtime,
        )
    return node


def _changelog_source(node: PlanNode) -> bool:
    """Is `node` a changelog source (debezium-json, ...) seen through projections and filters? Its
    -U and -D carry whole rows, which the join retracts by value: no key is needed."""
    while isinstance(node, CalcNode):
        node = node.input
    return isinstance(node, ScanNode) and node.changelog == "all"


def _is_window_end(node: PlanNode, column: str) -> bool:
    """Is `column` of `node` the window_end of a window aggregation, passed through as is?"""
    while isinstance(node, CalcNode) and not isinstance(node.input, WindowAggregateNode):
        names = [c.name for c in node.columns]
        if column not in names or node.projections[names.index(column)] != render.column(column):
            return False
        node = node.input
    if not isinstance(node, CalcNode) or column not in [c.name for c in node.columns]:
        return False
    if not isinstance(node.input, WindowAggregateNode):
        return False
    projection = node.projections[[c.name for c in node.columns].index(column)]
    return projection == render.column(node.input.window_columns[1])


def _conjunction(conjuncts: list[exp.Expression]) -> exp.Expression | None:
    """`a AND b AND ...`, or None for no conjunct."""
    if not conjuncts:
        return None
    result = conjuncts[0]
    for conjunct in conjuncts[1:]:
        result = exp.And(this=result, expression=conjunct)
    return result
