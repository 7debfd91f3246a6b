"""Flink's MATCH_RECOGNIZE clause, parsed into trees (sqlglot keeps the pattern as text and has no
`WITHIN`).

`MATCH_RECOGNIZE (PARTITION BY ... ORDER BY ... MEASURES ... ONE ROW PER MATCH AFTER MATCH SKIP ...
PATTERN (A B+? C{2,3}) WITHIN INTERVAL '1' HOUR DEFINE A AS ...) [AS alias]`: the pattern becomes a
`MatchPattern` of `PatternVariable`s (name, min, max, reluctant); grouping, alternation, PERMUTE
and exclusion `{- -}` are kept as `PatternUnsupported` so the planner can refuse them with Flink's
message and their position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

E = TypeVar("E", bound=exp.Expression)

if TYPE_CHECKING:
    from sqlglot.generator import Generator

    from clickstream.sql.dialect import FlinkParser


class MatchPattern(exp.Expression):
    """The PATTERN's variables in order (concatenation; Flink has no other operator)."""

    arg_types = {"expressions": True}


class PatternVariable(exp.Expression):
    """`A`, `A*`, `A+?`, `A{2,}`: min and max occurrences (max -1: unbounded), reluctant or greedy."""

    arg_types = {"this": True, "min": True, "max": True, "reluctant": False}

    @property
    def min(self) -> int:
        return int(self.args["min"])

    @property
    def max(self) -> int:
        return int(self.args["max"])

    @property
    def reluctant(self) -> bool:
        return bool(self.args.get("reluctant"))


class PatternUnsupported(exp.Expression):
    """A pattern form Flink's CEP cannot run (group, alternation, PERMUTE, exclusion)."""

    arg_types = {"this": True}


class MatchSkip(exp.Expression):
    """`AFTER MATCH SKIP PAST LAST ROW | TO NEXT ROW | TO FIRST v | TO LAST v`."""

    arg_types = {"this": True, "target": False}


class MatchRecognizeClause(exp.Expression):
    """The whole clause; `rows` is ONE ROW PER MATCH or ALL ROWS PER MATCH as written."""

    arg_types = {
        "partition_by": False,
        "order": False,
        "measures": False,
        "rows": False,
        "after": False,
        "pattern": False,
        "within": False,
        "define": False,
        "alias": False,
    }


def parse_match_recognize(self: FlinkParser) -> MatchRecognizeClause | None:
    """The clause after FROM's relation (sqlglot's own parser, extended with WITHIN and a pattern tree)."""
    if not self._match(TokenType.MATCH_RECOGNIZE):
        return None
    start = self._prev
    self._match_l_paren()
    partition = self._parse_partition_by()
    order = self._parse_order()
    measures = self._parse_csv(self._parse_expression) if self._match_text_seq("MEASURES") else None
    rows = _parse_rows(self)
    after = _parse_skip(self)
    pattern = _parse_pattern(self) if self._match_text_seq("PATTERN") else None
    within = self._parse_interval() if self._match_text_seq("WITHIN") else None
    define = self._parse_csv(self._parse_name_as_expression) if self._match_text_seq("DEFINE") else None
    self._match_r_paren()
    clause = MatchRecognizeClause(
        partition_by=partition,
        order=order,
        measures=measures,
        rows=rows,
        after=after,
        pattern=pattern,
        within=within,
        define=define,
        alias=self._parse_table_alias(),
    )
    _mark(clause, start)
    return clause


def _parse_rows(self: FlinkParser) -> exp.Var | None:
    token = self._curr
    if self._match_text_seq("ONE", "ROW", "PER", "MATCH"):
        return _mark(exp.var("ONE ROW PER MATCH"), token)
    if self._match_text_seq("ALL", "ROWS", "PER", "MATCH"):
        return _mark(exp.var("ALL ROWS PER MATCH"), token)
    return None


def _parse_skip(self: FlinkParser) -> MatchSkip | None:
    token = self._curr
    if not self._match_text_seq("AFTER", "MATCH", "SKIP"):
        return None
    if self._match_text_seq("PAST", "LAST", "ROW"):
        return _mark(MatchSkip(this=exp.var("PAST LAST ROW")), token)
    if self._match_text_seq("TO", "NEXT", "ROW"):
        return _mark(MatchSkip(this=exp.var("TO NEXT ROW")), token)
    for direction in ("FIRST", "LAST"):
        if self._match_text_seq("TO", direction):
            target = self._advance_any()
            if target is None:
                self.raise_error(f"Expecting a pattern variable after AFTER MATCH SKIP TO {direction}")
                return None
            return _mark(MatchSkip(this=exp.var(f"TO {direction}"), target=exp.var(target.text)), token)
    self.raise_error("Expecting PAST LAST ROW, TO NEXT ROW, TO FIRST <variable> or TO LAST <variable>")
    return None


def _parse_pattern(self: FlinkParser) -> MatchPattern:
    """`( term term ... )`: variables with their quantifiers; other forms as PatternUnsupported."""
    self._match_l_paren()
    items: list[exp.Expression] = []
    while self._curr and not self._match(TokenType.R_PAREN):
        token = self._curr
        if token.token_type == TokenType.L_PAREN:
            _skip_group(self)
            _skip_quantifier(self)
            items.append(_mark(PatternUnsupported(this=exp.var("group")), token))
        elif token.token_type == TokenType.PIPE:
            self._advance()
            items.append(_mark(PatternUnsupported(this=exp.var("alternation")), token))
        elif token.text.upper() == "PERMUTE":
            self._advance()
            _skip_group(self)
            items.append(_mark(PatternUnsupported(this=exp.var("PERMUTE")), token))
        elif token.token_type == TokenType.L_BRACE:
            _skip_group(self)  # `{- A -}`
            _skip_quantifier(self)
            items.append(_mark(PatternUnsupported(this=exp.var("exclusion")), token))
        else:
            self._advance()
            low, high, reluctant = _parse_quantifier(self)
            variable = PatternVariable(
                this=exp.to_identifier(token.text), min=low, max=high, reluctant=reluctant
            )
            items.append(_mark(variable, token))
    return MatchPattern(expressions=items)


def _parse_quantifier(self: FlinkParser) -> tuple[int, int, bool]:
    """`*`, `+`, `?`, `{n}`, `{n,}`, `{,m}`, `{n,m}` after a variable, then an optional `?` that
    makes it reluctant; (1, 1, False) when there is none."""
    if self._match(TokenType.DQMARK):  # `??` is one token: a reluctant `?`
        return 0, 1, True
    if self._match(TokenType.STAR):
        low, high = 0, -1
    elif self._match(TokenType.PLUS):
        low, high = 1, -1
    elif self._match(TokenType.PLACEHOLDER):
        low, high = 0, 1
    elif self._match(TokenType.L_BRACE):
        low = int(self._prev.text) if self._match(TokenType.NUMBER) else 0
        high = low
        if self._match(TokenType.COMMA):
            high = int(self._prev.text) if self._match(TokenType.NUMBER) else -1
        if not self._match(TokenType.R_BRACE):
            self.raise_error("Expecting } in a pattern quantifier")
    else:
        return 1, 1, False
    return low, high, bool(self._match(TokenType.PLACEHOLDER))


def _skip_group(self: FlinkParser) -> None:
    """Past a bracketed part of the pattern (`( ... )` or `{- ... -}`), nested brackets included."""
    depth = 0
    while self._curr:
        kind = self._curr.token_type
        depth += kind in (TokenType.L_PAREN, TokenType.L_BRACE)
        depth -= kind in (TokenType.R_PAREN, TokenType.R_BRACE)
        self._advance()
        if depth <= 0:
            return


def _skip_quantifier(self: FlinkParser) -> None:
    """Past the quantifier after a refused group, if any (`{-` opens an exclusion instead)."""
    current, following = self._curr, self._next
    if current is None:
        return
    quantifiers = (TokenType.STAR, TokenType.PLUS, TokenType.PLACEHOLDER, TokenType.DQMARK)
    braced = current.token_type == TokenType.L_BRACE and following is not None and following.text != "-"
    if current.token_type in quantifiers or braced:
        _parse_quantifier(self)


def _mark(node: E, token: Token) -> E:
    """`node` positioned at `token` (for errors: `statements.position_of` reads it)."""
    node.meta.update(line=token.line, col=token.col, start=token.start, end=token.end)
    return node


def match_recognize_sql(self: Generator, clause: MatchRecognizeClause) -> str:
    """Flink SQL text of the clause (SHOW CREATE VIEW of a view holding one)."""
    parts = []
    partition = clause.args.get("partition_by")
    if partition:
        parts.append("PARTITION BY " + ", ".join(self.sql(p) for p in partition))
    if clause.args.get("order"):
        parts.append(self.sql(clause, "order").strip())
    if clause.args.get("measures"):
        parts.append("MEASURES " + ", ".join(self.sql(m) for m in clause.args["measures"]))
    if clause.args.get("rows"):
        parts.append(clause.args["rows"].name)
    after = clause.args.get("after")
    if after is not None:
        target = after.args.get("target")
        parts.append(
            f"AFTER MATCH SKIP {after.this.name}" + (f" {target.name}" if target is not None else "")
        )
    pattern = clause.args.get("pattern")
    if pattern is not None:
        parts.append(f"PATTERN ({' '.join(_variable_sql(v) for v in pattern.expressions)})")
    if clause.args.get("within"):
        parts.append(f"WITHIN {self.sql(clause, 'within')}")
    if clause.args.get("define"):
        parts.append(
            "DEFINE "
            + ", ".join(f"{self.sql(d, 'alias')} AS {self.sql(d, 'this')}" for d in clause.args["define"])
        )
    alias = self.sql(clause, "alias")
    return f" MATCH_RECOGNIZE ({' '.join(parts)})" + (f" AS {alias}" if alias else "")


def _variable_sql(variable: exp.Expression) -> str:
    if not isinstance(variable, PatternVariable):
        return variable.this.name
    low, high = variable.min, variable.max
    quantifier = {(1, 1): "", (0, -1): "*", (1, -1): "+", (0, 1): "?"}.get((low, high))
    if quantifier is None:
        quantifier = f"{{{low},{'' if high < 0 else high}}}" if low != high else f"{{{low}}}"
    return variable.name + quantifier + ("?" if variable.reluctant else "")
