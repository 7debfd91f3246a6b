"""CAST as Flink computes it, where DuckDB's differs.

- To STRING: a BOOLEAN is 'TRUE'/'FALSE'; a DOUBLE or FLOAT is Java's `Double.toString`
  ('1.0E10', '9.0E-4', '-0.0', 'NaN', 'Infinity'); a TIMESTAMP has exactly its precision's fraction
  digits ('2024-01-01 00:00:00.000' for TIMESTAMP(3)), a TIMESTAMP_LTZ is that in the session time
  zone. VARCHAR(n) cuts to n characters, CHAR(n) cuts or pads with spaces to n.
- To an integer: a narrower integer wraps around (Java's `(int) long`), a DECIMAL is truncated and
  wraps, a DOUBLE/FLOAT is truncated and saturates at the type's bounds (NaN is 0) as Java's
  `(int) double`; TINYINT/SMALLINT wrap that int.
- To TIMESTAMP(p)/TIMESTAMP_LTZ(p) with p < 6: the fraction is cut to p digits.
- Unreadable text gives NULL rather than failing the job (README, "Bad input"): a deliberate
  difference, so that one bad record cannot stop a stream.
"""

from __future__ import annotations

from sqlglot import exp

from clickstream.sql.base_functions import Call, sql
from clickstream.sql.types import datatype_names

_BITS = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}
_FRACTION = {0: "", 3: ".%g", 6: ".%f", 9: ".%f000"}

# Java's Double.toString from DuckDB's shortest round-trip text __a1 of the number __a0:
# plain decimals for 1e-3 <= |x| < 1e7, else d.dddE[-]n.
_JAVA_DOUBLE = """CASE
  WHEN __a0 IS NULL THEN NULL
  WHEN isnan(__a0) THEN 'NaN'
  WHEN isinf(__a0) THEN CASE WHEN __a0 > 0 THEN 'Infinity' ELSE '-Infinity' END
  WHEN __a0 = 0 THEN CASE WHEN signbit(__a0) THEN '-0.0' ELSE '0.0' END
  WHEN abs(__a0) >= 0.001 AND abs(__a0) < 10000000 THEN __a1
  WHEN contains(__a1, 'e') THEN split_part(__a1, 'e', 1)
    || CASE WHEN contains(split_part(__a1, 'e', 1), '.') THEN '' ELSE '.0' END
    || 'E' || CAST(CAST(split_part(__a1, 'e', 2) AS INTEGER) AS VARCHAR)
  ELSE __a2 END"""
# d.dddE[-]n from a plain decimal __a1 = ltrim(text, '-') (DuckDB writes 1e7 <= |x| < 1e16 and
# 1e-4 <= |x| < 1e-3 without an exponent); __a0 is the number, __a2 its significant digits.
_SCIENTIFIC = """(CASE WHEN __a0 < 0 THEN '-' ELSE '' END || left(__a2, 1) || '.'
  || coalesce(nullif(substring(__a2, 2), ''), '0') || 'E' || CAST(CASE
    WHEN split_part(__a1, '.', 1) <> '0' THEN length(split_part(__a1, '.', 1)) - 1
    ELSE -(length(split_part(__a1, '.', 2)) - length(ltrim(split_part(__a1, '.', 2), '0')) + 1) END
  AS VARCHAR))"""
_DIGITS = "rtrim(ltrim(replace(__a0, '.', ''), '0'), '0')"


def java_double_string(value: exp.Expression) -> exp.Expression:
    text = sql("CAST(__a0 AS VARCHAR)", value)
    unsigned = sql("ltrim(__a0, '-')", text)
    scientific = sql(_SCIENTIFIC, value, unsigned, sql(_DIGITS, unsigned))
    return sql(_JAVA_DOUBLE, value, text, scientific)


def timestamp_string(wall: exp.Expression, precision: int) -> exp.Expression:
    """A wall-clock TIMESTAMP as Flink writes a TIMESTAMP(precision): exactly `precision` digits."""
    base = "%Y-%m-%d %H:%M:%S"
    if precision in _FRACTION:
        return sql(f"strftime(__a0, '{base}{_FRACTION[precision]}')", wall)
    if precision < 6:
        return sql(f"(strftime(__a0, '{base}.') || left(strftime(__a0, '%f'), {precision}))", wall)
    return sql(f"strftime(__a0, '{base}.%f{'0' * (precision - 6)}')", wall)


def to_string(call: Call, precision: int, kind: str | None) -> exp.Expression:
    """Argument 0 of `call` as Flink's CAST(... AS STRING) writes it."""
    value, source = call.args[0], call.type(0)
    if source == "BOOLEAN":
        return sql("CASE WHEN __a0 THEN 'TRUE' WHEN NOT __a0 THEN 'FALSE' END", value)
    if source in ("DOUBLE", "FLOAT") or kind == "fractional":
        return java_double_string(value)
    if source in ("TIMESTAMP", "TIMESTAMPTZ"):
        return timestamp_string(call.wall(0), precision)
    return exp.TryCast(this=value, to=exp.DataType.build("VARCHAR"))


def _length(datatype: exp.DataType) -> int | None:
    params = datatype.expressions
    if params and isinstance(params[0].this, exp.Literal):
        return int(params[0].this.this)
    return None


def cast(call: Call, to: exp.DataType, precision: int, kind: str | None) -> exp.Expression:
    """CAST(argument 0 AS to) of `call`; `precision` of a source timestamp, `kind` of a source
    number ('integral', 'decimal', 'fractional', or None)."""
    _, duck = datatype_names(to)
    value, source = call.args[0], call.type(0)
    if duck == "VARCHAR":
        text = to_string(call, precision, kind)
        length = _length(to)
        if length is None:
            return text
        if to.this == exp.DType.CHAR:
            return sql(f"rpad(__a0, {length}, ' ')", text)
        return sql(f"substring(__a0, 1, {length})", text)
    if duck in _BITS:
        return _to_integer(value, source, duck, kind)
    result = exp.TryCast(this=value, to=exp.DataType.build(duck, dialect="duckdb"))
    if duck in ("TIMESTAMP", "TIMESTAMPTZ"):
        target = _length(to)
        if target is not None and target < 6:
            return _truncated(result, target)
    return result


def _truncated(value: exp.Expression, precision: int) -> exp.Expression:
    if precision in (0, 3):
        return sql(f"date_trunc('{'second' if precision == 0 else 'millisecond'}', __a0)", value)
    step = 10 ** (6 - precision)
    return sql(f"(__a0 - to_microseconds(((epoch_us(__a0) % {step}) + {step}) % {step}))", value)


def _wrapped(value: exp.Expression, bits: int, duck: str) -> exp.Expression:
    """Two's complement wrap of a BIGINT to `bits` bits, as Java's narrowing casts."""
    if bits == 64:
        return value
    mask, half = (1 << bits) - 1, 1 << (bits - 1)
    return sql(f"CAST(xor(__a0 & {mask}, {half}) - {half} AS {duck})", value)


def _to_integer(value: exp.Expression, source: str | None, duck: str, kind: str | None) -> exp.Expression:
    bits = _BITS[duck]
    if source in ("DOUBLE", "FLOAT") or kind == "fractional":
        # Java: (long) d and (int) d saturate, NaN is 0; (short)/(byte) wrap the int.
        wide = 64 if bits == 64 else 32
        low, high = -(1 << (wide - 1)), (1 << (wide - 1)) - 1
        saturated = sql(
            f"CASE WHEN isnan(__a0) THEN 0 WHEN __a0 >= {high} THEN {high} WHEN __a0 <= {low} THEN {low} "
            "ELSE CAST(trunc(__a0) AS BIGINT) END",
            value,
        )
        return _wrapped(saturated, bits, duck) if bits < 32 else sql(f"CAST(__a0 AS {duck})", saturated)
    if kind == "decimal":
        return _wrapped(sql("TRY_CAST(trunc(__a0) AS BIGINT)", value), bits, duck)
    if kind == "integral" or source in _BITS:
        if source in _BITS and _BITS[source] <= bits:
            return sql(f"CAST(__a0 AS {duck})", value)
        return _wrapped(sql("CAST(__a0 AS BIGINT)", value), bits, duck)
    return exp.TryCast(this=value, to=exp.DataType.build(duck, dialect="duckdb"))
