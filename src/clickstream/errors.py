"""Every exception clickstream raises on purpose.

A user mistake (bad SQL, unknown table, unsupported feature) is a `ClickstreamError`; the CLI prints
its message and exits non-zero, never a traceback. SQL errors carry the 1-based line and column of the
offending token so the message can point at it, DuckDB-style.
"""

from __future__ import annotations

import re


class ClickstreamError(Exception):
    """Base class of all errors a user may see."""


class SqlError(ClickstreamError):
    """A statement could not be accepted. `kind` names the family, e.g. 'Parser'."""

    kind = "SQL"

    def __init__(
        self,
        message: str,
        line: int | None = None,
        col: int | None = None,
        hint: str | None = None,
        sql: str | None = None,
        source: str | None = None,
    ) -> None:
        self.message = message
        self.line = line
        self.col = col
        self.hint = hint
        self.sql = sql
        self.source = source
        super().__init__(self._render())

    def with_context(self, sql: str, source: str | None = None) -> SqlError:
        """Attach the script text (to quote the line) and the file name, keeping the position."""
        self.sql = sql if self.sql is None else self.sql
        self.source = source if self.source is None else self.source
        self.args = (self._render(),)
        return self

    def shifted(self, line_offset: int, col_offset_first_line: int) -> SqlError:
        """Move the position from statement coordinates to script coordinates."""
        if self.line is not None:
            if self.line == 1 and self.col is not None:
                self.col += col_offset_first_line
            self.line += line_offset
        self.args = (self._render(),)
        return self

    def _render(self) -> str:
        where = ""
        if self.line is not None:
            where = f" (line {self.line}, column {self.col})"
            if self.source:
                where = f" ({self.source}, line {self.line}, column {self.col})"
        # The position closes the first line, so a message of several lines (Flink's lists of
        # options) stays whole below it.
        first, newline, rest = self.message.partition("\n")
        text = f"{self.kind} Error: {first}{where}{newline}{rest}"
        if self.hint:
            text += f"\nHint: {self.hint}"
        if self.sql:
            text = redact_secrets(text, self.sql)
        if self.sql and self.line is not None:
            echoed = echo_line(self.sql, self.line, self.col)
            if echoed is not None:
                shown, col = echoed
                text += f"\n\nLINE {self.line}: {shown}"
                if col:
                    text += "\n" + " " * (len(f"LINE {self.line}: ") + col - 1) + "^"
        return text


class SqlParseError(SqlError):
    kind = "Parser"


class SqlValidationError(SqlError):
    kind = "Validation"


class CatalogError(SqlError):
    kind = "Catalog"


class UnsupportedFeatureError(SqlError):
    kind = "Unsupported"


class PlanningError(SqlError):
    kind = "Planning"


class ConnectorError(ClickstreamError):
    """A connector is misconfigured or its external system failed."""


class ConnectorOptionError(SqlValidationError, ConnectorError):
    """A `WITH` option nothing declares, a value its option does not take, or a required option
    missing (Flink's `ValidationException` from `FactoryUtil`). `key` is the option at fault."""

    def __init__(
        self,
        message: str,
        line: int | None = None,
        col: int | None = None,
        hint: str | None = None,
        sql: str | None = None,
        source: str | None = None,
        *,
        key: str | None = None,
        table: str | None = None,
    ) -> None:
        self.key = key
        self.table = table
        super().__init__(message, line, col, hint, sql, source)

    def in_statement(self, text: str, line: int, col: int) -> ConnectorOptionError:
        """Point at the option's key in a `CREATE TABLE` whose text starts at (`line`, `col`) of
        the script (at the statement's start when the key is not found, or for a missing option)."""
        self.line, self.col = 1, 1
        if self.key is not None:
            quoted = "'" + self.key.replace("'", "''") + "'"
            match = re.search(re.escape(quoted) + r"\s*=", text)
            if match:
                before = text[: match.start()]
                self.line = before.count("\n") + 1
                self.col = match.start() - (before.rfind("\n") + 1) + 1
        self.shifted(line - 1, col - 1)
        return self


class ExecutionError(ClickstreamError):
    """A running job failed."""


class CommandError(ClickstreamError, ValueError):
    """A command cannot do what its arguments ask: an unknown simulator, an output it cannot write,
    a busy port, a database it cannot reach. The message names the argument and says what to do."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return f"Error: {self.message}"


# --- secrets -----------------------------------------------------------------------------------

# Flink's rule for sensitive keys (`GlobalConfiguration.isSensitive`), besides `schema.SECRET_OPTIONS`.
_SENSITIVE = (
    "password",
    "secret",
    "fs.azure.account.key",
    "apikey",
    "api-key",
    "auth-params",
    "service-key",
    "token",
    "basic-auth",
    "jaas.config",
    "http-headers",
)
MASK = "******"

# String literals, quoted identifiers and comments, in order, so a quote inside one of them is not
# taken for the start of another.
_TOKENS = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|`(?:[^`]|``)*`?|--[^\n]*|/\*.*?(?:\*/|\Z)", re.S)
_EQUALS = re.compile(r"\s*=\s*")
_BARE_VALUE = re.compile(r"[^\s,;()']+")
# The password of a URL: `//user:password@host` or a `password=` parameter.
_URL_PASSWORD = re.compile(r"//[^/@:'\s]*:([^@/'\s]*)@|[?&;]password=([^&;'\s]*)", re.I)


def is_secret_option(key: str) -> bool:
    """True for an option whose value must never be shown (passwords, JAAS configs, ...)."""
    from clickstream.schema import SECRET_OPTIONS  # schema imports this module

    lowered = key.lower()
    return lowered in SECRET_OPTIONS or any(word in lowered for word in _SENSITIVE)


def secret_spans(sql: str) -> list[tuple[int, int]]:
    """(start, end) offsets of every secret value in `sql`: the text inside the quotes of
    `'password' = '...'` (or a bare word after `=`), in `WITH (...)` and `SET` alike, and the
    password inside a URL option (`jdbc:mysql://user:pw@host`, `...?password=pw`)."""
    spans = []
    for match in _TOKENS.finditer(sql):
        token = match.group()
        if not (token.startswith("'") and len(token) > 1 and token.endswith("'")):
            continue
        key = token[1:-1].replace("''", "'")
        secret, url = is_secret_option(key), "url" in key.lower()
        equals = _EQUALS.match(sql, match.end()) if secret or url else None
        if equals is None:
            continue
        start = equals.end()
        if sql.startswith("'", start):
            value = _TOKENS.match(sql, start)
            assert value is not None  # a quote always starts a token
            end = value.end() - 1 if value.group().endswith("'") and value.end() - start > 1 else value.end()
            if secret:
                spans.append((start + 1, end))
            else:
                for found in _URL_PASSWORD.finditer(sql, start + 1, end):
                    group = 1 if found.group(1) is not None else 2
                    if found.end(group) > found.start(group):
                        spans.append(found.span(group))
        elif secret and (bare := _BARE_VALUE.match(sql, start)):
            spans.append((start, bare.end()))
    return sorted(spans)


def mask_secrets(sql: str) -> str:
    """`sql` with the value of every secret option replaced by `******`."""
    for start, end in reversed(secret_spans(sql)):
        sql = sql[:start] + MASK + sql[end:]
    return sql


def redact_secrets(text: str, sql: str) -> str:
    """`text` (a message about `sql`) without any secret value `sql` holds: whole words of three
    characters or more (shorter ones would hide unrelated words)."""
    raw = [sql[start:end] for start, end in secret_spans(sql)]
    for value in sorted({*raw, *(v.replace("''", "'") for v in raw)}, key=len, reverse=True):
        if len(value) >= 3:
            text = re.sub(rf"(?<![\w]){re.escape(value)}(?![\w])", MASK, text)
    return text


def echo_line(sql: str, line: int, col: int | None) -> tuple[str, int | None] | None:
    """Line `line` (1-based) of `sql` with its secret values masked, and where column `col` of the
    original line is in it (a column inside a masked value points at the mask's start). None when
    `sql` has no such line."""
    lines = sql.splitlines(keepends=True)
    if not 0 < line <= len(lines):
        return None
    start = sum(len(text) for text in lines[: line - 1])
    text = lines[line - 1].rstrip("\r\n")
    end = start + len(text)
    parts = [
        (max(a, start) - start, min(b, end) - start) for a, b in secret_spans(sql) if a < end and b > start
    ]
    shown, cursor = "", 0
    for a, b in parts:
        shown += text[cursor:a] + MASK
        cursor = b
    shown += text[cursor:]
    if col is None:
        return shown, None
    index, shift = col - 1, 0
    for a, b in parts:
        if index < a:
            break
        if index < b:
            return shown, a + shift + 1
        shift += len(MASK) - (b - a)
    return shown, index + shift + 1
