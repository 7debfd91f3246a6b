"""Expression nodes Flink SQL has and sqlglot does not."""

from __future__ import annotations

from sqlglot import exp


class TableArg(exp.Expression):
    """`TABLE t [PARTITION BY k]`, the first argument of a window table function."""

    arg_types = {"this": True, "partition_by": False}


class Descriptor(exp.Expression):
    """`DESCRIPTOR(col)`: names the time attribute a window TVF uses."""

    arg_types = {"expressions": True}


class WindowTvf(exp.Expression, exp.Func):
    """`TUMBLE(TABLE t, DESCRIPTOR(ts), size)`, `HOP(..., slide, size)`, `CUMULATE(..., step, size)`,
    `SESSION(TABLE t [PARTITION BY k], DESCRIPTOR(ts), gap)`."""

    arg_types = {"this": True, "expressions": True}

    @property
    def kind(self) -> str:
        return self.this.name.upper()


class JsonCall(exp.Expression, exp.Func):
    """`JSON_VALUE`, `JSON_QUERY`, `JSON_EXISTS` or `JSON_ARRAY` with Flink's trailing clauses:
    `RETURNING type`, `WITH [CONDITIONAL] [ARRAY] WRAPPER`, `<behavior> ON EMPTY`, `<behavior> ON
    ERROR`, `NULL|ABSENT ON NULL`. A behavior is a Var (`NULL`, `ERROR`, `EMPTY ARRAY`, `TRUE`, ...)
    or, for `DEFAULT <expr>`, the expression in `empty_default` / `error_default`."""

    arg_types = {
        "this": True,  # the function name, a Var
        "expressions": True,  # the arguments before the clauses
        "returning": False,
        "wrapper": False,
        "on_empty": False,
        "empty_default": False,
        "on_error": False,
        "error_default": False,
        "on_null": False,
    }

    @property
    def kind(self) -> str:
        return self.this.name.upper()

    def clause(self, key: str) -> str | None:
        """The behavior of clause `key` (`on_empty`, ...) as written, upper case; None if absent."""
        value = self.args.get(key)
        return value.name.upper() if isinstance(value, exp.Var) else None


class MapConstructor(exp.Expression, exp.Func):
    """`MAP[k1, v1, k2, v2, ...]`: a map value from alternating keys and values."""

    arg_types = {"expressions": True}


class MetadataColumnConstraint(exp.Expression, exp.ColumnConstraintKind):
    """`METADATA [FROM 'key'] [VIRTUAL]`: a column the connector fills from a record's metadata."""

    arg_types = {"this": False, "virtual": False}
