"""Name resolution: which column a (possibly qualified) name in a query refers to."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from sqlglot import exp

from clickstream.errors import SqlValidationError
from clickstream.schema import Column
from clickstream.sql.statements import position_of


@dataclass
class ScopeEntry:
    qualifier: str | None  # table name or alias that may prefix the column
    name: str  # the name a query uses
    internal: str  # column name in the plan node's output
    column: Column
    hidden: bool = False  # not part of `SELECT *` (e.g. window_time of a TVF is visible)


@dataclass
class Scope:
    entries: list[ScopeEntry] = field(default_factory=list)

    def resolve_entry(self, node: exp.Column) -> ScopeEntry:
        name = node.name.lower()
        qualifier = node.table.lower() if node.table else None
        matches = [
            e
            for e in self.entries
            if e.name.lower() == name and (qualifier is None or (e.qualifier or "").lower() == qualifier)
        ]
        if len(matches) == 1:
            return matches[0]
        line, col = position_of(node)
        shown = f"{node.table}.{node.name}" if node.table else node.name
        if not matches:
            raise SqlValidationError(
                f"Column '{shown}' not found in any table", line, col, hint=self._hint(node.name)
            )
        raise SqlValidationError(
            f"Column '{shown}' is ambiguous", line, col, hint="Qualify it with a table name or alias."
        )

    def find(self, node: exp.Column) -> ScopeEntry | None:
        """The entry of a plain column reference; None when `node` names no column (it may be a
        field of a ROW column, `r.x`, which the translator reads)."""
        try:
            return self.resolve_entry(node)
        except SqlValidationError:
            return None

    def resolve(self, node: exp.Column) -> exp.Expression:
        return exp.column(self.resolve_entry(node).internal, quoted=True)

    def _hint(self, name: str) -> str:
        shown = [e for e in self.entries if not e.hidden]
        # qualified only where several tables are in scope: one table's name adds nothing
        several = len({e.qualifier for e in shown}) > 1
        names = [f"{e.qualifier}.{e.name}" if several and e.qualifier else e.name for e in shown]
        close = difflib.get_close_matches(name, [e.name for e in self.entries], n=1)
        if close:
            return f"Did you mean '{close[0]}'? Available columns: {', '.join(names)}"
        return f"Available columns: {', '.join(names)}"

    def visible(self, qualifier: str | None = None) -> list[ScopeEntry]:
        return [
            e
            for e in self.entries
            if not e.hidden and (qualifier is None or (e.qualifier or "").lower() == qualifier.lower())
        ]

    def requalified(self, qualifier: str) -> Scope:
        return Scope([ScopeEntry(qualifier, e.name, e.internal, e.column, e.hidden) for e in self.entries])


def unique_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted0`, `wanted1`, ... (Flink's renaming) if already taken."""
    if wanted.lower() not in taken:
        return wanted
    i = 0
    while f"{wanted}{i}".lower() in taken:
        i += 1
    return f"{wanted}{i}"
