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
        if self.sql and self.line is not None:
            lines = self.sql.splitlines()
            if 0 < self.line <= len(lines):
                text += f"\n\nLINE {self.line}: {lines[self.line - 1]}"
                if self.col:
                    text += "\n" + " " * (len(f"LINE {self.line}: ") + self.col - 1) + "^"
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


def is_secret_option(key: str) -> bool:
    """True for an option whose value must never be shown (passwords, JAAS configs, ...)."""
    from clickstream.schema import SECRET_OPTIONS  # schema imports this module

    return key.lower() in SECRET_OPTIONS
