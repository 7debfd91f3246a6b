"""Event-time windows in queries: window TVFs (`TABLE(TUMBLE(...))`) and legacy group windows
(`GROUP BY TUMBLE(ts, INTERVAL '1' HOUR)`), reduced to one `WindowSpec`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.schema import Column
from clickstream.sql import render
from clickstream.sql.base_functions import sql
from clickstream.sql.expressions import Descriptor, WindowTvf
from clickstream.sql.plan import CalcNode, PlanNode, RankNode, WindowSpec
from clickstream.sql.scope import Scope, ScopeEntry
from clickstream.sql.statements import position_of

WINDOW_START, WINDOW_END, WINDOW_TIME = "$window_start", "$window_end", "$window_time"
WINDOW_COLUMNS = (WINDOW_START, WINDOW_END, WINDOW_TIME)

_UNIT_MS = {
    "MILLISECOND": 1,
    "SECOND": 1000,
    "MINUTE": 60_000,
    "HOUR": 3_600_000,
    "DAY": 86_400_000,
}

LEGACY_WINDOWS = ("TUMBLE", "HOP", "SESSION")
LEGACY_AUXILIARY = {
    "_START": WINDOW_START,
    "_END": WINDOW_END,
    "_ROWTIME": WINDOW_TIME,
    "_PROCTIME": WINDOW_TIME,
}


def interval_ms(node: exp.Expression, allow_zero: bool = False) -> int:
    """INTERVAL '10' MINUTES -> 600000. Only literal intervals define windows (positive ones);
    join bounds, OVER frames and watermark delays may also be zero."""
    if isinstance(node, exp.Interval) and isinstance(node.this, exp.Literal):
        unit = (node.unit.name if node.unit else "SECOND").upper().rstrip("S") or "SECOND"
        if unit == "MILLISECOND" or unit in _UNIT_MS:
            try:
                amount = float(node.this.this)
            except ValueError:
                amount = -1
            if amount > 0 or (allow_zero and amount == 0):
                return int(amount * _UNIT_MS[unit])
    what = "a literal interval of zero or more" if allow_zero else "a positive literal interval"
    raise SqlValidationError(f"'{node.sql()}' is not {what} (e.g. INTERVAL '10' MINUTE)", *position_of(node))


def rowtime_column(node: PlanNode, scope: Scope, column_node: exp.Expression) -> Column:
    if not isinstance(column_node, exp.Column):
        raise SqlValidationError("a window needs a time attribute column", *position_of(column_node))
    entry = scope.resolve_entry(column_node)
    if node.updating and last_row_dedup(node) is None:
        # Flink: "doesn't support consuming update and delete changes"
        raise UnsupportedFeatureError(
            "a window over an updating input (a changelog source, a GROUP BY, ...) is not supported",
            *position_of(column_node),
        )
    if "PROCTIME" in entry.column.flink_type:
        return node.column(entry.internal)  # a processing-time window (runtime/.../proctime_window.py)
    if entry.internal not in node.time_attributes:
        raise SqlValidationError(
            f"Window can only be defined on a time attribute column, but '{column_node.name}' is "
            "not the event-time attribute (declare it with WATERMARK FOR)",
            *position_of(column_node),
        )
    return node.column(entry.internal)


def last_row_dedup(node: PlanNode) -> RankNode | None:
    """The deduplication keeping the last row on event time (over an append-only input) that
    `node` is, under projections and filters: the one changelog a window may aggregate (Flink
    2.3 keeps its rowtime); None for any other node."""
    while isinstance(node, CalcNode):
        node = node.input
    if isinstance(node, RankNode) and node.last_on_rowtime and not node.input.updating:
        return node
    return None


@dataclass
class WindowTvfRelation:
    """The FROM side of `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), ...))`."""

    spec: WindowSpec
    time_column: Column

    def window_columns(self) -> list[Column]:
        time_type = (
            ("TIMESTAMP_LTZ(3)", "TIMESTAMPTZ") if self.time_column.is_ltz else ("TIMESTAMP(3)", "TIMESTAMP")
        )
        if self.spec.proctime:  # window_time is a processing-time attribute again
            time_type = ("TIMESTAMP_LTZ(3) *PROCTIME*", "TIMESTAMPTZ")
        return [
            Column(WINDOW_START, "TIMESTAMP(3)", "TIMESTAMP"),
            Column(WINDOW_END, "TIMESTAMP(3)", "TIMESTAMP"),
            Column(WINDOW_TIME, *time_type),
        ]

    def extend_scope(self, scope: Scope, alias: str | None) -> Scope:
        entries = [ScopeEntry(alias, e.name, e.internal, e.column, e.hidden) for e in scope.entries]
        for column, name in zip(
            self.window_columns(), ("window_start", "window_end", "window_time"), strict=True
        ):
            entries.append(ScopeEntry(alias, name, column.name, column))
        return Scope(entries)

    def as_columns(self, planner, node: PlanNode, scope: Scope) -> tuple[PlanNode, Scope]:
        """Without GROUP BY, a TUMBLE window becomes three computed columns on each row."""
        if self.spec.kind != "TUMBLE":
            raise UnsupportedFeatureError(
                f"{self.spec.kind} without GROUP BY window_start, window_end is not supported yet"
            )
        time = render.column(self.time_column.name)
        zone = planner.settings.local_time_zone
        # the wall-clock epoch ms that windows align on (see schema.window_time_sql)
        if self.time_column.is_ltz and zone.upper() not in ("UTC", "Z", "GMT", "ETC/UTC"):
            wall = sql("epoch_ms(timezone(__a1, __a0))", time, exp.Literal.string(zone))
        else:
            wall = sql("epoch_ms(__a0)", time)
        size = self.spec.size_ms
        start = sql(f"make_timestamp(((__a0) // {size}) * {size} * 1000)", wall)
        end = sql(f"make_timestamp((((__a0) // {size}) * {size} + {size}) * 1000)", wall)
        projections = [render.column(c.name) for c in node.columns] + [start, end, time]
        columns = list(node.columns) + self.window_columns()
        calc = CalcNode(
            columns=columns,
            input=node,
            projections=projections,
            keeps_rowtime=node.rowtime,
            key_map={c.name: c.name for c in node.columns},
        )
        entries = [e for e in scope.entries]
        return calc, Scope(entries)


def parse_window_tvf(tvf: WindowTvf, node: PlanNode, scope: Scope) -> WindowTvfRelation:
    args = tvf.expressions[1:]
    kind = tvf.kind
    descriptor = args[0] if args else None
    if not isinstance(descriptor, Descriptor) or len(descriptor.expressions) != 1:
        raise SqlValidationError(
            f"{kind} needs DESCRIPTOR(time_column) as second argument", *position_of(tvf)
        )
    time_column = rowtime_column(node, scope, descriptor.expressions[0])
    intervals = [_named_value(a) for a in args[1:]]
    expected = 1 if kind in ("TUMBLE", "SESSION") else 2
    offset = 0
    if len(intervals) == expected + 1 and kind != "SESSION":
        offset = _offset_ms(intervals.pop())
    if len(intervals) != expected:
        raise SqlValidationError(
            f"{kind} takes {expected} interval argument(s)"
            + (" and an optional offset" if kind != "SESSION" else "")
            + f", got {len(args) - 1}",
            *position_of(tvf),
        )
    spec = _spec(kind, time_column.name, [interval_ms(i) for i in intervals], tvf)
    spec.offset_ms = offset
    spec.proctime = _is_proctime(time_column, tvf)
    return WindowTvfRelation(spec, time_column)


def _offset_ms(node: exp.Expression) -> int:
    """A window OFFSET: a literal interval, negative ones too (`INTERVAL '-1' MINUTE`)."""
    if isinstance(node, exp.Neg):
        return -interval_ms(node.this)
    if (
        isinstance(node, exp.Interval)
        and isinstance(node.this, exp.Literal)
        and node.this.this.startswith("-")
    ):
        return -interval_ms(exp.Interval(this=exp.Literal.string(node.this.this[1:]), unit=node.unit))
    return interval_ms(node, allow_zero=True)


def legacy_window(call: exp.Anonymous, node: PlanNode, scope: Scope) -> tuple[WindowSpec, Column]:
    """`TUMBLE(ts, size)` / `HOP(ts, slide, size)` in GROUP BY."""
    kind = call.name.upper()
    args = list(call.expressions)
    time_column = rowtime_column(node, scope, args[0] if args else call)
    sizes = [interval_ms(a) for a in args[1:]]
    expected = 1 if kind in ("TUMBLE", "SESSION") else 2
    if len(sizes) != expected:
        raise SqlValidationError(
            f"{kind} takes {expected} interval argument(s) after the time column", *position_of(call)
        )
    spec = _spec(kind, time_column.name, sizes, call)
    spec.proctime = _is_proctime(time_column, call)
    return spec, time_column


def _is_proctime(time_column: Column, node: exp.Expression) -> bool:
    """Is the window on a processing-time attribute? (SESSION is not, as in Flink)"""
    proctime = "PROCTIME" in time_column.flink_type
    if (
        proctime
        and isinstance(node, WindowTvf)
        and node.kind == "SESSION"
        or (proctime and isinstance(node, exp.Anonymous) and node.name.upper() == "SESSION")
    ):
        raise UnsupportedFeatureError(
            "SESSION windows on a processing-time attribute are not supported", *position_of(node)
        )
    return proctime


def _spec(kind: str, time_column: str, sizes: list[int], node: exp.Expression) -> WindowSpec:
    if kind in ("TUMBLE", "SESSION"):
        return WindowSpec(kind, time_column, sizes[0], sizes[0])
    step, size = sizes
    if kind == "CUMULATE" and size % step:
        raise SqlValidationError("CUMULATE's max size must be a multiple of its step", *position_of(node))
    if kind == "HOP" and size % step and step % size:
        # Still correct (slices of gcd), but usually a typo; Flink accepts it, so do we.
        pass
    return WindowSpec(kind, time_column, size, step)


def _named_value(arg: exp.Expression) -> exp.Expression:
    """`SIZE => INTERVAL '1' HOUR` -> the interval."""
    if isinstance(arg, exp.Kwarg | exp.PropertyEQ):
        return arg.expression
    return arg
