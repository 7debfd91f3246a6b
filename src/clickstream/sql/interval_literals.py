"""Interval literals as Flink reads them: the leading field has a precision, the digits it may hold.

Flink (Calcite) gives every unit a leading precision of 2 unless the literal says otherwise:
`INTERVAL '60' SECOND` is valid, `INTERVAL '300' SECOND` fails with "Interval field value 300
exceeds precision of SECOND(2) field", and `INTERVAL '300' SECOND(3)` is five minutes. The check
refuses the first with Flink's message and rewrites the unit of the last to a plain `SECOND`, the
form every later step reads.
"""

from __future__ import annotations

import re

from sqlglot import exp

from clickstream.errors import SqlValidationError

DEFAULT_PRECISION = 2
_UNITS = ("YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND")
_LEADING = re.compile(r"\s*[+-]?\s*(\d+)")


def check_interval_literals(tree: exp.Expr) -> None:
    """Raise for the first interval literal whose leading field exceeds its precision; drop the
    explicit precisions of the others."""
    for interval in list(tree.find_all(exp.Interval)):
        unit = interval.args.get("unit")
        leading = unit.this if isinstance(unit, exp.IntervalSpan) else unit
        name, precision = _field(leading)
        if name is None or not isinstance(interval.this, exp.Literal):
            continue
        if precision is not None:  # SECOND(3) -> SECOND
            plain = exp.var(name)
            if isinstance(unit, exp.IntervalSpan):
                unit.set("this", plain)
            else:
                interval.set("unit", plain)
        _check_digits(interval.this, name, DEFAULT_PRECISION if precision is None else precision)


def _field(unit: exp.Expr | None) -> tuple[str | None, int | None]:
    """The unit's name (singular) and its precision when the literal gives one."""
    if isinstance(unit, exp.Var):
        name = unit.name.upper()
        singular = name[:-1] if name.endswith("S") else name
        return (singular, None) if singular in _UNITS else (None, None)
    if isinstance(unit, exp.Func) and unit.sql_name() in _UNITS and isinstance(unit.this, exp.Literal):
        return unit.sql_name(), int(unit.this.this)
    return None, None


def _check_digits(literal: exp.Literal, unit: str, precision: int) -> None:
    match = _LEADING.match(str(literal.this))
    if match and len(str(int(match[1]))) > precision:
        raise SqlValidationError(
            f"Interval field value {int(match[1])} exceeds precision of {unit}({precision}) field",
            *_position(literal),
        )


def _position(literal: exp.Literal) -> tuple[int | None, int | None]:
    meta = literal.meta
    if "line" not in meta:
        return None, None
    return meta["line"], max(meta["col"] - (meta["end"] - meta["start"]), 1)
