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
