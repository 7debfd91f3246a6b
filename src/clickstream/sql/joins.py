"""Reading a join's ON condition: equalities between the two sides (the join keys), bounds on the
difference of their event times (an interval join), and whatever else remains."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from clickstream.errors import SqlValidationError
from clickstream.sql.scope import Scope
from clickstream.sql.windowing import interval_ms

NO_BOUND_LOW = -(2**62)
NO_BOUND_HIGH = 2**62


@dataclass
class JoinCondition:
    left_keys: list[str] = field(default_factory=list)  # internal column names, left side
    right_keys: list[str] = field(default_factory=list)
    # lower <= left.time - right.time <= upper, in milliseconds
    lower_ms: int = NO_BOUND_LOW
    upper_ms: int = NO_BOUND_HIGH
    left_time: str | None = None
    right_time: str | None = None
    rest: list[exp.Expression] = field(default_factory=list)

    @property
    def is_interval(self) -> bool:
        return self.left_time is not None and (self.lower_ms > NO_BOUND_LOW and self.upper_ms < NO_BOUND_HIGH)


def analyze(
    on: exp.Expression, left: Scope, right: Scope, left_rowtime: str | None, right_rowtime: str | None
) -> JoinCondition:
    condition = JoinCondition()
    conjuncts = list(on.flatten()) if isinstance(on, exp.And) else [on]
    for conjunct in conjuncts:
        if isinstance(conjunct, exp.Between):
            low = exp.GTE(this=conjunct.this.copy(), expression=conjunct.args["low"].copy())
            high = exp.LTE(this=conjunct.this.copy(), expression=conjunct.args["high"].copy())
            if _time_bound(low, condition, left, right, left_rowtime, right_rowtime) and (
                _time_bound(high, condition, left, right, left_rowtime, right_rowtime)
            ):
                continue
        elif _equality(conjunct, condition, left, right) or _time_bound(
            conjunct, condition, left, right, left_rowtime, right_rowtime
        ):
            continue
        condition.rest.append(conjunct)
    return condition


def _side(column: exp.Expression, left: Scope, right: Scope) -> tuple[str, str] | None:
    """('left' | 'right', internal name) of a column reference that resolves on one side."""
    if not isinstance(column, exp.Column):
        return None
    for name, scope in (("left", left), ("right", right)):
        try:
            return name, scope.resolve_entry(column).internal
        except SqlValidationError:
            continue
    return None


def _equality(node: exp.Expression, condition: JoinCondition, left: Scope, right: Scope) -> bool:
    if not isinstance(node, exp.EQ):
        return False
    a, b = _side(node.this, left, right), _side(node.expression, left, right)
    if a is None or b is None or a[0] == b[0]:
        return False
    if a[0] == "right":
        a, b = b, a
    condition.left_keys.append(a[1])
    condition.right_keys.append(b[1])
    return True


def _time_term(node: exp.Expression, left: Scope, right: Scope) -> tuple[str, str, int] | None:
    """`t`, `t + INTERVAL ...`, `t - INTERVAL ...` -> (side, column, offset ms)."""
    offset = 0
    if isinstance(node, exp.Add | exp.Sub) and isinstance(node.expression, exp.Interval):
        offset = interval_ms(node.expression, allow_zero=True) * (1 if isinstance(node, exp.Add) else -1)
        node = node.this
    side = _side(node, left, right)
    return None if side is None else (side[0], side[1], offset)


def _time_bound(
    node: exp.Expression,
    condition: JoinCondition,
    left: Scope,
    right: Scope,
    left_rowtime: str | None,
    right_rowtime: str | None,
) -> bool:
    if not isinstance(node, exp.GT | exp.GTE | exp.LT | exp.LTE):
        return False
    a = _time_term(node.this, left, right)
    b = _time_term(node.expression, left, right)
    if a is None or b is None or a[0] == b[0]:
        return False
    kind = type(node)
    if a[0] == "right":  # write it as left op right
        a, b = b, a
        kind = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE}[kind]
    if a[1] != left_rowtime or b[1] != right_rowtime:
        return False
    # l + a_off  op  r + b_off   <=>   l - r  op  b_off - a_off
    bound = b[2] - a[2]
    condition.left_time, condition.right_time = a[1], b[1]
    if kind is exp.GTE:
        condition.lower_ms = max(condition.lower_ms, bound)
    elif kind is exp.GT:
        condition.lower_ms = max(condition.lower_ms, bound + 1)
    elif kind is exp.LTE:
        condition.upper_ms = min(condition.upper_ms, bound)
    else:
        condition.upper_ms = min(condition.upper_ms, bound - 1)
    return True


def conditions_from_where(query: exp.Select) -> None:
    """Give each comma join (`FROM a, b WHERE a.k = b.k AND ...`, as Flink's interval join examples
    write it), as its ON condition, the WHERE conjuncts not yet taken that the relations joined so
    far can compute; the others stay in WHERE. In place, and idempotent: a join with an ON is left
    alone. For an inner join, a condition in ON or in WHERE selects the same rows. A conjunct with
    an unqualified column or a subquery stays where it is (the side it belongs to is not known
    here)."""
    where = query.args.get("where")
    joins = query.args.get("joins") or []
    source = query.args.get("from_") or query.args.get("from")
    if where is None or source is None or not any(_is_comma_join(j) for j in joins):
        return
    seen = {_relation_name(source.this)} - _UNPLACED
    remaining = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    for join in joins:
        seen |= {_relation_name(join.this)} - _UNPLACED
        if not _is_comma_join(join):
            continue
        taken = [c for c in remaining if _qualifiers(c) <= seen]
        if taken:
            join.set("on", exp.and_(*(c.copy() for c in taken)))
            remaining = [c for c in remaining if all(c is not t for t in taken)]
    query.set("where", exp.Where(this=exp.and_(*remaining)) if remaining else None)


def _is_comma_join(join: exp.Join) -> bool:
    args = join.args
    plain = not (args.get("on") or args.get("using") or args.get("kind") or args.get("side"))
    return plain and isinstance(join.this, exp.Table | exp.Subquery) and bool(join.this.alias_or_name)


def _relation_name(relation: exp.Expression) -> str:
    return relation.alias_or_name.lower()


_UNPLACED = frozenset({""})  # never a subset of the relations seen: the conjunct stays in WHERE


def _qualifiers(conjunct: exp.Expr) -> frozenset[str]:
    """The relations a conjunct's columns name; `_UNPLACED` when one is unqualified or it has a
    query."""
    columns = list(conjunct.find_all(exp.Column))
    if conjunct.find(exp.Select) is not None or not columns or any(not c.table for c in columns):
        return _UNPLACED
    return frozenset(c.table.lower() for c in columns)
