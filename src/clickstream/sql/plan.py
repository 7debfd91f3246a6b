"""The logical plan: what a query computes, in Flink's vocabulary, before any operator exists.

Every node lists its output columns (names unique within the node) and whether it produces an
append-only stream or an updating changelog (with the columns that key the updates). Expressions
are bound sqlglot trees in DuckDB's dialect whose columns are the input node's (quoted) column
names; `sql.render` turns them into text where an operator builds its query.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from clickstream.schema import Column, TableDef, plan_name
from clickstream.sql.render import column_name, to_sql


@dataclass(eq=False)
class PlanNode:
    columns: list[Column]

    @property
    def inputs(self) -> list[PlanNode]:
        return []

    @property
    def updating(self) -> bool:
        return any(i.updating for i in self.inputs)

    @property
    def upsert_keys(self) -> list[str] | None:
        return None

    @property
    def rowtime(self) -> str | None:
        """The event-time attribute column, while the stream still carries one."""
        return None

    @property
    def time_attributes(self) -> list[str]:
        """Every column a window may be defined on: the rowtime, and after an interval join the
        other side's rowtime too (both stay time attributes in Flink)."""
        return [self.rowtime] if self.rowtime else []

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def describe(self) -> str:
        return type(self).__name__.removesuffix("Node")


@dataclass(eq=False)
class ScanNode(PlanNode):
    """A source table, read once per job however many queries use it."""

    table: TableDef = None  # type: ignore[assignment]
    # computed columns over the physical columns, in declaration order
    computed_expressions: list[tuple[str, exp.Expression]] = field(default_factory=list)
    watermark_expression: exp.Expression | None = None
    proctime_columns: list[str] = field(default_factory=list)  # computed as PROCTIME()
    # the watermark as (rowtime column, delay ms) when it is `column [- INTERVAL ...]`
    watermark_delay: tuple[str, int] | None = None
    # what the source emits (schema.SourceMode): "insert", "all" changes, or "upsert"s by key
    changelog: str = "insert"

    @property
    def updating(self) -> bool:
        return self.changelog != "insert"

    @property
    def upsert_keys(self) -> list[str] | None:
        # a changelog source's PRIMARY KEY keys its changes (Flink trusts it, NOT ENFORCED)
        if not self.updating or not self.table.primary_key:
            return None
        return [plan_name(self.table.column(k).name) for k in self.table.primary_key]  # type: ignore[union-attr]

    @property
    def rowtime(self) -> str | None:
        return plan_name(self.table.watermark.column) if self.table.watermark else None

    def describe(self) -> str:
        fields = ", ".join(c.name for c in self.columns)
        mode = f", changelogMode=[{self.changelog}]" if self.updating else ""
        return f"TableSourceScan(table=[{self.table.name}], fields=[{fields}]{mode})"


@dataclass(eq=False)
class ChangelogNormalizeNode(PlanNode):
    """Completes an upsert source's changes (Flink's ChangelogNormalize): keeps the last row of
    each key, so an upsert becomes +I (a new key) or -U/+U (old row, new row), and a delete -D of
    the row it removes (or nothing, for a key that has no row)."""

    input: PlanNode = None  # type: ignore[assignment]
    keys: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    @property
    def upsert_keys(self) -> list[str] | None:
        return list(self.keys)

    def describe(self) -> str:
        return f"ChangelogNormalize(key=[{', '.join(self.keys)}])"


@dataclass(eq=False)
class CalcNode(PlanNode):
    """Projection and filter, row by row."""

    input: PlanNode = None  # type: ignore[assignment]
    projections: list[exp.Expression] = field(default_factory=list)  # one per output column
    condition: exp.Expression | None = None
    keeps_rowtime: str | None = None  # output name of the input's rowtime, if passed through
    key_map: dict[str, str] = field(default_factory=dict)  # input column -> output column

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    @property
    def rowtime(self) -> str | None:
        return self.keeps_rowtime

    @property
    def time_attributes(self) -> list[str]:
        below = self.input.time_attributes
        copies = [
            c.name for c, p in zip(self.columns, self.projections, strict=True) if column_name(p) in below
        ]
        return (
            [self.keeps_rowtime] + [c for c in copies if c != self.keeps_rowtime]
            if self.keeps_rowtime
            else copies
        )

    @property
    def upsert_keys(self) -> list[str] | None:
        keys = self.input.upsert_keys
        if keys is None or not all(k in self.key_map for k in keys):
            return None
        return [self.key_map[k] for k in keys]

    def describe(self) -> str:
        select = ", ".join(
            c.name if isinstance(p, exp.Column) and p.name == c.name else f"{to_sql(p)} AS {c.name}"
            for p, c in zip(self.projections, self.columns, strict=True)
        )
        where = f", where=[{to_sql(self.condition)}]" if self.condition else ""
        return f"Calc(select=[{select}]{where})"


class _RowByRow:
    """A node that maps each input row to rows of its own, keeping the input's time attributes
    (Expand, Correlate): it has one input and no state."""

    input: PlanNode

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    @property
    def rowtime(self) -> str | None:
        return self.input.rowtime

    @property
    def time_attributes(self) -> list[str]:
        return self.input.time_attributes


@dataclass(eq=False)
class ExpandNode(_RowByRow, PlanNode):
    """Each input row once per grouping set, the keys outside the set NULL and `set_column` the
    set's number (Flink's Expand under a GROUPING SETS aggregate)."""

    input: PlanNode = None  # type: ignore[assignment]
    nulled: list[list[str]] = field(default_factory=list)  # per set: the key columns made NULL
    set_column: str = ""

    def describe(self) -> str:
        sets = ", ".join("{" + ", ".join(n) + "}" for n in self.nulled)
        return f"Expand(nulled=[{sets}], id=[{self.set_column}])"


@dataclass(eq=False)
class LookupJoinNode(PlanNode):
    """`JOIN dim FOR SYSTEM_TIME AS OF left.proctime ON left.k = dim.k`, enriched per batch."""

    input: PlanNode = None  # type: ignore[assignment]
    table: TableDef = None  # type: ignore[assignment]
    join_type: str = "INNER"  # or LEFT
    left_keys: list[str] = field(default_factory=list)  # input column names
    right_keys: list[str] = field(default_factory=list)  # dim table column names
    right_columns: list[tuple[str, str]] = field(default_factory=list)  # dim column -> output
    condition: exp.Expression | None = None  # extra ON condition over the output columns

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    @property
    def rowtime(self) -> str | None:
        return self.input.rowtime

    def describe(self) -> str:
        on = " AND ".join(f"{lk}={rk}" for lk, rk in zip(self.left_keys, self.right_keys, strict=True))
        extra = f", where=[{to_sql(self.condition)}]" if self.condition else ""
        return f"LookupJoin(table=[{self.table.name}], joinType=[{self.join_type}Join], lookup=[{on}]{extra})"


@dataclass(eq=False)
class CorrelateNode(_RowByRow, PlanNode):
    """`CROSS JOIN UNNEST(x) AS t(...)` (Flink's Correlate): each input row joined with the
    elements of its array (or entries of its map), row by row and without state, so it takes
    updating inputs (each change is unnested) and keeps the rowtime."""

    input: PlanNode = None  # type: ignore[assignment]
    expression: exp.Expression = None  # type: ignore[assignment]  # the ARRAY or MAP, over the input
    kind: str = "array"  # "array" (one column per element), "rows" (an element's fields), "map"
    fields: list[str] = field(default_factory=list)  # the ROW fields of "rows"
    outer: bool = False  # LEFT JOIN UNNEST: a row left without elements is kept, with NULLs
    # the ON condition (over this node's columns) an element must meet; None for ON TRUE
    condition: exp.Expression | None = None
    ordinality: bool = False  # WITH ORDINALITY: the last column is the element's position (from 1)

    def describe(self) -> str:
        join = "LEFT" if self.outer else "INNER"
        where = f", condition=[{to_sql(self.condition)}]" if self.condition is not None else ""
        return f"Correlate(invocation=[UNNEST({to_sql(self.expression)})], joinType=[{join}]{where})"


@dataclass
class AggCall:
    """One aggregate: `function(argument)`, its output column and the argument's type."""

    function: str  # COUNT, SUM, MIN, MAX, AVG, STDDEV_POP, ..., FIRST_VALUE, LAST_VALUE, LISTAGG
    argument: str | None  # input column name; None for COUNT(*)
    distinct: bool
    output: Column
    argument_type: str | None = None  # DuckDB type of the argument
    separator: str = ","  # LISTAGG's

    def describe(self) -> str:
        inner = "*" if self.argument is None else self.argument
        if self.distinct:
            inner = f"DISTINCT {inner}"
        return f"{self.function}({inner}) AS {self.output.name}"


@dataclass
class WindowSpec:
    kind: str  # TUMBLE, HOP, CUMULATE
    time_column: str  # input column (the rowtime attribute)
    size_ms: int
    slide_ms: int  # HOP slide, CUMULATE step, TUMBLE size
    offset_ms: int = 0  # window starts are shifted by this much (the TVFs' optional OFFSET)
    proctime: bool = False  # on a processing-time attribute: fired by the job's clock

    def describe(self) -> str:
        offset = f", offset=[{self.offset_ms} ms]" if self.offset_ms else ""
        return self._describe()[:-1] + offset + ")"

    def _describe(self) -> str:
        if self.kind == "TUMBLE":
            return f"TUMBLE(time_col=[{self.time_column}], size=[{self.size_ms} ms])"
        if self.kind == "SESSION":
            return f"SESSION(time_col=[{self.time_column}], gap=[{self.size_ms} ms])"
        label = "slide" if self.kind == "HOP" else "step"
        return (
            f"{self.kind}(time_col=[{self.time_column}], size=[{self.size_ms} ms], "
            f"{label}=[{self.slide_ms} ms])"
        )


@dataclass(eq=False)
class WindowAggregateNode(PlanNode):
    """Aggregation per event-time window and key; a window's row is emitted once, when it closes."""

    input: PlanNode = None  # type: ignore[assignment]
    window: WindowSpec = None  # type: ignore[assignment]
    keys: list[str] = field(default_factory=list)
    aggregates: list[AggCall] = field(default_factory=list)
    window_columns: list[str] = field(default_factory=list)  # start, end, time output names
    time_is_ltz: bool = False

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    @property
    def updating(self) -> bool:
        return False

    @property
    def rowtime(self) -> str | None:
        return None if self.window.proctime else self.window_columns[2]

    def describe(self) -> str:
        aggs = ", ".join(a.describe() for a in self.aggregates)
        return (
            f"WindowAggregate(groupBy=[{', '.join(self.keys)}], window=[{self.window.describe()}]"
            f", select=[{aggs}])"
        )


@dataclass(eq=False)
class GroupAggregateNode(PlanNode):
    """Unbounded GROUP BY: every change of a group's result is emitted as -U/+U (or +I)."""

    input: PlanNode = None  # type: ignore[assignment]
    keys: list[str] = field(default_factory=list)
    aggregates: list[AggCall] = field(default_factory=list)
    # Emit every record's effect (then folded per sink key) rather than one change per key and
    # batch: set when the sink's primary key is not the group key, so that the sink sees every
    # key value Flink would have shown it, whatever the batch size.
    per_record: bool = False

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    @property
    def updating(self) -> bool:
        return True

    @property
    def upsert_keys(self) -> list[str] | None:
        return list(self.keys)

    def describe(self) -> str:
        aggs = ", ".join(a.describe() for a in self.aggregates)
        emit = ", emit=[per record, folded by sink key]" if self.per_record else ""
        return f"GroupAggregate(groupBy=[{', '.join(self.keys)}], select=[{aggs}]{emit})"


@dataclass(eq=False)
class BinaryJoinNode(PlanNode):
    """What every join of two streams has: the inputs, the join type and the equal keys; the
    right side's columns are renamed apart from the left's (`right_columns`: right -> output)."""

    left: PlanNode = None  # type: ignore[assignment]
    right: PlanNode = None  # type: ignore[assignment]
    join_type: str = "INNER"
    left_keys: list[str] = field(default_factory=list)
    right_keys: list[str] = field(default_factory=list)
    right_columns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.left, self.right]

    def keys_text(self) -> str:
        return " AND ".join(f"{a}={b}" for a, b in zip(self.left_keys, self.right_keys, strict=True))


@dataclass(eq=False)
class IntervalJoinNode(BinaryJoinNode):
    """Both sides append-only, matched on keys and `lower <= left.time - right.time <= upper`;
    a side's rows leave the state once the watermark makes a match impossible (an outer join
    then emits the unmatched ones padded with NULLs). join_type: INNER, LEFT, RIGHT, FULL."""

    left_time: str = ""
    right_time: str = ""
    lower_ms: int = 0
    upper_ms: int = 0
    condition: exp.Expression | None = None  # the rest of ON, over output names

    @property
    def rowtime(self) -> str | None:
        return self.left_time

    @property
    def time_attributes(self) -> list[str]:
        return [self.left_time, dict(self.right_columns)[self.right_time]]

    def describe(self) -> str:
        keys = self.keys_text()
        rest = f" AND {to_sql(self.condition)}" if self.condition else ""
        return (
            f"IntervalJoin(joinType=[{self.join_type}Join], where=[{keys or 'TRUE'}{rest}], "
            f"windowBounds=[{self.lower_ms} ms <= {self.left_time} - {self.right_time} <= "
            f"{self.upper_ms} ms])"
        )


@dataclass(eq=False)
class JoinNode(BinaryJoinNode):
    """A regular join of two changelog streams on equal keys: every change on one side is
    joined with the other side's current rows. State is bounded only by
    `table.exec.state.ttl`. join_type: INNER, LEFT, RIGHT or FULL."""

    condition: exp.Expression | None = None  # the rest of ON, over output names
    # A window join (both sides window aggregates, equal on window_end): the (left, right)
    # window_end columns; rows of a window leave the state once the watermark passes its end.
    window_ends: tuple[str, str] | None = None

    @property
    def updating(self) -> bool:
        return self.left.updating or self.right.updating or self.join_type != "INNER"

    def describe(self) -> str:
        keys = self.keys_text()
        rest = f" AND {to_sql(self.condition)}" if self.condition else ""
        return f"Join(joinType=[{self.join_type}Join], where=[{keys}{rest}])"


@dataclass(eq=False)
class SemiJoinNode(PlanNode):
    """Flink's semi (SEMI) or anti (ANTI) regular join, planned from `IN`/`EXISTS` subqueries:
    the left rows that have a right row matching `condition` (SEMI) or none (ANTI), with the left's
    columns. MARK gives every left row with one more column, the `IN`/`EXISTS` value: TRUE with a
    match, else NULL with a right row for which `null_condition` holds, else FALSE. The right's
    columns are named apart from the left's; the conditions (None: TRUE, FALSE for
    `null_condition`) read both by name. ANTI and MARK joins change a left row's output when the
    right side changes: they update."""

    left: PlanNode = None  # type: ignore[assignment]
    right: PlanNode = None  # type: ignore[assignment]
    kind: str = "SEMI"
    condition: exp.Expression | None = None
    null_condition: exp.Expression | None = None

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.left, self.right]

    @property
    def updating(self) -> bool:
        return self.left.updating or self.right.updating or self.kind != "SEMI"

    @property
    def upsert_keys(self) -> list[str] | None:
        return self.left.upsert_keys

    @property
    def time_attributes(self) -> list[str]:
        # Flink materializes the left's rowtime after the join (no ORDER BY on it, no window
        # TVF over a view of it), yet a legacy GROUP BY TUMBLE(...) still groups on it
        return [self.left.rowtime] if self.left.rowtime else []

    def describe(self) -> str:
        where = to_sql(self.condition) if self.condition is not None else "true"
        unknown = f", unknown=[{to_sql(self.null_condition)}]" if self.null_condition is not None else ""
        return f"Join(joinType=[Left{self.kind.title()}Join], where=[{where}]{unknown})"


@dataclass(eq=False)
class TemporalJoinNode(BinaryJoinNode):
    """`JOIN v FOR SYSTEM_TIME AS OF l.rowtime`: a left row waits until the watermark passes its
    time, then joins the version of its key valid at that time (the latest one not after it).
    join_type: INNER or LEFT."""

    @property
    def updating(self) -> bool:
        # A new version never changes a row already joined: the join appends whatever the
        # versioned side does, as Flink's temporal join forwards its left input's changes only.
        return self.left.updating

    @property
    def rowtime(self) -> str | None:
        return self.left.rowtime

    def describe(self) -> str:
        keys = self.keys_text()
        return (
            f"TemporalJoin(joinType=[{self.join_type}Join], where=[{keys}], "
            f"asOf=[{self.left.rowtime}], version=[{self.right.rowtime}])"
        )


@dataclass
class OverCall:
    function: str  # COUNT, SUM, MIN, MAX, AVG, LAG, FIRST_VALUE, LAST_VALUE, ROW_NUMBER
    argument: str | None
    output: Column
    offset: int = 1  # LAG's
    default: str | None = None  # LAG's default: a column of the input

    def describe(self) -> str:
        args = [self.argument or ("" if self.function == "ROW_NUMBER" else "*")]
        if self.function == "LAG":
            args += [str(self.offset)] + ([self.default] if self.default else [])
        return f"{self.function}({', '.join(args)}) AS {self.output.name}"


@dataclass(eq=False)
class OverAggregateNode(PlanNode):
    """`agg OVER (PARTITION BY k ORDER BY rowtime RANGE|ROWS ... PRECEDING)`: every row, once the
    watermark passes it, with aggregates over its partition's rows in the frame ending at it."""

    input: PlanNode = None  # type: ignore[assignment]
    partition: list[str] = field(default_factory=list)
    time_column: str = ""
    frame: str = "RANGE"  # or ROWS
    preceding: int | None = None  # ms for RANGE, rows for ROWS; None = UNBOUNDED
    calls: list[OverCall] = field(default_factory=list)
    # ordered by a processing-time attribute: rows take the time they are processed at
    proctime: bool = False

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    @property
    def rowtime(self) -> str | None:
        return None if self.proctime else self.time_column

    def describe(self) -> str:
        bound = (
            "UNBOUNDED"
            if self.preceding is None
            else (f"{self.preceding} ms" if self.frame == "RANGE" else str(self.preceding))
        )
        calls = ", ".join(c.describe() for c in self.calls)
        return (
            f"OverAggregate(partitionBy=[{', '.join(self.partition)}], orderBy=["
            f"{self.time_column} ASC], window=[{self.frame} BETWEEN {bound} PRECEDING AND "
            f"CURRENT ROW], select=[{calls}])"
        )


@dataclass(eq=False)
class RankNode(PlanNode):
    """Top-N per partition (`ROW_NUMBER() ... WHERE rn <= N`); N = 1 is deduplication. The
    output is updating: when the ranking changes, rows leave (-D) and enter (+I) the top N."""

    input: PlanNode = None  # type: ignore[assignment]
    partition: list[str] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    limit: int = 1  # the last rank kept
    start: int = 1  # the first rank emitted (`rn = 3`, `rn BETWEEN 2 AND 5`)
    rank_column: str = "rn"
    row_key: list[str] | None = None  # the input's unique key, for an updating input
    drop_late: bool = False  # deduplication on event time drops rows behind the watermark
    # Deduplication (N = 1, ordered by a time attribute): Flink's Deduplicate keeps the later of two
    # rows with the same time under DESC ("keep last"); every other Top-N keeps the earlier one.
    deduplicate: bool = False
    # Window Top-N (Flink's WindowRank): partitioned by the window bounds of an insert-only window
    # aggregate, each window is ranked once, when it fires, so the result only appends.
    per_window: bool = False
    # Deduplication keeping the last row on event time: Flink's versioned view, whose rows keep
    # their rowtime, so a temporal join can read it as versions of its key.
    last_on_rowtime: bool = False
    # Emit every replacement as it happens (-U, +U per row, nothing folded within a batch), for
    # an event-time operator downstream (a window aggregate) that judges each change on its own.
    per_record: bool = False

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    @property
    def first_on_rowtime(self) -> bool:
        """Deduplication keeping the first row on event time: Flink 2 emits each key's row once
        the watermark passes it, so the result only appends and keeps its rowtime."""
        return self.deduplicate and self.drop_late and not self.order[0][1]

    @property
    def updating(self) -> bool:
        return not self.per_window and not self.first_on_rowtime

    @property
    def rowtime(self) -> str | None:
        return self.input.rowtime if self.first_on_rowtime or self.last_on_rowtime else None

    @property
    def time_attributes(self) -> list[str]:
        return self.input.time_attributes if self.rowtime else []

    @property
    def upsert_keys(self) -> list[str] | None:
        # deduplication keeps one row per partition: the partition keys alone are unique
        return list(self.partition) if self.limit == 1 else self.partition + [self.rank_column]

    def describe(self) -> str:
        order = ", ".join(f"{c} {'DESC' if d else 'ASC'}" for c, d in self.order)
        kind = "Deduplicate" if self.limit == 1 else "Rank"
        return (
            f"{kind}(partitionBy=[{', '.join(self.partition)}], orderBy=[{order}], "
            f"rankRange=[{self.start}..{self.limit}], rankNumber=[{self.rank_column}])"
        )


@dataclass(eq=False)
class UnionNode(PlanNode):
    """UNION ALL: every input's rows as they come, one changelog if any input updates. Each input
    is a Calc giving the union's columns, in order and type. The watermark is the least of the
    inputs' (as for every operator of several inputs), and each row carries that one."""

    branches: list[PlanNode] = field(default_factory=list)

    @property
    def inputs(self) -> list[PlanNode]:
        return list(self.branches)

    @property
    def rowtime(self) -> str | None:
        # a time attribute stays one only where every input has its rowtime in that column
        times = {b.rowtime for b in self.branches}
        return times.pop() if len(times) == 1 else None

    def describe(self) -> str:
        return f"Union(all=[true], union=[{', '.join(c.name for c in self.columns)}])"


@dataclass(eq=False)
class ReplicateRowsNode(PlanNode):
    """Each input row `count` times, without the count column (Flink's ReplicateRows table
    function, which INTERSECT ALL and EXCEPT ALL end with); a change of the row the same."""

    input: PlanNode = None  # type: ignore[assignment]
    count: str = ""

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    def describe(self) -> str:
        return f"Correlate(invocation=[ReplicateRows({self.count})])"


@dataclass(eq=False)
class LimitNode(PlanNode):
    """`LIMIT n [OFFSET m]` without ORDER BY on an append-only input: the rows after the first m,
    up to n of them, as they arrive (Flink's Limit); once it has them, the query has ended."""

    input: PlanNode = None  # type: ignore[assignment]
    offset: int = 0
    fetch: int = 0

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    @property
    def rowtime(self) -> str | None:
        return self.input.rowtime

    def describe(self) -> str:
        return f"Limit(offset=[{self.offset}], fetch=[{self.fetch}])"


@dataclass(eq=False)
class TemporalSortNode(PlanNode):
    """`ORDER BY rowtime [, more keys]` on a stream: each row waits until the watermark passes its
    time, then rows leave in time order (ties ordered by the other keys); a row no later than the
    last time released is late and dropped (Flink's TemporalSort)."""

    input: PlanNode = None  # type: ignore[assignment]
    order: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending); rowtime first

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    @property
    def rowtime(self) -> str | None:
        return self.input.rowtime

    def describe(self) -> str:
        order = ", ".join(f"{c} {'DESC' if d else 'ASC'}" for c, d in self.order)
        return f"TemporalSort(orderBy=[{order}])"


@dataclass(eq=False)
class SinkNode(PlanNode):
    input: PlanNode = None  # type: ignore[assignment]
    table: TableDef = None  # type: ignore[assignment]

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    def describe(self) -> str:
        return f"Sink(table=[{self.table.name}], fields=[{', '.join(c.name for c in self.columns)}])"


def explain(node: PlanNode, indent: int = 0) -> str:
    """Flink-style plan text: one node per line, inputs indented below their consumer."""
    lines = [("   " * indent) + ("+- " if indent else "") + node.describe()]
    for child in node.inputs:
        lines.append(explain(child, indent + 1))
    return "\n".join(lines)


@dataclass
class PatternElement:
    """One variable of a MATCH_RECOGNIZE pattern: `A{min,max}` (max -1: unbounded), greedy unless
    reluctant."""

    variable: str
    min: int
    max: int
    greedy: bool = True


@dataclass
class PatternRef:
    """A value the matcher computes from a (partial) match for a DEFINE or a MEASURE:
    `last`/`first` (the `offset`-th row of `variable` from its end/start; None: every row),
    `count`, `sum`, `avg`, `min`, `max` (over the rows of `variable`; `count` without a column
    counts rows)."""

    kind: str
    variable: str | None
    column: str | None  # input column; None for COUNT(*)
    offset: int
    duck_type: str = field(default="BIGINT", compare=False)


@dataclass(eq=False)
class MatchNode(PlanNode):
    """`MATCH_RECOGNIZE` (Flink's StreamExecMatch): per partition, rows in rowtime order once the
    watermark passes them, matched against a pattern of strictly contiguous variables; one row per
    match (partition columns, then measures). DEFINE conditions and measures are bound over the
    `$r<i>` columns that `refs` describe."""

    input: PlanNode = None  # type: ignore[assignment]
    partition: list[str] = field(default_factory=list)
    time_column: str = ""
    order: list[tuple[str, bool]] = field(default_factory=list)  # further sort keys (column, desc)
    pattern: list[PatternElement] = field(default_factory=list)
    skip: str = "PAST LAST ROW"  # or TO NEXT ROW, TO FIRST, TO LAST (of skip_target)
    skip_target: str | None = None
    within_ms: int | None = None
    defines: dict[str, exp.Expression] = field(default_factory=dict)
    measures: list[exp.Expression] = field(default_factory=list)  # one per measure column
    refs: list[PatternRef] = field(default_factory=list)
    match_rowtime: str | None = None  # the measure column that is MATCH_ROWTIME()
    proctime: bool = False  # ordered by a processing-time attribute: rows match as they arrive

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.input]

    @property
    def rowtime(self) -> str | None:
        return self.match_rowtime

    def describe(self) -> str:
        pattern = " ".join(
            e.variable
            + ("" if (e.min, e.max) == (1, 1) else f"{{{e.min},{'' if e.max < 0 else e.max}}}")
            + ("" if e.greedy else "?")
            for e in self.pattern
        )
        target = f" {self.skip_target}" if self.skip_target else ""
        within = f", within=[{self.within_ms} ms]" if self.within_ms is not None else ""
        return (
            f"Match(partitionBy=[{', '.join(self.partition)}], orderBy=[{self.time_column} ASC], "
            f"pattern=[{pattern}], after=[SKIP {self.skip}{target}]{within})"
        )
