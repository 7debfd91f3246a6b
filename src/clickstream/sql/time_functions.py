"""Flink's date and time functions as DuckDB expressions.

Everything that reads local time reads the wall clock of the session time zone
(`table.local-time-zone`): `Call.wall` gives it, without DuckDB's ICU conversion in UTC.

Flink computes EXTRACT and the functions built on it (HOUR, DAYOFMONTH, ...) from the local epoch
milliseconds with Java's truncating `/` and `%`, so before 1970 a time of day is negative and the
date is the next day (HOUR of 1969-12-31 19:00 is -5, DAYOFMONTH 1). We compute the same way; from
1970 on it is the ordinary calendar. FLOOR/CEIL to WEEK, MONTH, QUARTER or YEAR use that date too,
and CEIL of those units ignores the time of day (CEIL(2023-01-01 06:00 TO MONTH) is 2023-01-01), as
Flink's `DateTimeUtils.timestampCeil` does.
"""

from __future__ import annotations

from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.sql.base_functions import Builder, Call, literal_string, quote, sql, template
from clickstream.sql.cast_functions import date_from_text, timestamp_from_text
from clickstream.sql.format_functions import (
    JAVA_TIME,
    SIMPLE,
    format_expression,
    lenient_regex,
    prefix_regex,
    strptime_format,
)

DEFAULT_FORMAT = "yyyy-MM-dd HH:mm:ss"
_LONG_MIN = "-9223372036854775808"

# Flink's EXTRACT over the local epoch milliseconds __a0 (Java's truncating / and %).
_DATE_OF_MS = "(DATE '1970-01-01' + CAST(__a0 // 86400000 AS INTEGER))"
_TIME_PARTS = {
    "HOUR": "(__a0 % 86400000 // 3600000)",
    "MINUTE": "(__a0 % 3600000 // 60000)",
    "SECOND": "(__a0 % 60000 // 1000)",
    "MILLISECOND": "(__a0 % 1000)",
    "EPOCH": "(__a0 // 1000)",
}
_DATE_PARTS = {
    "YEAR": "year(__a0)",
    "QUARTER": "quarter(__a0)",
    "MONTH": "month(__a0)",
    "WEEK": "week(__a0)",
    "DAY": "day(__a0)",
    "DOW": "(dayofweek(__a0) + 1)",
    "DOY": "dayofyear(__a0)",
    "ISODOW": "isodow(__a0)",
    "ISOYEAR": "isoyear(__a0)",
    "DECADE": "(year(__a0) // 10)",
    "CENTURY": "CASE WHEN year(__a0) > 0 THEN (year(__a0) + 99) // 100 ELSE (year(__a0) - 99) // 100 END",
    "MILLENNIUM": (
        "CASE WHEN year(__a0) > 0 THEN (year(__a0) + 999) // 1000 ELSE (year(__a0) - 999) // 1000 END"
    ),
}
_UNIT_ALIASES = {
    "DAYOFMONTH": "DAY",
    "DAYOFWEEK": "DOW",
    "DAYOFYEAR": "DOY",
    "YEARS": "YEAR",
    "MONTHS": "MONTH",
    "DAYS": "DAY",
    "HOURS": "HOUR",
    "MINUTES": "MINUTE",
    "SECONDS": "SECOND",
    "SQL_TSI_YEAR": "YEAR",
    "SQL_TSI_QUARTER": "QUARTER",
    "SQL_TSI_MONTH": "MONTH",
    "SQL_TSI_WEEK": "WEEK",
    "SQL_TSI_DAY": "DAY",
    "SQL_TSI_HOUR": "HOUR",
    "SQL_TSI_MINUTE": "MINUTE",
    "SQL_TSI_SECOND": "SECOND",
}


def unit_name(node: exp.Expression) -> str:
    """HOUR of `EXTRACT(HOUR FROM ...)`, `FLOOR(... TO HOUR)`, `TIMESTAMPDIFF(HOUR, ...)`."""
    name = node.name.upper() if isinstance(node, exp.Var | exp.Column | exp.Identifier) else node.sql()
    return _UNIT_ALIASES.get(name.upper(), name.upper())


# DuckDB's own part functions, equal to Flink's from 1970-01-02 on (any zone's local date is then
# at least 1970-01-01); only earlier rows take Flink's arithmetic.
_FAST_PARTS = {
    "HOUR": "hour(__a0)",
    "MINUTE": "minute(__a0)",
    "SECOND": "second(__a0)",
    "MILLISECOND": "(millisecond(__a0) % 1000)",
    **{unit: text for unit, text in _DATE_PARTS.items() if unit not in ("DOW",)},
    "DOW": "(dayofweek(__a0) + 1)",
}


def extract(unit: str, call: Call) -> exp.Expression:
    """EXTRACT(unit FROM argument 0) as Flink computes it (see the module docstring)."""
    wall = call.wall(0)
    millis = sql("epoch_ms(__a0)", wall)
    if unit in _TIME_PARTS:
        flink = sql(_TIME_PARTS[unit], millis)
    elif unit == "MICROSECOND":
        flink = sql("(epoch_us(__a0) % 1000000)", wall)
    elif unit == "NANOSECOND":
        flink = sql("(epoch_us(__a0) % 1000000 * 1000)", wall)
    elif unit in _DATE_PARTS:
        flink = sql(_DATE_PARTS[unit], sql(_DATE_OF_MS, millis))
    else:
        raise UnsupportedFeatureError(f"EXTRACT({unit} FROM ...) is not supported")
    if unit not in _FAST_PARTS:
        return flink
    # On an instant outside UTC DuckDB's part functions read the session zone themselves (ICU).
    instant = call.type(0) == "TIMESTAMPTZ" and not call.utc
    base = call.args[0] if instant else wall
    since = "TIMESTAMPTZ '1970-01-02 00:00:00+00'" if instant else "TIMESTAMP '1970-01-02 00:00:00'"
    fast = sql(_FAST_PARTS[unit], base)
    return sql(f"CASE WHEN __a0 >= {since} THEN __a1 ELSE __a2 END", base, fast, flink)


def _part(unit: str) -> Builder:
    def build(call: Call) -> exp.Expression:
        call.arity(1)
        return extract(unit, call)

    return build


def build_extract(call: Call, unit: str) -> exp.Expression:
    return extract(unit, call)


# --- FLOOR / CEIL (ts TO unit) ------------------------------------------------------------------

_CALENDAR_FLOOR = {
    "WEEK": "(__a0 - CAST(dayofweek(__a0) AS INTEGER))",  # weeks start on Sunday
    "MONTH": "CAST(date_trunc('month', __a0) AS DATE)",
    "QUARTER": "CAST(date_trunc('quarter', __a0) AS DATE)",
    "YEAR": "CAST(date_trunc('year', __a0) AS DATE)",
}
_CALENDAR_STEP = {"WEEK": "INTERVAL 7 DAY", "MONTH": "INTERVAL 1 MONTH", "QUARTER": "INTERVAL 3 MONTH"}
_CLOCK_UNITS = ("MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY")


def floor_ceil(call: Call, unit: str, ceil: bool) -> exp.Expression:
    """FLOOR/CEIL(x TO unit): rounded on the wall clock; an instant moves as its wall clock moved."""
    wall = call.wall(0)
    if unit in _CLOCK_UNITS:
        floor = sql(f"date_trunc('{unit.lower()}', __a0)", wall)
        rounded = (
            sql(f"CASE WHEN __a1 = __a0 THEN __a0 ELSE __a1 + INTERVAL 1 {unit} END", wall, floor)
            if ceil
            else floor
        )
    elif unit in _CALENDAR_FLOOR:
        day = sql(_DATE_OF_MS, sql("epoch_ms(__a0)", wall))
        floor = sql(_CALENDAR_FLOOR[unit], day)
        step = _CALENDAR_STEP.get(unit, "INTERVAL 1 YEAR")
        text = f"CASE WHEN __a1 = __a0 THEN __a0 ELSE __a1 + {step} END" if ceil else "__a1"
        rounded = sql(f"CAST({text} AS TIMESTAMP)", day, floor)
    else:
        raise UnsupportedFeatureError(f"{'CEIL' if ceil else 'FLOOR'}(... TO {unit}) is not supported")
    if call.type(0) != "TIMESTAMPTZ":
        return rounded
    shifted = "make_timestamptz(epoch_us(__a0) + (epoch_us(__a1) - epoch_us(__a2)))"
    return sql(shifted, call.args[0], rounded, wall)


# --- TIMESTAMPDIFF ------------------------------------------------------------------------------

_MILLIS = {"SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000, "WEEK": 604_800_000}
# Calcite's month difference: whole months from a to b by date (day clamped to the month's end),
# one less when b falls on that day at an earlier time.
_MONTHS = """(CASE WHEN __a1 IS NULL OR __a0 IS NULL THEN NULL ELSE (
  CASE WHEN CAST(__a1 AS DATE) >= CAST(__a0 AS DATE)
    THEN __a2 - CAST(CAST(__a0 AS DATE) + to_months(CAST(__a2 AS INTEGER)) > CAST(__a1 AS DATE) AS INTEGER)
    ELSE __a2 + CAST(CAST(__a1 AS DATE) + to_months(CAST(-__a2 AS INTEGER)) > CAST(__a0 AS DATE) AS INTEGER)
  END) END)"""
_MONTH_ESTIMATE = "(12 * (year(__a1) - year(__a0)) + month(__a1) - month(__a0))"
_TIE = """(__a2 - CAST(CAST(__a0 AS DATE) + to_months(CAST(__a2 AS INTEGER)) = CAST(__a1 AS DATE)
  AND CAST(__a1 AS TIME) < CAST(__a0 AS TIME) AS INTEGER))"""


def timestampdiff(call: Call, unit: str) -> exp.Expression:
    """TIMESTAMPDIFF(unit, a, b): whole units from a to b, truncated toward zero (an INT)."""
    start, end = call.args
    if unit in _MILLIS:
        return sql(f"CAST((epoch_ms(__a1) - epoch_ms(__a0)) // {_MILLIS[unit]} AS INTEGER)", start, end)
    if unit not in ("MONTH", "QUARTER", "YEAR"):
        raise UnsupportedFeatureError(f"TIMESTAMPDIFF({unit}, ...) is not supported")
    a, b = call.wall(0), call.wall(1)
    months = sql(_MONTHS, a, b, sql(_MONTH_ESTIMATE, a, b))
    months = sql(_TIE, a, b, months)
    per = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[unit]
    return sql(f"CAST(__a0 // {per} AS INTEGER)", months)


# --- TIMESTAMPADD -------------------------------------------------------------------------------

# DuckDB interval of n units (n an integer expression __a0).
_STEPS = {
    "MILLISECOND": "to_milliseconds(CAST(__a0 AS BIGINT))",
    "SECOND": "to_seconds(CAST(__a0 AS BIGINT))",
    "MINUTE": "to_minutes(CAST(__a0 AS BIGINT))",
    "HOUR": "to_hours(CAST(__a0 AS BIGINT))",
    "DAY": "to_days(CAST(__a0 AS INTEGER))",
    "WEEK": "to_days(CAST(__a0 AS INTEGER) * 7)",
    "MONTH": "to_months(CAST(__a0 AS INTEGER))",
    "QUARTER": "to_months(CAST(__a0 AS INTEGER) * 3)",
    "YEAR": "to_years(CAST(__a0 AS INTEGER))",
}
_DATE_UNITS = ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR")


def timestampadd(call: Call, unit: str) -> exp.Expression:
    """TIMESTAMPADD(unit, n, x): x moved by n units; a month past the end of the shorter month lands
    on its last day (2024-01-31 + 1 MONTH is 2024-02-29). A DATE stays a DATE for DAY and longer
    units and becomes a TIMESTAMP for shorter ones; a TIMESTAMP_LTZ moves on the UTC calendar (in
    Asia/Shanghai, 2024-03-01 07:59 + 1 MONTH is 2024-03-30 07:59)."""
    if unit not in _STEPS:
        raise UnsupportedFeatureError(f"TIMESTAMPADD({unit}, ...) is not supported")
    count, value = call.args
    step = sql(_STEPS[unit], count)
    kind = call.type(1)
    if kind == "DATE":
        moved = sql("__a0 + __a1", value, step)
        return (
            sql("CAST(__a0 AS DATE)", moved) if unit in _DATE_UNITS else sql("CAST(__a0 AS TIMESTAMP)", moved)
        )
    if kind != "TIMESTAMPTZ":
        return sql("CAST(__a0 + __a1 AS TIMESTAMP)", value, step)
    # An instant moves on the UTC calendar, whatever the session zone (as Flink does).
    return sql("make_timestamptz(epoch_us(make_timestamp(epoch_us(__a0)) + __a1))", value, step)


def _convert_tz(call: Call) -> exp.Expression:
    """CONVERT_TZ(text, from, to): text read as 'yyyy-MM-dd HH:mm:ss' (SimpleDateFormat: a fraction
    is ignored, a date alone is NULL) in zone `from`, written in zone `to` the same way."""
    call.arity(3)
    text, source, target = call.args
    local = _simple_parse(text, DEFAULT_FORMAT)
    moved = sql("timezone(__a2, timezone(__a1, __a0))", local, source, target)
    return sql("strftime(__a0, '%Y-%m-%d %H:%M:%S')", moved)


# --- formatting and parsing -----------------------------------------------------------------------


def _pattern(call: Call, i: int, default: str = DEFAULT_FORMAT) -> str:
    return default if len(call.args) <= i else literal_string(call.args[i], "the format")


def _date_format(call: Call) -> exp.Expression:
    """DATE_FORMAT(ts, pattern) with DateTimeFormatter; DATE_FORMAT(string, pattern) reads the
    string as 'yyyy-MM-dd HH:mm:ss' and formats with SimpleDateFormat, as Flink does."""
    call.arity(1, 2)
    pattern = _pattern(call, 1)
    if call.type(0) == "DATE":
        raise SqlValidationError("Cannot apply 'DATE_FORMAT' to a DATE: it takes a TIMESTAMP or a STRING")
    if call.type(0) == "VARCHAR":
        return format_expression(_simple_parse(call.args[0], DEFAULT_FORMAT), pattern, SIMPLE)
    return format_expression(call.wall(0), pattern, JAVA_TIME)


def _epoch_seconds_wall(call: Call) -> exp.Expression:
    seconds = sql("CAST(__a0 AS BIGINT)", call.args[0])
    if call.utc:
        return sql("make_timestamp(__a0 * 1000000)", seconds)
    return sql("CAST(to_timestamp(__a0) AS TIMESTAMP)", seconds)


def _from_unixtime(call: Call) -> exp.Expression:
    """FROM_UNIXTIME(seconds[, pattern]): SimpleDateFormat in the session time zone."""
    call.arity(1, 2)
    return format_expression(_epoch_seconds_wall(call), _pattern(call, 1), SIMPLE)


def _strptime(text: exp.Expression, pattern: str, flavor: str) -> exp.Expression:
    """try_strptime of `text`; a pattern without a year reads year 1970 (Flink's default), not
    DuckDB's 1900."""
    fmt, has_year = strptime_format(pattern, flavor)
    if has_year:
        return sql(f"try_strptime(__a0, {quote(fmt)})", text)
    return sql(f"try_strptime('1970 ' || __a0, {quote('%Y ' + fmt)})", text)


def _simple_parse(text: exp.Expression, pattern: str) -> exp.Expression:
    """SimpleDateFormat.parse: reads the prefix the pattern matches, ignores the rest; NULL if none.
    It is lenient: a number beyond its field carries into the next ('2024-02-30' is 2024-03-01,
    '25:00' the next day's 01:00). So a pattern of numbers is read field by field and added up as
    GregorianCalendar does (months to the year's January 1st, then days, then time); others are
    read strictly by strptime."""
    lenient = lenient_regex(pattern)
    if lenient is None:
        prefix = sql(f"regexp_extract(CAST(__a0 AS VARCHAR), {quote(prefix_regex(pattern))})", text)
        return _strptime(prefix, pattern, SIMPLE)
    regex, groups = lenient
    defaults = {"year": 1970, "month": 1, "day": 1}

    def field(name: str) -> str:
        if name not in groups:
            return str(defaults.get(name, 0))
        return f"CAST(regexp_extract(__a0, {quote(regex)}, {groups[name]}) AS BIGINT)"

    time = f"(({field('hour')} * 60 + {field('minute')}) * 60 + {field('second')}) * 1000"
    return sql(
        f"CASE WHEN regexp_matches(__a0, {quote(regex)}) THEN make_timestamp({field('year')}, 1, 1, 0, 0, 0)"
        f" + to_months({field('month')} - 1) + to_days({field('day')} - 1)"
        f" + to_milliseconds({time} + {field('millisecond')}) END",
        sql("CAST(__a0 AS VARCHAR)", text),
    )


def _unix_timestamp(call: Call) -> exp.Expression:
    """UNIX_TIMESTAMP(): now; UNIX_TIMESTAMP(string[, pattern]): the string read as local time of the
    session zone, in epoch seconds. Unreadable text gives Long.MIN_VALUE, as in Flink."""
    call.arity(0, 1, 2)
    if not call.args:
        return sql("CAST(epoch(now()) AS BIGINT)")
    local = _simple_parse(call.args[0], _pattern(call, 1))
    instant = local if call.utc else sql(f"timezone({quote(call.zone)}, __a0)", local)
    return sql(
        f"CASE WHEN __a0 IS NULL THEN NULL ELSE coalesce(epoch_ms(__a1) // 1000, {_LONG_MIN}) END",
        call.args[0],
        instant,
    )


# Timestamp.valueOf / Date.valueOf, Flink's fallback when the pattern does not match. (%n makes a
# TIMESTAMP_NS, which ends in 2262: as such, coalesce would fail on a later first argument.)
_FALLBACK = (
    "CAST(try_strptime(trim(__a0), ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M:%S.%n', '%Y-%m-%d']) AS TIMESTAMP)"
)


def _to_timestamp(call: Call) -> exp.Expression:
    """TO_TIMESTAMP(string): as CAST(string AS TIMESTAMP(3)). TO_TIMESTAMP(string, pattern):
    DateTimeFormatter, else 'yyyy-[m]m-[d]d[ hh:mm:ss[.f]]'; milliseconds kept. (With a pattern
    Flink moves a day past the month's end back to its last day, and its fallback is lenient:
    not done here, such text is NULL.)"""
    call.arity(1, 2)
    text = sql("CAST(__a0 AS VARCHAR)", call.args[0])
    if len(call.args) == 1:
        return sql("date_trunc('millisecond', __a0)", timestamp_from_text(text))
    parsed = sql("coalesce(__a0, __a1)", _strptime(text, _pattern(call, 1), JAVA_TIME), sql(_FALLBACK, text))
    return sql("date_trunc('millisecond', __a0)", parsed)


def _to_date(call: Call) -> exp.Expression:
    """TO_DATE(string): as CAST(string AS DATE). TO_DATE(string, pattern): SimpleDateFormat.
    (Flink turns unreadable text into a date from Long.MIN_VALUE; we give NULL, and for a year
    outside 1-9999, which Python's dates cannot hold.)"""
    call.arity(1, 2)
    if len(call.args) == 1:
        return date_from_text(sql("CAST(__a0 AS VARCHAR)", call.args[0]))
    parsed = _simple_parse(call.args[0], _pattern(call, 1))
    return sql("CASE WHEN year(__a0) BETWEEN 1 AND 9999 THEN CAST(__a0 AS DATE) END", parsed)


def _to_timestamp_ltz(call: Call) -> exp.Expression:
    """TO_TIMESTAMP_LTZ(epoch[, precision]): precision 3 (the default) reads epoch milliseconds,
    0 epoch seconds, as in Flink."""
    call.arity(1, 2)
    precision = call.args[1] if len(call.args) == 2 else exp.Literal.number(3)
    if not (isinstance(precision, exp.Literal) and precision.this in ("0", "3")):
        raise SqlValidationError(
            "TO_TIMESTAMP_LTZ's precision must be 0 (epoch seconds) or 3 (epoch milliseconds)"
        )
    micros_per_unit = 1_000_000 if precision.this == "0" else 1000
    return sql(f"make_timestamptz(CAST(__a0 AS BIGINT) * {micros_per_unit})", call.args[0])


TIME_FUNCTIONS: dict[str, Builder] = {
    "DATE_FORMAT": _date_format,
    "TO_TIMESTAMP": _to_timestamp,
    "TO_TIMESTAMP_LTZ": _to_timestamp_ltz,
    "TO_DATE": _to_date,
    "FROM_UNIXTIME": _from_unixtime,
    "UNIX_TIMESTAMP": _unix_timestamp,
    "CONVERT_TZ": _convert_tz,
    "PROCTIME": template("CAST(now() AS TIMESTAMPTZ)", (0,)),
    "NOW": template("CAST(now() AS TIMESTAMPTZ)", (0,)),
    "CURRENT_TIMESTAMP": template("CAST(now() AS TIMESTAMPTZ)", (0,)),
    "LOCALTIMESTAMP": template("CAST(now() AS TIMESTAMP)", (0,)),
    "HOUR": _part("HOUR"),
    "MINUTE": _part("MINUTE"),
    "SECOND": _part("SECOND"),
    "YEAR": _part("YEAR"),
    "MONTH": _part("MONTH"),
    "DAYOFMONTH": _part("DAY"),
    "DAYOFYEAR": _part("DOY"),
    "DAYOFWEEK": _part("DOW"),
    "WEEK": _part("WEEK"),
    "QUARTER": _part("QUARTER"),
}

# Result types (DuckDB) of the functions above, for the casts and formats that depend on them.
TIME_RESULT_TYPES = {
    "DATE_FORMAT": "VARCHAR",
    "FROM_UNIXTIME": "VARCHAR",
    "TO_TIMESTAMP": "TIMESTAMP",
    "LOCALTIMESTAMP": "TIMESTAMP",
    "TO_TIMESTAMP_LTZ": "TIMESTAMPTZ",
    "PROCTIME": "TIMESTAMPTZ",
    "NOW": "TIMESTAMPTZ",
    "CURRENT_TIMESTAMP": "TIMESTAMPTZ",
    "TO_DATE": "DATE",
    "UNIX_TIMESTAMP": "BIGINT",
    "CONVERT_TZ": "VARCHAR",
    **{name: "BIGINT" for name in ("HOUR", "MINUTE", "SECOND", "YEAR", "MONTH", "DAYOFMONTH")},
    **{name: "BIGINT" for name in ("DAYOFYEAR", "DAYOFWEEK", "WEEK", "QUARTER")},
}
