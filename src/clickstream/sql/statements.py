"""A script of Flink SQL statements, split and parsed into typed statements.

The script is tokenized once (so `;` inside strings and comments does not split), cut at `;`, and
each piece parsed with the Flink dialect. Errors carry positions in the script, not the piece.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from clickstream.errors import SqlError, SqlParseError, UnsupportedFeatureError
from clickstream.schema import ComputedColumn, MetadataColumn, TableDef, Watermark
from clickstream.sql.clauses import check_clauses
from clickstream.sql.dialect import Flink
from clickstream.sql.expressions import MetadataColumnConstraint
from clickstream.sql.interval_literals import check_interval_literals
from clickstream.sql.types import column_from_datatype


@dataclass
class Statement:
    text: str
    line: int  # 1-based position of the statement's first character in the script
    col: int

    def error(
        self,
        error_cls: type[SqlError],
        message: str,
        node: exp.Expression | None = None,
        hint: str | None = None,
    ) -> SqlError:
        """An error positioned at `node` (or the statement start), in script coordinates."""
        line, col = position_of(node) if node is not None else (None, None)
        if line is None:
            line, col = 1, 1
        return error_cls(message, line, col, hint).shifted(self.line - 1, self.col - 1)


@dataclass
class SetStatement(Statement):
    key: str | None = None  # None: `SET;` lists the options
    value: str | None = None


@dataclass
class ResetStatement(Statement):
    key: str | None = None


@dataclass
class LikeClause:
    """`LIKE source (INCLUDING ALL OVERWRITING OPTIONS ...)` of a CREATE TABLE."""

    source: str
    node: exp.Expression  # for positions
    options: list[tuple[str, str]] = field(default_factory=list)  # (strategy, feature) as written


@dataclass
class CreateTable(Statement):
    table: TableDef | None = None
    if_not_exists: bool = False
    temporary: bool = False
    like: LikeClause | None = None  # the table is merged with its source when the statement runs


@dataclass
class CreateView(Statement):
    name: str = ""
    query: exp.Expression | None = None
    if_not_exists: bool = False
    replace: bool = False
    temporary: bool = False


@dataclass
class DropStatement(Statement):
    kind: str = "TABLE"
    name: str = ""
    if_exists: bool = False


@dataclass
class InsertStatement(Statement):
    target: str = ""
    target_node: exp.Expression | None = None
    columns: list[str] = field(default_factory=list)
    query: exp.Expression | None = None


@dataclass
class StatementSet(Statement):
    inserts: list[InsertStatement] = field(default_factory=list)


@dataclass
class QueryStatement(Statement):
    query: exp.Expression | None = None


@dataclass
class ShowTables(Statement):
    views_only: bool = False


@dataclass
class ShowFunctions(Statement):
    pass


@dataclass
class ShowCreate(Statement):
    kind: str = "TABLE"  # or VIEW
    name: str = ""


@dataclass
class DescribeStatement(Statement):
    name: str = ""


@dataclass
class ExplainStatement(Statement):
    inner: Statement | None = None


def position_of(node: exp.Expression | None) -> tuple[int | None, int | None]:
    """Line and column sqlglot recorded for the first identifier or literal inside `node`."""
    if node is None:
        return None, None
    for candidate in node.walk():
        meta = candidate.meta if hasattr(candidate, "meta") else None
        if meta and "line" in meta:
            start_col = meta["col"] - (meta["end"] - meta["start"])
            return meta["line"], max(start_col, 1)
    return None, None


def parse_script(script: str, source: str | None = None) -> list[Statement]:
    """Split and parse every statement of a script; raises the first error, positioned."""
    try:
        return [_parse_piece(*piece) for piece in _group_statement_sets(_split(script))]
    except SqlError as error:
        raise error.with_context(script, source) from None


# --- splitting -------------------------------------------------------------------------------

_Piece = tuple[str, int, int]  # text, line, col


def _split(script: str) -> list[_Piece]:
    try:
        tokens = Flink().tokenize(script)
    except TokenError as error:
        line, col = _offset_to_line_col(script, _token_error_offset(error, script))
        raise SqlParseError(f"cannot read the statement: {error}", line, col) from None
    pieces: list[_Piece] = []
    start_token: Token | None = None
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if start_token is not None:
                pieces.append(_piece(script, start_token, token.start))
            start_token = None
        elif start_token is None:
            start_token = token
    if start_token is not None:
        pieces.append(_piece(script, start_token, len(script)))
    return pieces


def _piece(script: str, first: Token, end: int) -> _Piece:
    start = first.start
    line, col = _offset_to_line_col(script, start)
    return script[start:end].rstrip(), line, col


def _offset_to_line_col(script: str, offset: int) -> tuple[int, int]:
    line = script.count("\n", 0, offset) + 1
    col = offset - (script.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _token_error_offset(error: TokenError, script: str) -> int:
    match = re.search(r"Line (\d+), Col: (\d+)", str(error))
    if not match:
        return 0
    line, col = int(match.group(1)), int(match.group(2))
    lines = script.splitlines(keepends=True)
    return sum(len(x) for x in lines[: line - 1]) + col - 1


_SET_BEGIN = re.compile(r"^\s*(EXECUTE\s+STATEMENT\s+SET\s+BEGIN|BEGIN\s+STATEMENT\s+SET)\b", re.I)


def _group_statement_sets(pieces: list[_Piece]):
    """Yield pieces, merging `EXECUTE STATEMENT SET BEGIN ... END` into one piece marked as a set."""
    i = 0
    while i < len(pieces):
        text, line, col = pieces[i]
        match = _SET_BEGIN.match(text)
        if not match:
            yield text, line, col
            i += 1
            continue
        members: list[_Piece] = []
        first = text[match.end() :]
        if first.strip():
            offset = match.end() + (len(first) - len(first.lstrip()))
            fl, fc = _offset_to_line_col(text, offset)
            members.append((first.strip(), line + fl - 1, fc + (col - 1 if fl == 1 else 0)))
        i += 1
        while i < len(pieces) and pieces[i][0].strip().upper() != "END":
            members.append(pieces[i])
            i += 1
        if i == len(pieces):
            raise SqlParseError("STATEMENT SET is missing its END", line, col)
        i += 1
        yield members, line, col


# --- parsing ---------------------------------------------------------------------------------

_SET = re.compile(r"^SET\s*(?:'([^']*)'|([\w.\-]+))\s*=\s*(?:'((?:[^']|'')*)'|(\S+))\s*$", re.I | re.S)
_RESET = re.compile(r"^RESET\s*(?:'([^']*)'|([\w.\-]+))?\s*$", re.I)
_SHOW = re.compile(r"^SHOW\s+(TABLES|VIEWS)\s*$", re.I)
_SHOW_FUNCTIONS = re.compile(r"^SHOW\s+(?:USER\s+)?FUNCTIONS\s*$", re.I)
_SHOW_CREATE = re.compile(r"^SHOW\s+CREATE\s+(TABLE|VIEW)\s+`?([\w.]+)`?\s*$", re.I)
_DESCRIBE = re.compile(r"^(?:DESCRIBE|DESC)\s+`?([\w.]+)`?\s*$", re.I)
_EXPLAIN = re.compile(r"^EXPLAIN\s+(?:PLAN\s+FOR\s+)?", re.I)


def _parse_piece(text, line: int, col: int) -> Statement:
    if isinstance(text, list):
        inserts = [_parse_piece(*member) for member in text]
        for member in inserts:
            if not isinstance(member, InsertStatement):
                raise member.error(SqlParseError, "a STATEMENT SET may only contain INSERT statements")
        return StatementSet("", line, col, inserts=inserts)
    if re.fullmatch(r"SET\s*", text, re.I):
        return SetStatement(text, line, col)
    if match := _SET.match(text):
        value = match.group(3).replace("''", "'") if match.group(3) is not None else match.group(4)
        return SetStatement(text, line, col, key=match.group(1) or match.group(2), value=value)
    if match := _RESET.match(text):
        return ResetStatement(text, line, col, key=match.group(1) or match.group(2))
    if match := _SHOW.match(text):
        return ShowTables(text, line, col, views_only=match.group(1).upper() == "VIEWS")
    if _SHOW_FUNCTIONS.match(text):
        return ShowFunctions(text, line, col)
    if match := _SHOW_CREATE.match(text):
        return ShowCreate(text, line, col, kind=match.group(1).upper(), name=match.group(2).split(".")[-1])
    if match := _DESCRIBE.match(text):
        return DescribeStatement(text, line, col, name=match.group(1))
    if match := _EXPLAIN.match(text):
        inner_text = text[match.end() :]
        inner_line, inner_col = _offset_to_line_col(text, match.end())
        inner = _parse_piece(
            inner_text, line + inner_line - 1, inner_col + (col - 1 if inner_line == 1 else 0)
        )
        return ExplainStatement(text, line, col, inner=inner)
    statement = Statement(text, line, col)
    tree = _sqlglot_parse(statement)
    return _typed(statement, tree)


def _sqlglot_parse(statement: Statement) -> exp.Expression:
    try:
        tree = sqlglot.parse_one(statement.text, read=Flink)
    except ParseError as error:
        detail = error.errors[0] if error.errors else {}
        near = detail.get("highlight") or "end of statement"
        message = f"syntax error near '{near}': {_friendly(detail.get('description', str(error)))}"
        col = detail.get("col")
        if col is not None and detail.get("highlight"):
            col = max(1, col - len(detail["highlight"]) + 1)  # sqlglot points at the token's end
        raise SqlParseError(message, detail.get("line"), col).shifted(
            statement.line - 1, statement.col - 1
        ) from None
    except TokenError as error:
        raise statement.error(SqlParseError, f"cannot read the statement: {error}") from None
    if tree is None:
        raise statement.error(SqlParseError, "empty statement")
    try:
        check_clauses(tree, statement.text)
        check_interval_literals(tree)
    except SqlError as error:
        raise error.shifted(statement.line - 1, statement.col - 1) from None
    return tree


def _friendly(description: str) -> str:
    match = re.match(r"Required keyword: '(\w+)' missing for <class '[\w.]+\.(\w+)'>", description)
    if match:
        return f"{match.group(2).upper()} is incomplete: expected an expression"
    return description.replace("Expecting", "expected").replace("Invalid expression / ", "")


def _typed(statement: Statement, tree: exp.Expression) -> Statement:
    base = (statement.text, statement.line, statement.col)
    if isinstance(tree, exp.Create):
        kind = (tree.args.get("kind") or "").upper()
        properties = tree.args.get("properties")
        temporary = any(isinstance(p, exp.TemporaryProperty) for p in properties or [])
        if kind == "TABLE":
            like = _like_clause(statement, tree)
            return CreateTable(
                *base,
                table=_table_def(statement, tree, like),
                if_not_exists=bool(tree.args.get("exists")),
                temporary=temporary,
                like=like,
            )
        if kind == "VIEW":
            return CreateView(
                *base,
                name=tree.this.name,
                query=tree.expression,
                if_not_exists=bool(tree.args.get("exists")),
                replace=bool(tree.args.get("replace")),
                temporary=temporary,
            )
        raise statement.error(UnsupportedFeatureError, f"CREATE {kind} is not supported")
    if isinstance(tree, exp.Drop):
        kind = (tree.args.get("kind") or "").upper()
        if kind not in ("TABLE", "VIEW"):
            raise statement.error(UnsupportedFeatureError, f"DROP {kind} is not supported")
        return DropStatement(
            *base,
            kind=kind,
            name=tree.this.name if tree.this else tree.args["tables"][0].name,
            if_exists=bool(tree.args.get("exists")),
        )
    if isinstance(tree, exp.Insert):
        target = tree.this
        columns: list[str] = []
        if isinstance(target, exp.Schema):
            columns = [c.name for c in target.expressions]
            target = target.this
        if tree.args.get("overwrite"):
            raise statement.error(UnsupportedFeatureError, "INSERT OVERWRITE is not supported")
        if tree.args.get("with_") is not None:  # Flink's grammar has WITH after INSERT INTO t only
            raise statement.error(
                SqlParseError,
                "Incorrect syntax near the keyword 'INSERT'",
                tree.args["with_"],
                hint="Write INSERT INTO t WITH ... SELECT ...",
            )
        return InsertStatement(
            *base, target=target.name, target_node=target, columns=columns, query=tree.expression
        )
    if isinstance(tree, exp.Query):
        return QueryStatement(*base, query=tree)
    raise statement.error(
        UnsupportedFeatureError, f"statement '{statement.text.split()[0].upper()}' is not supported"
    )


def _like_clause(statement: Statement, tree: exp.Create) -> LikeClause | None:
    properties = tree.args.get("properties")
    like = next((p for p in properties or [] if isinstance(p, exp.LikeProperty)), None)
    if like is None:
        return None
    options = [(o.this.name, o.args["value"].name) for o in like.expressions]
    features = [feature for _, feature in options]
    for strategy, feature in options:
        if features.count(feature) > 1:
            raise statement.error(SqlParseError, "Each like option feature can be declared only once.", like)
        if strategy == "OVERWRITING" and feature in ("ALL", "CONSTRAINTS"):
            raise statement.error(
                SqlParseError, f"Illegal merging strategy '{strategy}' for '{feature}' option.", like
            )
    return LikeClause(like.this.name, like.this, options)


def _table_def(statement: Statement, tree: exp.Create, like: LikeClause | None = None) -> TableDef:
    schema = tree.this
    if isinstance(schema, exp.Table) and like is not None:  # `CREATE TABLE t LIKE s`: no columns of its own
        schema = exp.Schema(this=schema, expressions=[])
    if not isinstance(schema, exp.Schema):
        raise statement.error(
            UnsupportedFeatureError,
            "CREATE TABLE needs a column list (CREATE TABLE ... AS is not supported)",
            tree,
        )
    table = TableDef(name=schema.this.name, physical=[])
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            _add_column(statement, table, item)
        elif isinstance(item, exp.WatermarkColumnConstraint):
            table.watermark = Watermark(item.this.name, item.expression)
        elif isinstance(item, exp.PrimaryKey):
            table.primary_key = [e.name for e in item.expressions]
        else:
            raise statement.error(
                UnsupportedFeatureError, f"table element '{item.sql(dialect=Flink)}' is not supported", item
            )
    properties = tree.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.TemporaryProperty | exp.LikeProperty):
            continue  # read by _typed and _like_clause
        if type(prop) is exp.Property:  # 'key' = 'value'; its subclasses are other clauses
            key = prop.this.name if isinstance(prop.this, exp.Literal) else prop.name
            table.options[key] = prop.args["value"].name
        else:
            raise statement.error(
                UnsupportedFeatureError, f"'{prop.sql(dialect=Flink)}' is not supported in CREATE TABLE", prop
            )
    if like is None:  # else once merged with the LIKE source (table_like.py)
        check_table(statement, table, schema)
    return table


def _add_column(statement: Statement, table: TableDef, item: exp.ColumnDef) -> None:
    name = item.this.name
    nullable = True
    for constraint in item.args.get("constraints") or []:
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.ComputedColumnConstraint):
            table.computed.append(ComputedColumn(name, kind.this))
            return
        if isinstance(kind, MetadataColumnConstraint):
            key = kind.this.name if kind.this else name
            table.metadata[name] = MetadataColumn(key, bool(kind.args.get("virtual")))
        if isinstance(kind, exp.PrimaryKeyColumnConstraint):
            table.primary_key = [name]
            nullable = False
        elif isinstance(kind, exp.NotNullColumnConstraint):
            nullable = bool(kind.args.get("allow_null"))
    if item.args.get("kind") is None:
        raise statement.error(SqlParseError, f"column '{name}' needs a type", item)
    try:
        table.physical.append(column_from_datatype(name, item.args["kind"], nullable))
    except UnsupportedFeatureError as error:
        raise statement.error(UnsupportedFeatureError, error.message, item) from None


def check_table(statement: Statement, table: TableDef, schema: exp.Expression) -> None:
    """Key and watermark columns exist; no column is defined twice."""
    names = [c.name.lower() for c in table.physical] + [c.name.lower() for c in table.computed]
    for name in table.primary_key + ([table.watermark.column] if table.watermark else []):
        if name.lower() not in names:
            raise statement.error(
                SqlParseError,
                f"column '{name}' is not defined in table '{table.name}'",
                schema,
                hint="Defined columns: " + ", ".join(c.name for c in table.physical),
            )
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise statement.error(SqlParseError, f"column '{duplicates.pop()}' is defined twice", schema)
