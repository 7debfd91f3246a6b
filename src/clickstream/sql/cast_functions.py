"""CAST as Flink computes it, where DuckDB's differs.

- To STRING: a BOOLEAN is 'TRUE'/'FALSE'; a DOUBLE or FLOAT is Java's `Double.toString`
  ('1.0E10', '9.0E-4', '-0.0', 'NaN', 'Infinity'); a TIMESTAMP has exactly its precision's fraction
  digits ('2024-01-01 00:00:00.000' for TIMESTAMP(3)), a TIMESTAMP_LTZ is that in the session time
  zone. VARCHAR(n) cuts to n characters, CHAR(n) cuts or pads with spaces to n.
- To an integer: a narrower integer wraps around (Java's `(int) long`), a DECIMAL is truncated and
  wraps, a DOUBLE/FLOAT is truncated and saturates at the type's bounds (NaN is 0) as Java's
  `(int) double`; TINYINT/SMALLINT wrap that int.
- To TIMESTAMP(p)/TIMESTAMP_LTZ(p) with p < 6: the fraction is cut to p digits.
- From STRING: Flink's own readers, not DuckDB's casts (`integer_from_text`, `date_from_text`,
  `timestamp_from_text`): '1e3' is no integer and '3.9' is 3; '12' is the DATE 0012-01-01; the
  TIMESTAMP '2024-02-30' is 2024-02-29 (java.time's SMART resolver moves the day back into the
  month) while the DATE '2024-02-30' is NULL.
- Unreadable text gives NULL rather than failing the job (README, "Bad input"): a deliberate
  difference, so that one bad record cannot stop a stream.
"""

from __future__ import annotations

from sqlglot import exp

from clickstream.sql import collection_types
from clickstream.sql.base_functions import Call, quote, sql
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
    if collection_types.is_nested(source):
        return _collection_string(value, str(source), call.zone)
    if source == "BOOLEAN":
        return sql("CASE WHEN __a0 THEN 'TRUE' WHEN NOT __a0 THEN 'FALSE' END", value)
    if source in ("DOUBLE", "FLOAT") or kind == "fractional":
        return java_double_string(value)
    if source in ("TIMESTAMP", "TIMESTAMPTZ"):
        return timestamp_string(call.wall(0), precision)
    return exp.TryCast(this=value, to=exp.DataType.build("VARCHAR"))


def _collection_string(value: exp.Expression, duck_type: str, zone: str) -> exp.Expression:
    """An ARRAY, MAP or ROW as Flink writes it, its elements cast to STRING (at precision 3)."""
    from clickstream.sql.collection_functions import to_string as collection_string

    def scalar(element: exp.Expression, kind: str) -> exp.Expression:
        return to_string(Call([element], [kind], zone), 3, None)

    return collection_string(value, duck_type, scalar)


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
    if source == "VARCHAR" and duck == "DATE":
        return date_from_text(value)
    if source == "VARCHAR" and duck == "TIMESTAMP":
        result = timestamp_from_text(value)
    else:
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
    if source == "VARCHAR":
        return integer_from_text(value, duck)
    if kind == "integral" or source in _BITS:
        if source in _BITS and _BITS[source] <= bits:
            return sql(f"CAST(__a0 AS {duck})", value)
        return _wrapped(sql("CAST(__a0 AS BIGINT)", value), bits, duck)
    return exp.TryCast(this=value, to=exp.DataType.build(duck, dialect="duckdb"))


# --- reading text -------------------------------------------------------------------------------

# BinaryStringDataUtil.toLong: spaces (only spaces) around; a sign, digits and a fraction that is
# cut off ('3.9' is 3, '.5' and '-.' are 0); no exponent, no other blank, not a sign alone.
_INTEGER_TEXT = r"[+-]?[0-9]*(\.[0-9]*)?"


def integer_from_text(text: exp.Expression, duck: str) -> exp.Expression:
    """Flink's STRING to TINYINT ... BIGINT: NULL when not a number or out of the type's range."""
    trimmed = sql("trim(__a0, ' ')", text)
    whole = sql("regexp_extract(__a0, '^[+-]?[0-9]*')", trimmed)
    return sql(
        f"CASE WHEN regexp_full_match(__a0, {quote(_INTEGER_TEXT)}) AND __a0 NOT IN ('', '+', '-') "
        f"THEN TRY_CAST(CASE WHEN __a1 IN ('', '+', '-') THEN '0' ELSE __a1 END AS {duck}) END",
        trimmed,
        whole,
    )


# DateTimeUtils.parseDate: the text up to its first space (one leading space is kept), then
# year[-month[-day]], each part digits with blanks (what Java's trim removes, up to U+0020)
# around; a missing month or day is 1.
_BLANK = r"[\x00-\x20]*"
_DATE_TEXT = f"^{_BLANK}([0-9]+){_BLANK}(?:-{_BLANK}([0-9]+){_BLANK}(?:-{_BLANK}([0-9]+){_BLANK})?)?$"


def date_from_text(text: exp.Expression) -> exp.Expression:
    """Flink's STRING to DATE: NULL unless the year is 1-9999 and the date exists. (Flink also
    reads year 0, '0' is 0000-01-01; DuckDB's year 0 is 1 BC, which Python cannot hold.)"""
    head = sql("CASE WHEN strpos(__a0, ' ') > 1 THEN left(__a0, strpos(__a0, ' ') - 1) ELSE __a0 END", text)
    parts = sql(f"regexp_extract(__a0, {quote(_DATE_TEXT)}, ['y', 'm', 'd'])", head)
    # DOUBLE, so that a part too long for an integer fails the range checks instead of the query.
    y, m, d = (f"coalesce(CAST(nullif(struct_extract(__a0, '{p}'), '') AS DOUBLE), 1)" for p in "ymd")
    return sql(
        f"CASE WHEN struct_extract(__a0, 'y') <> '' AND {y} BETWEEN 1 AND 9999 "
        f"THEN try(make_date(CAST({y} AS BIGINT), CAST({m} AS BIGINT), CAST({d} AS BIGINT))) END",
        parts,
    )


# DateTimeUtils.DEFAULT_TIMESTAMP_FORMATTER, 'yyyy-[MM][M]-[dd][d][ [HH][H]:[mm][m]:[ss][s][.f]]'
# (f: 0-9 digits), the whole text; an empty day is the 1st.
_TIMESTAMP_TEXT = (
    r"^([0-9]{4})-([0-9]{1,2})-([0-9]{0,2})"
    r"(?: ([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:\.([0-9]{0,9}))?)?$"
)
_TIMESTAMP_PARTS = ("year", "month", "day", "hour", "minute", "second")
# Resolved as java.time's ResolverStyle.SMART does: month 1-12; day 1-31, moved back to the last
# day of a shorter month; hour 0-23, or 24:00:00 for the next midnight; minute and second 0-59.
_SMART_TIMESTAMP = """CASE
  WHEN NOT ({month} BETWEEN 1 AND 12 AND {day} BETWEEN 1 AND 31 AND {minute} < 60 AND {second} < 60
    AND ({hour} < 24 OR {hour} = 24 AND {minute} = 0 AND {second} = 0 AND rtrim({fraction}, '0') = ''))
  THEN NULL
  ELSE CAST(make_date({year}, {month}, least({day}, day(last_day(make_date({year}, {month}, 1)))))
    AS TIMESTAMP) + to_microseconds((({hour} * 60 + {minute}) * 60 + {second}) * 1000000
      + CAST(rpad(left({fraction}, 6), 6, '0') AS BIGINT))
END"""


def timestamp_from_text(text: exp.Expression) -> exp.Expression:
    """Flink's STRING to TIMESTAMP (and TO_TIMESTAMP of one argument), to the microsecond."""
    names = [*_TIMESTAMP_PARTS, "fraction"]
    parts = sql(f"regexp_extract(__a0, {quote(_TIMESTAMP_TEXT)}, {names})", text)
    # An empty day is the 1st; missing hour, minute, second are 0.
    fields = {
        name: f"CAST(coalesce(nullif(struct_extract(__a0, '{name}'), ''), '{int(name == 'day')}') AS BIGINT)"
        for name in _TIMESTAMP_PARTS
    }
    fields["fraction"] = "struct_extract(__a0, 'fraction')"
    resolved = _SMART_TIMESTAMP.format(**fields)
    return sql(f"CASE WHEN struct_extract(__a0, 'year') <> '' THEN {resolved} END", parts)
