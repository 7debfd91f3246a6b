"""Subqueries in WHERE and SELECT, planned as Flink plans them in streaming: semi, anti and
marking regular joins.

A conjunct of WHERE (an AND of conditions) may be
- `x IN (SELECT y ...)` or `(x1, x2) IN (SELECT y1, y2 ...)`: a SEMI join on `x = y` (a NULL
  never matches);
- `x NOT IN (SELECT y ...)`: an ANTI join on Flink's null-aware condition `x = y OR x IS NULL OR
  y IS NULL` (per column), so that a NULL on either side excludes the row, as SQL's three-valued
  NOT IN does; an empty subquery excludes nothing;
- `[NOT] EXISTS (SELECT ... WHERE inner.a = outer.b ...)`: a SEMI (ANTI) join on the correlated
  conditions of the subquery's WHERE (those that read the outer query's columns);
- a comparison with an uncorrelated scalar subquery that is an aggregate without GROUP BY
  (`amount > (SELECT AVG(amount) FROM t)`): it has exactly one row, so the conjunct holds when
  that row matches it, a SEMI join again. Its result updates as the aggregate changes.
An `IN`/`EXISTS` anywhere else (under OR or NOT, inside CASE, in the SELECT list) becomes a MARK
join, whose extra column is its three-valued result, read where the subquery stood. The other
conjuncts stay the query's filter. Refused by name: a correlated subquery with GROUP BY, an
aggregate, DISTINCT, LIMIT or ORDER BY (so a correlated scalar subquery), a scalar subquery that
is not an aggregate without GROUP BY, or one outside WHERE's conjuncts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.schema import Column
from clickstream.sql import render
from clickstream.sql.join_planner import JoinPlanner
from clickstream.sql.plan import CalcNode, PlanNode, SemiJoinNode
from clickstream.sql.scope import Scope, ScopeEntry, unique_name
from clickstream.sql.statements import position_of

if TYPE_CHECKING:
    from clickstream.sql.planner import Planner

SUB = "$sub"  # the qualifier of the subquery's columns in a semi join's condition


def has_subquery(expression: exp.Expr) -> bool:
    """Does `expression` hold a subquery (`IN (SELECT ...)`, `EXISTS`, a scalar one)?"""
    return any(is_subquery(n) for n in expression.walk())


def is_subquery(node: exp.Expr) -> bool:
    return isinstance(node, exp.Subquery | exp.Exists) or (isinstance(node, exp.In) and "query" in node.args)


def plan_where(
    planner: Planner, node: PlanNode, scope: Scope, where: exp.Expr
) -> tuple[PlanNode, Scope, exp.Expr | None]:
    """`node` semi/anti-joined with WHERE's subqueries, and the conjuncts left for the filter
    (where an `IN`/`EXISTS` that is not a conjunct on its own reads its MARK join's column)."""
    conjuncts = list(where.flatten()) if isinstance(where, exp.And) else [where]
    rest = []
    for conjunct in conjuncts:
        if not has_subquery(conjunct):
            rest.append(conjunct)
        elif _is_filter(conjunct):
            node = _SubqueryConjunct(planner, node, scope).plan(conjunct)
        else:
            node, scope, (conjunct,) = plan_marks(planner, node, scope, [conjunct])
            if has_subquery(conjunct):  # a scalar subquery
                node = _SubqueryConjunct(planner, node, scope).plan(conjunct)
            else:
                rest.append(conjunct)
    return node, scope, _conjunction(rest)


def plan_marks(
    planner: Planner, node: PlanNode, scope: Scope, expressions: list[exp.Expr]
) -> tuple[PlanNode, Scope, list[exp.Expr]]:
    """Each `IN`/`EXISTS` subquery in `expressions` (copied) replaced by the column of a MARK join
    of `node` that gives its value."""
    out = []
    for expression in expressions:
        expression = expression.copy()
        for predicate in _predicates(expression):
            node, scope, marker = _SubqueryConjunct(planner, node, scope).mark(predicate)
            if predicate is expression:
                expression = marker
            else:
                predicate.replace(marker)
        out.append(expression)
    return node, scope, out


def plan_select(
    planner: Planner, node: PlanNode, scope: Scope, items: list[exp.Expr]
) -> tuple[PlanNode, Scope, list[exp.Expr]]:
    """The SELECT list's `IN`/`EXISTS` subqueries read from MARK joins; a scalar one is refused."""
    node, scope, items = plan_marks(planner, node, scope, items)
    for item in items:
        found = next((n for n in item.walk() if isinstance(n, exp.Subquery)), None)
        if found is not None:
            raise UnsupportedFeatureError(
                "a scalar subquery in the SELECT list is not supported", *position_of(found)
            )
    return node, scope, items


def _is_filter(conjunct: exp.Expr) -> bool:
    """`[NOT] x IN (SELECT ...)`, `[NOT] EXISTS (...)`: a semi or anti join on its own."""
    inner = conjunct.unnest()
    if isinstance(inner, exp.Not):
        inner = inner.this.unnest()
    return isinstance(inner, exp.Exists) or (isinstance(inner, exp.In) and "query" in inner.args)


def _predicates(expression: exp.Expr) -> list[exp.Expression]:
    """The `IN`/`EXISTS` subqueries of `expression`, not those inside its subqueries."""
    nested = (exp.Subquery, exp.Exists, exp.Select)
    return [
        n
        for n in expression.walk(prune=lambda n: isinstance(n, nested) and n is not expression)
        if isinstance(n, exp.Exists) or (isinstance(n, exp.In) and "query" in n.args)
    ]


@dataclass
class _Right:
    """A subquery as a semi join's right side: a Calc giving the columns the condition reads,
    and the label the condition reads each one by (`$v0`, `$c0`, ...)."""

    node: CalcNode
    labels: list[str]


class _SubqueryConjunct:
    """A subquery of the query over `left`, as a semi, anti or mark join of `left`."""

    def __init__(self, planner: Planner, left: PlanNode, scope: Scope) -> None:
        self.planner, self.left, self.scope = planner, left, scope

    def plan(self, conjunct: exp.Expr) -> PlanNode:
        inner = conjunct.unnest()
        negated = isinstance(inner, exp.Not)
        if negated:
            inner = inner.this.unnest()
        if isinstance(inner, exp.In) and "query" in inner.args:
            return self._in(inner, negated)
        if isinstance(inner, exp.Exists):
            return self._exists(inner, negated)
        return self._scalar(conjunct)

    def mark(self, predicate: exp.Expression) -> tuple[SemiJoinNode, Scope, exp.Column]:
        """A MARK join giving `predicate`'s value, the scope with its column, and that column."""
        if isinstance(predicate, exp.Exists):
            right, correlated = self._right(predicate.this.unnest(), predicate, 0)
            node = self._join(right, "MARK", _conjunction(correlated), predicate)
        else:
            if isinstance(predicate.this.unnest(), exp.Tuple):  # Flink's planner cannot either
                raise UnsupportedFeatureError(
                    "an IN of several columns is only supported as a condition of WHERE joined by AND "
                    "(Flink: We now only support the count of one field)",
                    *position_of(predicate),
                )
            right, correlated, pairs = self._in_right(predicate)
            equal = exp.and_(*(exp.EQ(this=a, expression=b) for a, b in pairs))
            unknown = exp.paren(equal.copy()).is_(exp.null())
            node = self._join(
                right,
                "MARK",
                _conjunction([equal, *correlated]),
                predicate,
                _conjunction([unknown, *correlated]),
            )
        marker = node.columns[-1]
        entry = ScopeEntry(None, marker.name, marker.name, marker, hidden=True)
        return node, Scope([*self.scope.entries, entry]), exp.column(marker.name, quoted=True)

    def _in_right(
        self, predicate: exp.Expression
    ) -> tuple[_Right, list[exp.Expr], list[tuple[exp.Expr, exp.Expr]]]:
        """An IN's subquery as the right side, its correlated conditions, and the pairs of
        (tested expression, subquery column) it compares."""
        subquery = predicate.args["query"].unnest()
        tested = predicate.this.unnest()
        lefts = list(tested.expressions) if isinstance(tested, exp.Tuple) else [tested]
        right, correlated = self._right(subquery, predicate, len(lefts))
        pairs: list[tuple[exp.Expr, exp.Expr]] = [(a.copy(), _sub(f"$v{i}")) for i, a in enumerate(lefts)]
        return right, correlated, pairs

    def _in(self, predicate: exp.In, negated: bool) -> PlanNode:
        right, correlated, pairs = self._in_right(predicate)
        if negated:
            # null-aware: a NULL on either side makes NOT IN unknown, which excludes the row
            terms: list[exp.Expr] = [
                exp.or_(exp.EQ(this=a, expression=b), a.copy().is_(exp.null()), b.copy().is_(exp.null()))
                for a, b in pairs
            ]
        else:
            terms = [exp.EQ(this=a, expression=b) for a, b in pairs]
        return self._join(right, "ANTI" if negated else "SEMI", _conjunction(terms + correlated), predicate)

    def _exists(self, predicate: exp.Exists, negated: bool) -> PlanNode:
        right, correlated = self._right(predicate.this.unnest(), predicate, 0)
        return self._join(right, "ANTI" if negated else "SEMI", _conjunction(correlated), predicate)

    def _scalar(self, conjunct: exp.Expr) -> PlanNode:
        found = [n for n in conjunct.walk() if isinstance(n, exp.Expression) and is_subquery(n)]
        if len(found) != 1 or not isinstance(found[0], exp.Subquery):
            raise UnsupportedFeatureError(
                "a scalar subquery is only supported alone in a condition of WHERE joined by AND",
                *position_of(found[0]),
            )
        subquery = found[0]
        select = subquery.unnest()
        if not _single_row(select):
            raise UnsupportedFeatureError(
                "a scalar subquery is only supported as an aggregate without GROUP BY "
                "(e.g. (SELECT AVG(x) FROM t))",
                *position_of(subquery),
            )
        right, correlated = self._right(select, subquery, 1, scalar=True)
        if correlated and not _rejects_null(conjunct, subquery):
            # a key with no group makes the subquery NULL, which only a comparison rejects as
            # the semi join does (COUNT gives 0 there)
            raise UnsupportedFeatureError(
                "a correlated scalar subquery is only supported as an operand of a comparison, "
                "and not with COUNT",
                *position_of(subquery),
            )
        condition = conjunct.copy()
        path = [n for n in conjunct.walk()].index(subquery)
        target = list(condition.walk())[path]
        target.replace(_sub("$v0"))
        return self._join(right, "SEMI", _conjunction([condition, *correlated]), subquery)

    # --- the subquery's side ------------------------------------------------------------------

    def _right(
        self, subquery: exp.Expr, at: exp.Expression, value_count: int, scalar: bool = False
    ) -> tuple[_Right, list[exp.Expr]]:
        """The subquery planned as the join's right side, its value columns (the first
        `value_count` it selects) labelled `$v0`, `$v1`, ..., and its correlated conditions,
        which read the right side as `$sub.<label>`. A `scalar` aggregate correlated by
        equalities is grouped by the inner side of each."""
        correlated: list[exp.Expr] = []
        if isinstance(subquery, exp.Select) and subquery.args.get("where") is not None:
            subquery, correlated = self._decorrelated(subquery, value_count, scalar)
        node, scope = self.planner.query_plan(_expression(subquery))
        visible = scope.visible()
        values = [e for e in visible if not (correlated and e.name.startswith("$c"))]
        if value_count and len(values) != value_count:
            raise SqlValidationError(
                "Values passed to IN operator must have compatible types",
                *position_of(at),
                hint=f"The subquery gives {len(values)} columns where {value_count} are compared.",
            )
        wanted = [(f"$v{i}", e) for i, e in enumerate(values[:value_count])]
        wanted += [(e.name, e) for e in visible if correlated and e.name.startswith("$c")]
        return self._renamed(node, wanted), correlated

    def _decorrelated(
        self, select: exp.Select, value_count: int, scalar: bool
    ) -> tuple[exp.Select, list[exp.Expr]]:
        """`select` without the conditions of its WHERE that read the outer query, and those
        conditions; the inner columns they read become select items `$c0`, `$c1`, ..."""
        where = select.args["where"].this
        inner = self._inner_scope(select)
        conjuncts = list(where.flatten()) if isinstance(where, exp.And) else [where]
        correlated = [c for c in conjuncts if self._is_correlated(c, inner)]
        if not correlated:
            return select, []
        aggregated = any(isinstance(n, exp.AggFunc) for item in select.expressions for n in item.walk())
        grouped = scalar and aggregated and all(self._is_key_equality(c, inner) for c in correlated)
        if any(select.args.get(k) for k in ("group", "having", "distinct", "limit", "order")) or (
            aggregated and not grouped
        ):
            raise UnsupportedFeatureError(
                "a correlated subquery with GROUP BY, an aggregate, DISTINCT, LIMIT or ORDER BY "
                "is not supported",
                *position_of(select),
            )
        rewritten: list[exp.Expr] = []
        items: list[exp.Expr] = []
        for conjunct in correlated:
            copy = conjunct.copy()
            for column in list(copy.find_all(exp.Column)):
                if _resolves(column, inner):
                    name = f"$c{len(items)}"
                    items.append(exp.alias_(column.copy(), name, quoted=True))
                    column.replace(exp.column(name, table=SUB, quoted=True))
            rewritten.append(copy)
        out = select.copy()
        out.set("where", None)
        uncorrelated = _conjunction([c.copy() for c in conjuncts if c not in correlated])
        if uncorrelated is not None:
            out = out.where(uncorrelated, copy=False)
        values = [e.copy() for e in select.expressions[:value_count]] if value_count else []
        out.set("expressions", [*values, *items])
        if grouped:
            out.set("group", exp.Group(expressions=[item.this.copy() for item in items]))
        if not out.expressions:
            out.set("expressions", [exp.alias_(exp.true(), "$c", quoted=True)])
        return out, rewritten

    def _is_key_equality(self, conjunct: exp.Expr, inner: Scope) -> bool:
        """`inner_expression = outer_expression` (either way round)."""
        if not isinstance(conjunct, exp.EQ):
            return False
        sides = [list(side.find_all(exp.Column)) for side in (conjunct.this, conjunct.expression)]
        reads_inner = [bool(cols) and all(_resolves(c, inner) for c in cols) for cols in sides]
        reads_outer = [not any(_resolves(c, inner) for c in cols) for cols in sides]
        return (reads_inner[0] and reads_outer[1]) or (reads_inner[1] and reads_outer[0])

    def _inner_scope(self, select: exp.Select) -> Scope:
        source = select.args.get("from_")
        if source is None:
            raise UnsupportedFeatureError("a subquery without FROM is not supported", *position_of(select))
        node, scope, _ = self.planner.relation(source.this)
        for join in select.args.get("joins") or []:
            node, scope = JoinPlanner(self.planner).plan(node, scope, join)
        return scope

    def _is_correlated(self, conjunct: exp.Expr, inner: Scope) -> bool:
        outer = [
            c
            for c in conjunct.find_all(exp.Column)
            if not _resolves(c, inner) and _resolves(c, self.scope) and not has_subquery(conjunct)
        ]
        return bool(outer)

    def _renamed(self, node: PlanNode, wanted: list[tuple[str, ScopeEntry]]) -> _Right:
        """The right side's columns the condition reads (label, entry), named apart from the
        left's; a constant column when there are none (EXISTS without correlation)."""
        taken = {c.name.lower() for c in self.left.columns}
        columns: list[Column] = []
        projections: list[exp.Expression] = []
        labels: list[str] = []
        for label, entry in wanted:
            name = unique_name(label, taken)
            taken.add(name.lower())
            columns.append(Column(name, entry.column.flink_type, entry.column.duck_type))
            projections.append(render.column(entry.internal))
            labels.append(label)
        if not columns:
            columns.append(Column(unique_name("$c", taken), "BOOLEAN", "BOOLEAN"))
            projections.append(exp.true())
            labels.append("$c")
        return _Right(CalcNode(columns=columns, input=node, projections=projections), labels)

    # --- the join -----------------------------------------------------------------------------

    def _join(
        self,
        right: _Right,
        kind: str,
        condition: exp.Expr | None,
        at: exp.Expression,
        null_condition: exp.Expr | None = None,
    ) -> SemiJoinNode:
        columns = right.node.columns
        entries = [ScopeEntry(SUB, label, c.name, c) for label, c in zip(right.labels, columns, strict=True)]
        joined = Scope(self.scope.entries + entries)
        both = PlanNode(columns=list(self.left.columns) + list(columns))
        bound, bound_null = (
            self._bound(c, joined, both, at) if c is not None else None for c in (condition, null_condition)
        )
        output = list(self.left.columns)
        if kind == "MARK":
            taken = {c.name.lower() for c in output}
            output.append(Column(unique_name("$mark", taken), "BOOLEAN", "BOOLEAN"))
        return SemiJoinNode(
            columns=output,
            left=self.left,
            right=right.node,
            kind=kind,
            condition=bound,
            null_condition=bound_null,
        )

    def _bound(
        self, condition: exp.Expr, joined: Scope, both: PlanNode, at: exp.Expression
    ) -> exp.Expression:
        """`condition` bound over both sides' columns, its types checked."""
        bound = self.planner.bind(_expression(condition), joined)
        try:
            self.planner.infer_types(both, [], bound)
        except SqlValidationError as error:
            raise SqlValidationError(str(error.message), *position_of(at)) from None
        return bound


def _expression(node: exp.Expr) -> exp.Expression:
    """`node` as the Expression it always is here (sqlglot types tree walks as the base Expr)."""
    assert isinstance(node, exp.Expression)
    return node


def _sub(name: str) -> exp.Column:
    return exp.column(name, table=SUB, quoted=True)


def _resolves(column: exp.Column, scope: Scope) -> bool:
    try:
        scope.resolve_entry(column)
    except SqlValidationError:
        return False
    return True


def _rejects_null(conjunct: exp.Expr, subquery: exp.Expr) -> bool:
    """Is `conjunct` a comparison with `subquery` as an operand, and no COUNT in it?"""
    comparison = conjunct.unnest()
    if not isinstance(comparison, exp.EQ | exp.NEQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
        return False
    operand = comparison.this is subquery or comparison.expression is subquery
    return operand and not any(isinstance(n, exp.Count) for n in subquery.walk())


def _single_row(select: exp.Expr) -> bool:
    """An aggregate query without GROUP BY: exactly one row, whatever its input."""
    return (
        isinstance(select, exp.Select)
        and not select.args.get("group")
        and len(select.expressions) == 1
        and any(isinstance(n, exp.AggFunc) for n in select.expressions[0].walk())
    )


def _conjunction(conjuncts: list[exp.Expr]) -> exp.Expr | None:
    """`a AND b AND ...` (an OR among them in parentheses), or None for no conjunct."""
    return exp.and_(*conjuncts, copy=False) if conjuncts else None
