"""The Flink SQL dialect for sqlglot: what Flink's parser accepts beyond sqlglot's defaults.

Table-driven like sqlglot's own dialects: keywords, constraint parsers and function parsers are
rebuilt from the parent's tables. Statements sqlglot has no grammar for (SET, SHOW, DESCRIBE,
EXPLAIN, EXECUTE STATEMENT SET) are recognised earlier, in `statements.py`.
"""

from __future__ import annotations

from typing import cast

from sqlglot import exp, generator, parser, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.helper import seq_get
from sqlglot.tokens import Token, TokenType

from clickstream.sql.expressions import (
    Descriptor,
    JsonCall,
    MapConstructor,
    MetadataColumnConstraint,
    TableArg,
    WindowTvf,
)
from clickstream.sql.match_syntax import MatchRecognizeClause, match_recognize_sql, parse_match_recognize
from clickstream.sql.reserved_words import RESERVED_WORDS

WINDOW_TVFS = ("TUMBLE", "HOP", "CUMULATE", "SESSION")
# CREATE TABLE ... LIKE source (<strategy> <feature>, ...)
LIKE_STRATEGIES = ("INCLUDING", "EXCLUDING", "OVERWRITING")
LIKE_FEATURES = ("ALL", "CONSTRAINTS", "GENERATED", "METADATA", "OPTIONS", "PARTITIONS", "WATERMARKS")


def _parse_window_function(name: str):
    """TUMBLE(...) is a window TVF when its first argument is `TABLE t`, else a legacy group window."""

    def parse(self: FlinkParser) -> exp.Expression:
        if not self._match(TokenType.TABLE):
            args = self._parse_csv(self._parse_lambda)
            return exp.Anonymous(this=name, expressions=args)
        table = TableArg(this=self._parse_table_parts())
        if self._match(TokenType.PARTITION_BY):
            # SESSION(TABLE t PARTITION BY k, ...) or PARTITION BY (k1, k2): sessions per key
            keys = (
                self._parse_wrapped_csv(self._parse_column)
                if self._match(TokenType.L_PAREN, advance=False)
                else [self._parse_column()]
            )
            table.set("partition_by", keys)
        args: list[exp.Expression] = [table]
        while self._match(TokenType.COMMA):
            args.append(self._parse_window_argument())
        return WindowTvf(this=exp.var(name), expressions=args)

    return parse


# The behaviors a JSON function's `... ON EMPTY` / `... ON ERROR` / `... ON NULL` clause may name.
_JSON_BEHAVIORS = (
    ("EMPTY", "ARRAY"),
    ("EMPTY", "OBJECT"),
    ("NULL",),
    ("ERROR",),
    ("TRUE",),
    ("FALSE",),
    ("UNKNOWN",),
    ("ABSENT",),
)


def _parse_json_call(name: str):
    """JSON_VALUE / JSON_QUERY / JSON_EXISTS / JSON_ARRAY: arguments, then Flink's clauses in any
    order (Calcite fixes the order; a clause out of place is accepted here, which is harmless)."""

    def parse(self: FlinkParser) -> exp.Expression:
        name_token = self._tokens[self._index - 2]  # before the '(' just read: errors point here
        args: list[exp.Expression] = []
        if not self._match(TokenType.R_PAREN, advance=False):
            args = self._parse_csv(self._parse_lambda)  # type: ignore[arg-type]  # sqlglot: Expr vs Expression
        call = JsonCall(this=exp.var(name), expressions=args)
        call.meta.update(line=name_token.line, col=name_token.col, start=name_token.start, end=name_token.end)
        while self._curr and not self._match(TokenType.R_PAREN, advance=False):
            if self._match(TokenType.RETURNING):
                call.set("returning", self._parse_types())
            elif self._match_text_seq("WITHOUT"):
                self._match_text_seq("ARRAY")
                self._match_text_seq("WRAPPER")
                call.set("wrapper", exp.var("WITHOUT"))
            elif self._match_text_seq("WITH"):
                kind = "CONDITIONAL" if self._match_text_seq("CONDITIONAL") else "UNCONDITIONAL"
                self._match_text_seq("UNCONDITIONAL")
                self._match_text_seq("ARRAY")
                if not self._match_text_seq("WRAPPER"):
                    self.raise_error("Expecting WRAPPER")
                call.set("wrapper", exp.var(kind))
            else:
                self._parse_json_behavior(call)
        return call

    return parse


class FlinkParser(parser.Parser):
    FUNCTIONS = {
        **parser.Parser.FUNCTIONS,
        # Flink's INITCAP takes one argument (sqlglot's own parser adds a delimiter list).
        "INITCAP": lambda args: exp.Anonymous(this="INITCAP", expressions=args),
        # LISTAGG(x[, separator]) is the aggregate sqlglot calls GroupConcat.
        "LISTAGG": lambda args: exp.GroupConcat(this=seq_get(args, 0), separator=seq_get(args, 1)),
    }

    CONSTRAINT_PARSERS = {
        **parser.Parser.CONSTRAINT_PARSERS,
        "WATERMARK": lambda self: self.expression(
            exp.WatermarkColumnConstraint(
                this=self._match(TokenType.FOR) and self._parse_column(),
                expression=self._match(TokenType.ALIAS) and self._parse_disjunction(),
            )
        ),
        # col TYPE METADATA [FROM 'key'] [VIRTUAL]
        "METADATA": lambda self: self.expression(
            MetadataColumnConstraint(
                this=self._match(TokenType.FROM) and self._parse_string(),
                virtual=self._match_text_seq("VIRTUAL"),
            )
        ),
    }

    # NULL keeps its position, for Flink's "Illegal use of 'NULL'" (null_literals.py).
    PRIMARY_PARSERS = {
        **parser.Parser.PRIMARY_PARSERS,
        TokenType.NULL: lambda self, token: self.expression(exp.Null(), token=token),
    }

    # MAP['a', 1, 'b', 2] (ARRAY[...] is sqlglot's own)
    ARRAY_CONSTRUCTORS = {**parser.Parser.ARRAY_CONSTRUCTORS, "MAP": MapConstructor}

    SCHEMA_UNNAMED_CONSTRAINTS = {*parser.Parser.SCHEMA_UNNAMED_CONSTRAINTS, "WATERMARK"}

    FUNCTION_PARSERS = {
        **{k: v for k, v in parser.Parser.FUNCTION_PARSERS.items() if k != "INITCAP"},
        **{name: _parse_window_function(name) for name in WINDOW_TVFS},
        "DESCRIPTOR": lambda self: Descriptor(expressions=self._parse_csv(self._parse_column)),
        **{
            name: _parse_json_call(name) for name in ("JSON_VALUE", "JSON_QUERY", "JSON_EXISTS", "JSON_ARRAY")
        },
        "JSON_ARRAYAGG": lambda self: self._parse_json_arrayagg(),
    }

    def parse(self, raw_tokens: list[Token], sql: str) -> list[exp.Expr | None]:
        """sqlglot's trees, refused when an unquoted name is a word Flink reserves (`1 AS one`)."""
        trees = super().parse(raw_tokens, sql)
        for tree in trees:
            for identifier in tree.find_all(exp.Identifier) if tree is not None else ():
                if _is_reserved_name(identifier):
                    name = identifier.name
                    token = next(t for t in raw_tokens if t.start == identifier.meta["start"])
                    self.raise_error(
                        f"'{name}' is a reserved word in Flink SQL; to use it as a name, quote it: `{name}`",
                        token,
                    )
                    self.check_errors()
        return trees

    def _parse_json_arrayagg(self) -> exp.Expression:
        """JSON_ARRAYAGG(value [ORDER BY ...] [NULL|ABSENT ON NULL]), as Calcite reads it."""
        value = self._parse_disjunction()
        order = self._parse_order(this=value)
        handling = next((w for w in ("NULL", "ABSENT") if self._match_text_seq(w, "ON", "NULL")), None)
        return self.expression(
            exp.JSONArrayAgg(this=value, order=order if order is not value else None, null_handling=handling)
        )

    # Calcite reads any expression as a grouping key inside ROLLUP, CUBE and GROUPING SETS
    # (sqlglot's parser stops at `qty > 2`).
    def _parse_cube_or_rollup(self, with_prefix: bool = False) -> exp.Cube | exp.Rollup | None:
        kind = {TokenType.CUBE: exp.Cube, TokenType.ROLLUP: exp.Rollup}.get(
            self._curr.token_type if self._curr else TokenType.UNKNOWN
        )
        if kind is None:
            return None
        self._advance()
        items = [] if with_prefix else self._parse_wrapped_csv(self._parse_disjunction)
        return cast(exp.Cube | exp.Rollup, self.expression(kind(expressions=items)))

    def _parse_grouping_set(self) -> exp.Expr | None:
        return self._parse_grouping_sets() or self._parse_cube_or_rollup() or self._parse_disjunction()

    def _parse_match_recognize(self) -> MatchRecognizeClause | None:  # type: ignore[override]
        return parse_match_recognize(self)

    def _parse_types(self, *args, **kwargs) -> exp.Expr | None:  # type: ignore[no-untyped-def]
        """Flink's `ROW<x INT, y STRING>` and `ROW(x INT, y STRING)` are sqlglot's STRUCT type;
        `ROW(a, 'z')` stays the row constructor (a call)."""
        if self._curr and self._curr.token_type == TokenType.ROW and self._is_row_type():
            self._curr.token_type = TokenType.STRUCT
        return super()._parse_types(*args, **kwargs)

    def _is_row_type(self) -> bool:
        """`ROW<`, or `ROW(name type`: a field name followed by a type (a word, not `,` `.` `)`)."""
        after = [self._tokens[i] for i in range(self._index + 1, min(self._index + 4, len(self._tokens)))]
        if not after or after[0].token_type == TokenType.LT:
            return bool(after)
        return (
            len(after) == 3
            and after[0].token_type == TokenType.L_PAREN
            and after[1].token_type in (TokenType.VAR, TokenType.IDENTIFIER, *self.ID_VAR_TOKENS)
            and (after[2].token_type in self.TYPE_TOKENS or after[2].token_type == TokenType.VAR)
        )

    def _parse_json_behavior(self, call: JsonCall) -> None:
        """`<behavior> ON EMPTY|ERROR|NULL`, or `DEFAULT <expr> ON EMPTY|ERROR`, into `call`."""
        default = self._parse_bitwise() if self._match(TokenType.DEFAULT) else None
        words = next((w for w in _JSON_BEHAVIORS if default is None and self._match_text_seq(*w)), None)
        if (default is None and words is None) or not self._match_text_seq("ON"):
            self.raise_error("Expecting a JSON clause such as NULL ON EMPTY or DEFAULT <value> ON ERROR")
            return
        target = next((t for t in ("EMPTY", "ERROR", "NULL") if self._match_text_seq(t)), None)
        if target is None:
            self.raise_error("Expecting ON EMPTY, ON ERROR or ON NULL")
            return
        key = f"on_{target.lower()}"
        call.set(key, exp.var("DEFAULT" if default is not None else " ".join(words or ())))
        if default is not None:
            call.set(f"{target.lower()}_default", default)

    def _parse_create_like(self) -> exp.LikeProperty | None:
        """`LIKE source [(INCLUDING ALL EXCLUDING OPTIONS ...)]`: each option as a Property
        strategy -> feature, in the order written (table_like.py merges them)."""
        table = self._parse_table_parts(schema=True)  # not `t1 (...)` as a call
        options: list[exp.Expression] = []
        if self._match(TokenType.L_PAREN):
            while not self._match(TokenType.R_PAREN):
                strategy, feature = self._curr, self._next
                if strategy is None or feature is None or strategy.text.upper() not in LIKE_STRATEGIES:
                    self.raise_error(f"expected one of {', '.join(LIKE_STRATEGIES)}")
                    return None
                if feature.text.upper() not in LIKE_FEATURES:
                    self.raise_error(f"expected one of {', '.join(LIKE_FEATURES)}", feature)
                    return None
                self._advance(2)
                options.append(
                    self.expression(
                        exp.Property(this=exp.var(strategy.text.upper()), value=exp.var(feature.text.upper()))
                    )
                )
        return self.expression(exp.LikeProperty(this=table, expressions=options))

    def _parse_window_argument(self) -> exp.Expression | None:
        """`DESCRIPTOR(col)`, an interval, or `name => value` (named TVF arguments)."""
        if self._match_text_seq("DESCRIPTOR"):
            self._match(TokenType.L_PAREN)
            cols = self._parse_csv(self._parse_column)
            self._match_r_paren()
            return Descriptor(expressions=cols)
        return self._parse_lambda()


def _is_reserved_name(identifier: exp.Identifier) -> bool:
    """An unquoted name from the query text that Flink reserves; the unit of TIMESTAMPDIFF(DAY, ...)
    and TIMESTAMPADD(HOUR, ...) reaches sqlglot as a column, but is not a name."""
    if identifier.quoted or "start" not in identifier.meta:
        return False
    if identifier.name.upper() not in RESERVED_WORDS:
        return False
    column = identifier.parent
    if not isinstance(column, exp.Column):
        return True
    call = column.parent
    if isinstance(call, exp.TimestampDiff | exp.TimestampAdd):
        return column.arg_key != "this"
    if isinstance(call, exp.Anonymous) and call.name.upper() in ("TIMESTAMPADD", "TIMESTAMPDIFF"):
        return column is not call.expressions[0]
    return True


class Flink(Dialect):
    """Apache Flink SQL (Calcite-based): backtick identifiers, `||` concatenation."""

    NORMALIZE_FUNCTIONS = "upper"
    DPIPE_IS_STRING_CONCAT = True

    class Tokenizer(tokens.Tokenizer):
        IDENTIFIERS = ["`"]
        QUOTES = ["'"]
        STRING_ESCAPES = ["'", "\\"]
        KEYWORDS = {
            **{k: v for k, v in tokens.Tokenizer.KEYWORDS.items() if k != "SESSION"},
            "STRING": TokenType.TEXT,
            "BYTES": TokenType.VARBINARY,
            "TIMESTAMP_LTZ": TokenType.TIMESTAMPLTZ,
            "MATCH_RECOGNIZE": TokenType.MATCH_RECOGNIZE,
        }

    Parser = FlinkParser

    class Generator(generator.Generator):
        """Flink SQL text of a tree (SHOW CREATE TABLE / VIEW, messages): Flink's names."""

        TYPE_MAPPING = {
            **generator.Generator.TYPE_MAPPING,
            exp.DType.TEXT: "STRING",
            exp.DType.VARBINARY: "BYTES",
            exp.DType.TIMESTAMPLTZ: "TIMESTAMP_LTZ",
        }
        TRANSFORMS = {
            **generator.Generator.TRANSFORMS,
            exp.Length: lambda self, e: self.func("CHAR_LENGTH", e.this),
            MatchRecognizeClause: match_recognize_sql,
        }
