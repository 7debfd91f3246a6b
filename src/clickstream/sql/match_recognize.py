"""Planning MATCH_RECOGNIZE (Flink's StreamExecMatch): from the parsed clause to a MatchNode.

Flink runs the clause on its CEP library: the PATTERN becomes a chain of strictly contiguous
states (`next()`, quantifiers `consecutive()`), greedy unless reluctant (`?` after the quantifier),
and only ONE ROW PER MATCH with the partition columns and the MEASURES comes out. What Flink
refuses here is refused the same way, with its message and the position.

DEFINE conditions and MEASURES are SQL over pattern references (`A.price`, `PREV(A.price)`,
`LAST(A.price, 1)`, `FIRST(...)`, `SUM(A.price)`, `COUNT(A.*)`, `MATCH_ROWTIME()`). Each reference
becomes a column `$r<i>` described by a `PatternRef`; the matcher computes those columns from the
rows of a (partial) match and DuckDB evaluates the bound expression over them, so conditions and
measures keep every function and type rule the rest of the engine has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from clickstream.errors import PlanningError, SqlValidationError, UnsupportedFeatureError
from clickstream.schema import Column, plan_name
from clickstream.sql.match_syntax import (
    MatchPattern,
    MatchRecognizeClause,
    MatchSkip,
    PatternUnsupported,
    PatternVariable,
)
from clickstream.sql.plan import MatchNode, PatternElement, PatternRef, PlanNode
from clickstream.sql.scope import Scope, ScopeEntry
from clickstream.sql.statements import position_of
from clickstream.sql.types import flink_type_of_duckdb, normalize_duckdb_type
from clickstream.sql.windowing import interval_ms

if TYPE_CHECKING:
    from clickstream.sql.planner import Planner

_AGGREGATES: dict[type[exp.Expression], str] = {
    exp.Count: "COUNT",
    exp.Sum: "SUM",
    exp.Avg: "AVG",
    exp.Min: "MIN",
    exp.Max: "MAX",
}
_UNSUPPORTED_PATTERNS = {
    "alternation": "Currently, CEP doesn't support branching patterns.",
    "PERMUTE": "Currently, CEP doesn't support PERMUTE patterns.",
    "group": "Group patterns are not supported yet.",
    "exclusion": "Currently, CEP doesn't support '{-' '-}' patterns.",
}


def plan_match_recognize(
    planner: Planner, clause: MatchRecognizeClause, node: PlanNode, scope: Scope
) -> tuple[MatchNode, Scope]:
    """The MatchNode over `node` and the scope of its output (partition columns, then measures)."""
    if node.updating:
        raise UnsupportedFeatureError(
            "MATCH_RECOGNIZE over an updating input is not supported (Flink: Match Recognize doesn't "
            "support consuming update changes)",
            *position_of(clause),
        )
    _check_rows(clause)
    pattern = _pattern(clause)
    names = [e.variable for e in pattern]
    time_column, order = _order(clause, node, scope)
    partition = [scope.resolve_entry(_plain_column(p)) for p in clause.args.get("partition_by") or []]
    skip, target = _skip(clause, names)
    definitions = clause.args.get("define") or []
    # Flink accepts a DEFINE of a variable the pattern does not use (it never matches a row)
    known = names + [d.alias for d in definitions if d.alias not in names]
    builder = _RefBuilder(planner, node, scope, known, time_column)
    defines = {d.alias: builder.condition(d.this, d.alias) for d in definitions if d.alias in names}
    measures, measure_columns, rowtime = _measures(clause, builder)
    proctime = "PROCTIME" in node.column(time_column).flink_type
    if proctime and rowtime is not None:
        raise UnsupportedFeatureError(
            "MATCH_ROWTIME() of a MATCH_RECOGNIZE ordered by processing time is not supported",
            *position_of(clause),
        )
    within = clause.args.get("within")
    match = MatchNode(
        columns=[e.column for e in partition] + measure_columns,
        input=node,
        partition=[e.internal for e in partition],
        time_column=time_column,
        order=order,
        pattern=pattern,
        skip=skip,
        skip_target=target,
        within_ms=interval_ms(within) if within is not None else None,
        defines=defines,
        measures=measures,
        refs=builder.refs,
        match_rowtime=rowtime,
        proctime=proctime,
    )
    alias = clause.args.get("alias")
    qualifier = alias.name if alias is not None else None
    entries = [ScopeEntry(qualifier, e.name, e.internal, e.column) for e in partition]
    entries += [ScopeEntry(qualifier, c.name, c.name, c) for c in measure_columns]
    return match, Scope(entries)


def _check_rows(clause: MatchRecognizeClause) -> None:
    rows = clause.args.get("rows")
    if rows is not None and rows.name.startswith("ALL"):
        raise UnsupportedFeatureError("All rows per match mode is not supported yet.", *position_of(rows))


def _pattern(clause: MatchRecognizeClause) -> list[PatternElement]:
    """The pattern's variables, with Flink's refusals (CommonExecMatch.translatePattern)."""
    pattern = clause.args.get("pattern")
    if not isinstance(pattern, MatchPattern) or not pattern.expressions:
        raise SqlValidationError("MATCH_RECOGNIZE needs a PATTERN", *position_of(clause))
    elements: list[PatternElement] = []
    for item in pattern.expressions:
        if isinstance(item, PatternUnsupported):
            raise UnsupportedFeatureError(_UNSUPPORTED_PATTERNS[item.this.name], *position_of(item))
        assert isinstance(item, PatternVariable)
        if any(e.variable == item.name for e in elements):
            raise UnsupportedFeatureError(
                "Pattern variables must be unique. That might change in the future.", *position_of(item)
            )
        optional = item.min == 0 and item.max == 1
        if optional and item.reluctant:
            raise UnsupportedFeatureError(
                "Reluctant optional variables are not supported yet.", *position_of(item)
            )
        elements.append(PatternElement(item.name, item.min, item.max, not item.reluctant))
    if all(e.min == 0 for e in elements):
        raise UnsupportedFeatureError(
            "Patterns that can produce empty matches are not supported. There must be at least one "
            "non-optional state.",
            *position_of(pattern),
        )
    last = elements[-1]
    if last.greedy and last.min != last.max and not (last.min == 0 and last.max == 1):
        raise UnsupportedFeatureError(
            "Greedy quantifiers are not allowed as the last element of a Pattern yet. Finish your "
            "pattern with either a simple variable or reluctant quantifier.",
            *position_of(pattern.expressions[-1]),
        )
    return elements


def _order(clause: MatchRecognizeClause, node: PlanNode, scope: Scope) -> tuple[str, list[tuple[str, bool]]]:
    """The rowtime (first, ascending, as Flink requires) and the further sort keys."""
    order = clause.args.get("order")
    keys = list(order.expressions) if order is not None else []
    if not keys:
        raise SqlValidationError(
            "You must specify either rowtime or proctime for order by.", *position_of(clause)
        )
    first = scope.resolve_entry(_plain_column(keys[0].this))
    if first.internal not in node.time_attributes and "PROCTIME" not in first.column.flink_type:
        raise SqlValidationError(
            "You must specify either rowtime or proctime for order by as the first one.",
            *position_of(keys[0]),
        )
    if keys[0].args.get("desc"):
        raise SqlValidationError(
            "Primary sort order of a streaming table must be ascending on time.", *position_of(keys[0])
        )
    rest = [(scope.resolve_entry(_plain_column(k.this)).internal, bool(k.args.get("desc"))) for k in keys[1:]]
    return first.internal, rest


def _skip(clause: MatchRecognizeClause, names: list[str]) -> tuple[str, str | None]:
    after = clause.args.get("after")
    if not isinstance(after, MatchSkip):
        return "TO NEXT ROW", None  # Calcite's default
    target = after.args.get("target")
    if target is not None and target.name not in names:
        raise SqlValidationError(f"Unknown pattern variable '{target.name}'", *position_of(after))
    return after.this.name, target.name if target is not None else None


def _measures(
    clause: MatchRecognizeClause, builder: _RefBuilder
) -> tuple[list[exp.Expression], list[Column], str | None]:
    measures, columns = [], []
    rowtime = None
    for item in clause.args.get("measures") or []:
        if not isinstance(item, exp.Alias):
            raise SqlValidationError("Each MEASURES expression needs a name (AS name)", *position_of(item))
        bound, column = builder.measure(item.this, plan_name(item.alias))
        if rowtime is None and _is_match_rowtime(item.this):
            column = Column(column.name, _rowtime_type(builder.time_type), column.duck_type)
            rowtime = column.name
        measures.append(bound)
        columns.append(column)
    return measures, columns, rowtime


def _rowtime_type(time_type: str) -> str:
    return "TIMESTAMP_LTZ(3) *ROWTIME*" if "LTZ" in time_type else "TIMESTAMP(3) *ROWTIME*"


def _is_match_rowtime(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.upper() == "MATCH_ROWTIME"


def _plain_column(node: exp.Expression) -> exp.Column:
    if not isinstance(node, exp.Column):
        raise UnsupportedFeatureError(
            "MATCH_RECOGNIZE partitions and orders by columns only", *position_of(node)
        )
    return node


class _RefBuilder:
    """Turns pattern references into `$r<i>` columns (shared by DEFINE and MEASURES) and binds."""

    def __init__(
        self, planner: Planner, node: PlanNode, scope: Scope, names: list[str], time_column: str
    ) -> None:
        self.planner, self.node, self.scope, self.names = planner, node, scope, names
        self.time_column = time_column
        self.time_type = node.column(time_column).flink_type
        self.refs: list[PatternRef] = []
        self._columns: list[Column] = []

    def condition(self, expression: exp.Expression, variable: str) -> exp.Expression:
        rewritten = self._rewrite(expression, variable)
        bound = self.planner.bind(rewritten, self._scope())
        self.planner.infer_types(PlanNode(columns=list(self._columns)), [bound])
        return bound

    def measure(self, expression: exp.Expression, name: str) -> tuple[exp.Expression, Column]:
        bound = self.planner.bind(self._rewrite(expression, None), self._scope())
        duck = self.planner.infer_types(PlanNode(columns=list(self._columns)), [bound])[0]
        return bound, Column(name, flink_type_of_duckdb(duck), normalize_duckdb_type(duck))

    def _scope(self) -> Scope:
        return Scope([ScopeEntry(None, c.name, c.name, c) for c in self._columns])

    def _rewrite(self, expression: exp.Expression, current: str | None) -> exp.Expression:
        """`expression` with each pattern reference replaced by its `$r<i>` column. In a DEFINE of
        `current`, its plain and own columns are the row being tested; elsewhere a column of a
        variable is its last row (FINAL semantics of ONE ROW PER MATCH)."""

        def replace(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Anonymous) and node.name.upper() == "MATCH_ROWTIME":
                return self._ref(PatternRef("last", None, self.time_column, 0), node)
            if isinstance(node, exp.Anonymous) and node.name.upper() in ("PREV", "NEXT"):
                return self._navigation(node, current)
            if isinstance(node, exp.Anonymous) and node.name.upper() in (
                "CLASSIFIER",
                "MATCH_NUMBER",
                "MATCH_PROCTIME",
            ):
                raise UnsupportedFeatureError(f"{node.name.upper()}() is not supported", *position_of(node))
            if isinstance(node, exp.First | exp.Last):
                variable, column = self._column(node.this, current)
                offset = _offset(node.args.get("expression"))
                return self._ref(
                    PatternRef("first" if isinstance(node, exp.First) else "last", variable, column, offset),
                    node,
                )
            if type(node) in _AGGREGATES:
                return self._aggregate(node, current)
            if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
                variable, column = self._column(node, current)
                return self._ref(PatternRef("last", variable, column, 0), node)
            return node

        return expression.copy().transform(replace, copy=False)

    def _navigation(self, node: exp.Anonymous, current: str | None) -> exp.Expression:
        """PREV/NEXT: Flink refuses physical offsets; PREV(x, 0) is x itself."""
        args = node.expressions
        if len(args) < 2 or _offset(args[1]) != 0:
            raise UnsupportedFeatureError(
                "Flink does not support physical offsets within partition.", *position_of(node)
            )
        variable, column = self._column(args[0], current)
        return self._ref(PatternRef("last", variable, column, 0), node)

    def _aggregate(self, node: exp.Expression, current: str | None) -> exp.Expression:
        function = _AGGREGATES[type(node)]
        argument = node.this
        if isinstance(argument, exp.Distinct):
            raise UnsupportedFeatureError(
                "DISTINCT aggregates in MATCH_RECOGNIZE are not supported", *position_of(node)
            )
        if isinstance(argument, exp.Column) and isinstance(argument.this, exp.Star):
            raise SqlValidationError("Unknown field '*'", *position_of(node))  # COUNT(A.*), as Flink 2.3
        if isinstance(argument, exp.Star):
            return self._ref(PatternRef("count", None, None, 0), node)
        variable, column = self._column(argument, current, aggregate=True)
        return self._ref(PatternRef(function.lower(), variable, column, 0), node)

    def _column(
        self, node: exp.Expression | None, current: str | None, aggregate: bool = False
    ) -> tuple[str | None, str]:
        """(variable, input column) of a column reference; a plain one means `current` in a DEFINE
        (all rows, in an aggregate or a measure)."""
        if not isinstance(node, exp.Column):
            raise UnsupportedFeatureError(
                "pattern navigation and aggregates take a column (A.col) in MATCH_RECOGNIZE",
                *position_of(node),
            )
        variable = node.table or (None if aggregate else current)
        self._check_variable(variable, node)
        entry = self.scope.resolve_entry(exp.column(node.name))
        return variable, entry.internal

    def _check_variable(self, variable: str | None, node: exp.Expression) -> None:
        if variable is not None and variable not in self.names:
            raise SqlValidationError(f"Table '{variable}' not found", *position_of(node))

    def _ref(self, ref: PatternRef, node: exp.Expression) -> exp.Expression:
        if ref in self.refs:
            index = self.refs.index(ref)
        else:
            index = len(self.refs)
            self.refs.append(ref)
            self._columns.append(self._ref_column(ref, index, node))
        return exp.column(f"$r{index}", quoted=True)

    def _ref_column(self, ref: PatternRef, index: int, node: exp.Expression) -> Column:
        name = f"$r{index}"
        if ref.kind == "count":
            return Column(name, "BIGINT NOT NULL", "BIGINT")
        source = self.node.column(ref.column)  # type: ignore[arg-type]
        duck = normalize_duckdb_type(source.duck_type)
        if ref.kind in ("sum", "avg") and not _numeric(duck):
            raise SqlValidationError(f"{ref.kind.upper()} needs a numeric argument", *position_of(node))
        if ref.kind == "avg" and duck.startswith("DECIMAL"):
            duck = "DECIMAL(38, 6)"
        ref.duck_type = duck
        return Column(name, flink_type_of_duckdb(duck), duck)


def _numeric(duck: str) -> bool:
    return duck in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "FLOAT", "DOUBLE") or duck.startswith(
        "DECIMAL"
    )


def _offset(node: exp.Expression | None, default: int = 0) -> int:
    if node is None:
        return default
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return int(node.this)
    raise PlanningError(
        "the offset of a pattern navigation must be a non-negative integer literal", *position_of(node)
    )
