"""GROUPING SETS, ROLLUP and CUBE, planned as Flink plans them: an Expand before the aggregate.

`GROUP BY a, ROLLUP (b, c)` is the list of grouping sets `(a, b, c), (a, b), (a)`: the cross
product of its items, each item a list of sets (a plain key is one set of one key; `ROLLUP` the
prefixes of its keys; `CUBE` every subset; `GROUPING SETS` the concatenation of its elements,
duplicates kept, as Calcite keeps them). The Expand sends each input row once per set, with the
keys outside that set NULL and a column `$e` holding the set's number; the aggregate then groups
by every key and `$e`, so a rolled-up NULL never meets a real NULL key. `GROUPING(a, b)`,
`GROUPING_ID(...)` and `GROUP_ID()` become a CASE over `$e` in the Calc after the aggregate.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from itertools import combinations, product

from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.schema import Column
from clickstream.sql.plan import ExpandNode, PlanNode
from clickstream.sql.statements import position_of

GROUPING_ID = "$e"  # the Expand's set number (a name users' columns cannot take: see plan_name)


@dataclass
class GroupingSets:
    """The grouping keys (each once, in order of appearance) and the sets, as key indices."""

    keys: list[exp.Expression]
    sets: list[tuple[int, ...]]

    @property
    def trivial(self) -> bool:
        """One set of every key: a plain GROUP BY (GROUPING() is then 0)."""
        return len(self.sets) == 1 and len(self.sets[0]) == len(self.keys)

    def grouping_value(self, set_index: int, arguments: list[int]) -> int:
        """GROUPING(args) in set `set_index`: a bit per argument, 1 where it is rolled up, the
        first argument the most significant."""
        value = 0
        for key in arguments:
            value = value * 2 + (key not in self.sets[set_index])
        return value

    def group_id(self, set_index: int) -> int:
        """GROUP_ID(): how many earlier sets are the same set (duplicates count 1, 2, ...)."""
        this = set(self.sets[set_index])
        return sum(set(s) == this for s in self.sets[:set_index])


def check_group_clause(group: exp.Group | None) -> None:
    """GROUP BY's clauses other than its list (MySQL's `WITH ROLLUP`, `GROUP BY ALL`) are refused
    rather than ignored."""
    if group is None:
        return
    for name, value in group.args.items():
        if name != "expressions" and value:
            raise UnsupportedFeatureError(
                f"GROUP BY ... {name.upper().replace('_', ' ')} is not supported", *position_of(group)
            )


def grouping_sets(
    items: list[exp.Expression], identity: Callable[[exp.Expression], Hashable]
) -> GroupingSets:
    """The grouping sets of GROUP BY's items (window bounds taken out); `identity` tells which
    expressions are the same key (their bound trees)."""
    keys: list[exp.Expression] = []
    seen: dict[Hashable, int] = {}

    def index(expression: exp.Expression) -> int:
        ident = identity(expression)
        if ident not in seen:
            seen[ident] = len(keys)
            keys.append(expression)
        return seen[ident]

    def sets_of(item: exp.Expression) -> list[tuple[int, ...]]:
        if isinstance(item, exp.GroupingSets):
            return [s for element in item.expressions for s in sets_of(element)]
        if isinstance(item, exp.Rollup):
            columns = [index(e) for e in item.expressions]
            return [_unique(columns[:n]) for n in range(len(columns), -1, -1)]
        if isinstance(item, exp.Cube):
            columns = [index(e) for e in item.expressions]
            return [
                _unique(list(chosen))
                for n in range(len(columns), -1, -1)
                for chosen in combinations(columns, n)
            ]
        if isinstance(item, exp.Tuple):
            return [_unique([index(e) for e in item.expressions])]
        if isinstance(item, exp.Paren) and not isinstance(item.this, exp.Tuple | exp.Paren):
            return [(index(item.this),)]
        return [(index(item),)]

    sets: list[tuple[int, ...]] = [()]
    for item in items:
        sets = [_unique(list(a) + list(b)) for a, b in product(sets, sets_of(item))]
    return GroupingSets(keys, sets)


def check_supported(spec: GroupingSets, window_kind: str | None, legacy: bool, where: exp.Expression) -> None:
    """Refuses, by name, the grouping sets Flink cannot run (its message) or we do not."""
    if spec.trivial:
        return
    if legacy:  # Flink 2.3 fails generating code for `$TUMBLE` under an Expand
        raise UnsupportedFeatureError(
            "GROUPING SETS, ROLLUP and CUBE with a legacy group window (GROUP BY TUMBLE(...)) are "
            "not supported",
            *position_of(where),
            hint="Use a window table function: GROUP BY window_start, window_end, ROLLUP (...).",
        )
    if window_kind == "SESSION":  # Flink assigns the sessions before the Expand, over all rows
        raise UnsupportedFeatureError(
            "GROUPING SETS, ROLLUP and CUBE in a SESSION window aggregation are not supported",
            *position_of(where),
        )
    # Calcite plans a repeated set as a second aggregate, over the sets seen twice (a third over
    # those seen three times, ...); one that is a single set smaller than all the keys is neither
    # a plain GROUP BY nor an Expand, and Flink's planner gives up on it.
    everything = set(range(len(spec.keys)))
    counts: dict[frozenset[int], int] = {}
    for keys in spec.sets:
        counts[frozenset(keys)] = counts.get(frozenset(keys), 0) + 1
    for level in range(1, max(counts.values())):
        repeated = [keys for keys, count in counts.items() if count > level]
        if len(repeated) == 1 and set(repeated[0]) != everything:
            raise UnsupportedFeatureError(
                "GROUPING SETS are currently not supported. (Flink's planner cannot run a set "
                "repeated alone that lacks some of the grouping keys)",
                *position_of(where),
            )


def _unique(indices: list[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(indices))


def grouping_call(node: exp.Expression) -> bool:
    """GROUPING(...), GROUPING_ID(...) or GROUP_ID()."""
    return isinstance(node, exp.Grouping | exp.GroupingId) or (
        isinstance(node, exp.Anonymous) and node.name.upper() == "GROUP_ID"
    )


def replace_grouping_calls(
    query: exp.Select,
    spec: GroupingSets,
    key_of: Callable[[exp.Expression], int | None],
    set_number: exp.Expression,
) -> exp.Select:
    """A copy of `query` whose SELECT list and HAVING read GROUPING(...) from `set_number` (the
    aggregate's `$e` column), or as 0 where there is no Expand. `key_of` gives an argument's key
    index, None if it is not a grouping key."""
    query = query.copy()

    def replace(node: exp.Expression) -> exp.Expression:
        if not grouping_call(node):
            return node
        if isinstance(node, exp.Anonymous):  # GROUP_ID()
            if node.expressions:
                raise SqlValidationError("GROUP_ID() takes no arguments", *position_of(node))
            values = [spec.group_id(i) for i in range(len(spec.sets))]
        else:
            arguments = []
            for argument in node.expressions:
                key = key_of(argument)
                if key is None:
                    raise SqlValidationError(
                        "Argument to GROUPING operator must be a grouped expression",
                        *position_of(argument),
                    )
                arguments.append(key)
            if not arguments:
                name = "GROUPING_ID" if isinstance(node, exp.GroupingId) else "GROUPING"
                raise SqlValidationError(f"{name} needs an argument", *position_of(node))
            values = [spec.grouping_value(i, arguments) for i in range(len(spec.sets))]
        return _case(values, set_number)

    query.set("expressions", [e.transform(replace, copy=False) for e in query.expressions])
    having = query.args.get("having")
    if having is not None:
        query.set("having", having.transform(replace, copy=False))
    return query


def _case(values: list[int], set_number: exp.Expression) -> exp.Expression:
    """BIGINT, as Calcite types GROUPING: a constant when every set gives the same value."""
    if len(set(values)) == 1:
        return exp.cast(exp.Literal.number(values[0]), "BIGINT")
    case = exp.Case(
        this=set_number.copy(),
        ifs=[exp.If(this=exp.Literal.number(i), true=exp.Literal.number(v)) for i, v in enumerate(values)],
    )
    return exp.cast(case, "BIGINT")


def expand_node(input: PlanNode, spec: GroupingSets, key_names: list[str], set_column: str) -> ExpandNode:
    """The Expand over the Calc that computed the keys (named `key_names`, in `spec.keys` order)."""
    nulled = [[name for i, name in enumerate(key_names) if i not in kept] for kept in spec.sets]
    number = Column(set_column, "INT", "INTEGER", nullable=False)
    keys = set(key_names)
    columns = [replace(c, nullable=True) if c.name in keys else c for c in input.columns]
    return ExpandNode(columns=columns + [number], input=input, nulled=nulled, set_column=set_column)
