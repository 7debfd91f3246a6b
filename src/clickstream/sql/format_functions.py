"""Java date-time patterns ('yyyy-MM-dd HH:mm') as DuckDB expressions, letter by letter.

Flink formats and parses with two Java classes, and the letters mean different things in each:

- `DateTimeFormatter` (JAVA_TIME): DATE_FORMAT of a TIMESTAMP or TIMESTAMP_LTZ, TO_TIMESTAMP's
  format. `u` is the year, `S` a fraction of the second (`S` = tenths), `F` the aligned day of the
  week in the month (JDK 17), `e`/`c` the localized day of the week, `n`/`N`/`A` nanos and millis.
  Zone letters fail (a LocalDateTime has no zone); an unknown letter fails.
- `SimpleDateFormat` (SIMPLE): FROM_UNIXTIME, DATE_FORMAT of a STRING, UNIX_TIMESTAMP's and
  TO_DATE's format. `u` is the ISO day of the week, `S` milliseconds, `F` the day-of-week-in-month
  ordinal; every number is padded to the letter count.

Both use Locale US: weeks start on Sunday and week 1 is the week of January 1st (`w`, `W`, `Y`).
A letter DuckDB's strftime has (`%Y`, `%m`, `%-d`, `%b`, ...) stays in one strftime call; the
others are small expressions on the wall-clock TIMESTAMP, concatenated with `||`, so DATE_FORMAT
stays one vectorized expression whatever the pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.sql.base_functions import quote, sql

JAVA_TIME = "DateTimeFormatter"
SIMPLE = "SimpleDateFormat"

# Values a letter may need, as DuckDB SQL over the wall clock __a0 (a TIMESTAMP).
_YEAR = "year(__a0)"
_DAY = "day(__a0)"
_HOUR = "hour(__a0)"
_DOY = "dayofyear(__a0)"
_QUARTER = "quarter(__a0)"
_DOW_SUNDAY_1 = "(dayofweek(__a0) + 1)"
# Locale US weeks (Sunday first, week 1 holds January 1st): a week belongs to the year of its
# Saturday, and is numbered from that Saturday's day of the year.
_SATURDAY = "(CAST(__a0 AS DATE) + CAST(6 - dayofweek(__a0) AS INTEGER))"
_WEEK_YEAR = f"year({_SATURDAY})"
_WEEK_OF_YEAR = f"((dayofyear({_SATURDAY}) - 1) // 7 + 1)"
_WEEK_OF_MONTH = "((day(__a0) - 1 + dayofweek(date_trunc('month', __a0))) // 7 + 1)"
_MILLI_OF_DAY = "(epoch_ms(__a0) - epoch_ms(date_trunc('day', __a0)))"
_NANO_OF_DAY = "((epoch_us(__a0) - epoch_us(date_trunc('day', __a0))) * 1000)"
_NANO_OF_SECOND = "(microsecond(__a0) % 1000000 * 1000)"
_MILLI_OF_SECOND = "(microsecond(__a0) % 1000000 // 1000)"
_QUARTER_NAMES = (
    "CASE quarter(__a0) WHEN 1 THEN '1st quarter' WHEN 2 THEN '2nd quarter' WHEN 3 THEN '3rd quarter' "
    "ELSE '4th quarter' END"
)
_ZONE_LETTERS = "VvzOXxZ"


@dataclass(frozen=True)
class _Piece:
    """A strftime directive (`code`), or DuckDB SQL over __a0 giving text (`sql`)."""

    code: str | None = None
    sql: str | None = None


def _code(code: str) -> _Piece:
    return _Piece(code=code)


def _text(literal: str) -> _Piece:
    return _Piece(code=literal.replace("%", "%%"))


def _value(expression: str, width: int = 1) -> _Piece:
    """An integer, padded with zeros to `width` digits (Java pads, never truncates)."""
    if width <= 1:
        return _Piece(sql=f"CAST({expression} AS VARCHAR)")
    return _Piece(sql=f"printf('%0{width}d', {expression})")


def _words(expression: str) -> _Piece:
    return _Piece(sql=expression)


class _Pattern:
    """A tokenized Java pattern: (letter, count) fields and literal text."""

    def __init__(self, pattern: str, flavor: str) -> None:
        self.pattern, self.flavor = pattern, flavor
        self.tokens: list[tuple[str, int] | str] = []
        i, n = 0, len(pattern)
        while i < n:
            ch = pattern[i]
            if ch == "'":
                i = self._quoted(i)
            elif ch.isascii() and ch.isalpha():
                j = i
                while j < n and pattern[j] == ch:
                    j += 1
                self.tokens.append((ch, j - i))
                i = j
            elif flavor == JAVA_TIME and ch in "[]":
                i += 1  # optional sections: every field of a date-time is present
            elif flavor == JAVA_TIME and ch in "#{}":
                raise self.error(f"Pattern includes reserved character: '{ch}'")
            else:
                self.tokens.append(ch)
                i += 1

    def _quoted(self, i: int) -> int:
        """'text' is literal, '' is a quote (also inside quotes); returns the index after it."""
        if self.pattern[i + 1 : i + 2] == "'":
            self.tokens.append("'")
            return i + 2
        text, j = [], i + 1
        while True:
            if j >= len(self.pattern):
                raise self.error("Pattern ends with an incomplete string literal")
            if self.pattern[j] == "'":
                if self.pattern[j + 1 : j + 2] != "'":
                    break
                j += 1
            text.append(self.pattern[j])
            j += 1
        self.tokens.append("".join(text))
        return j + 1

    def error(self, why: str) -> SqlValidationError:
        return SqlValidationError(f"invalid {self.flavor} pattern '{self.pattern}': {why}")


def format_expression(wall: exp.Expression, pattern: str, flavor: str = JAVA_TIME) -> exp.Expression:
    """`wall` (a TIMESTAMP) formatted with the Java `pattern`, as Flink formats it."""
    parsed = _Pattern(pattern, flavor)
    field = _java_time_field if flavor == JAVA_TIME else _simple_field
    pieces = [_text(t) if isinstance(t, str) else field(parsed, *t) for t in parsed.tokens]
    parts: list[str] = []
    codes: list[str] = []
    for piece in pieces:
        if piece.code is not None:
            codes.append(piece.code)
            continue
        if codes:
            parts.append(f"strftime(__a0, {quote(''.join(codes))})")
            codes = []
        parts.append(str(piece.sql))
    if codes:
        parts.append(f"strftime(__a0, {quote(''.join(codes))})")
    if not parts:
        return sql("CASE WHEN __a0 IS NULL THEN NULL ELSE '' END", wall)
    return sql(parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")", wall)


def _limit(parsed: _Pattern, letter: str, count: int, most: int) -> None:
    if count > most:
        raise parsed.error(f"Too many pattern letters: {letter}")


def _java_time_field(parsed: _Pattern, letter: str, count: int) -> _Piece:  # noqa: C901 - one case per letter
    """One DateTimeFormatter field (DateTimeFormatterBuilder.parseField, JDK 17, Locale US)."""
    if letter in "uy":
        return _code("%y") if count == 2 else _code("%Y") if count == 4 else _value(_YEAR, count)
    if letter == "Y":
        return _value(f"{_WEEK_YEAR} % 100", 2) if count == 2 else _value(_WEEK_YEAR, count)
    if letter in "ML":
        _limit(parsed, letter, count, 5)
        return [_code("%-m"), _code("%m"), _code("%b"), _code("%B"), _words("left(strftime(__a0, '%B'), 1)")][
            count - 1
        ]
    if letter in "dhHms":
        _limit(parsed, letter, count, 2)
        directive = {"d": "d", "h": "I", "H": "H", "m": "M", "s": "S"}[letter]
        return _code(("%-" if count == 1 else "%") + directive)
    if letter == "k":
        _limit(parsed, letter, count, 2)
        return _value(f"CASE WHEN {_HOUR} = 0 THEN 24 ELSE {_HOUR} END", count)
    if letter == "K":
        _limit(parsed, letter, count, 2)
        return _value(f"{_HOUR} % 12", count)
    if letter == "D":
        _limit(parsed, letter, count, 3)
        return [_code("%-j"), _value(_DOY, 2), _code("%j")][count - 1]
    if letter == "S":
        _limit(parsed, letter, count, 9)
        if count == 3:
            return _code("%g")
        if count >= 6:
            return _code("%f" + "0" * (count - 6))
        return _words(f"left(strftime(__a0, '%f'), {count})")
    if letter in "Ee":
        _limit(parsed, letter, count, 5)
        if letter == "e" and count <= 2:
            return _value(_DOW_SUNDAY_1, count)
        return _day_name(count)
    if letter == "c":
        if count == 2:
            raise parsed.error('Invalid pattern "cc"')
        _limit(parsed, letter, count, 5)
        return _value(_DOW_SUNDAY_1) if count == 1 else _day_name(count)
    if letter in "Qq":
        _limit(parsed, letter, count, 5)
        if count == 3:
            return _words(f"'Q' || {_QUARTER}")
        return _words(_QUARTER_NAMES) if count == 4 else _value(_QUARTER, 2 if count == 2 else 1)
    if letter in "wWFa":
        _limit(parsed, letter, count, 2 if letter == "w" else 1)
        if letter == "a":
            return _code("%p")
        if letter == "F":  # ALIGNED_DAY_OF_WEEK_IN_MONTH in JDK 17
            return _value(f"(({_DAY} - 1) % 7 + 1)")
        return _value(_WEEK_OF_YEAR if letter == "w" else _WEEK_OF_MONTH, count)
    if letter == "G":
        _limit(parsed, letter, count, 5)
        return _text("AD" if count <= 3 else "Anno Domini" if count == 4 else "A")
    if letter in "nNA":
        return _value({"n": _NANO_OF_SECOND, "N": _NANO_OF_DAY, "A": _MILLI_OF_DAY}[letter], count)
    if letter in _ZONE_LETTERS:
        raise SqlValidationError(
            f"DATE_FORMAT pattern letter '{letter}' needs a time zone, and Flink formats a LocalDateTime "
            "(java.time.DateTimeException: Unable to extract ZoneId)"
        )
    if letter in "Bgp":
        raise UnsupportedFeatureError(f"pattern letter '{letter}' is not supported")
    raise parsed.error(f"Unknown pattern letter: {letter}")


def _day_name(count: int) -> _Piece:
    if count == 4:
        return _code("%A")
    return _words("left(strftime(__a0, '%A'), 1)") if count == 5 else _code("%a")


_SIMPLE_NUMBERS = {
    "d": (_DAY, "d"),
    "H": (_HOUR, "H"),
    "m": ("minute(__a0)", "M"),
    "s": ("second(__a0)", "S"),
    "h": ("CASE WHEN hour(__a0) % 12 = 0 THEN 12 ELSE hour(__a0) % 12 END", "I"),
    "k": (f"CASE WHEN {_HOUR} = 0 THEN 24 ELSE {_HOUR} END", None),
    "K": (f"{_HOUR} % 12", None),
    "D": (_DOY, None),
    "w": (_WEEK_OF_YEAR, None),
    "W": (_WEEK_OF_MONTH, None),
    "F": (f"(({_DAY} - 1) // 7 + 1)", None),
    "u": ("isodow(__a0)", None),
    "S": (_MILLI_OF_SECOND, None),
}


def _simple_field(parsed: _Pattern, letter: str, count: int) -> _Piece:
    """One SimpleDateFormat field (Locale US): numbers are padded to the letter count."""
    if letter in _SIMPLE_NUMBERS:
        value, directive = _SIMPLE_NUMBERS[letter]
        if directive is not None and count <= 2:
            return _code(("%-" if count == 1 else "%") + directive)
        return _value(value, count)
    if letter == "y":
        return _code("%y") if count == 2 else _code("%Y") if count == 4 else _value(_YEAR, count)
    if letter == "Y":
        return _value(f"{_WEEK_YEAR} % 100", 2) if count == 2 else _value(_WEEK_YEAR, count)
    if letter in "ML":
        return _code(["%-m", "%m", "%b", "%B"][min(count, 4) - 1])
    if letter == "E":
        return _code("%A" if count >= 4 else "%a")
    if letter == "a":
        return _code("%p")
    if letter == "G":
        return _text("AD")
    if letter in "zZX":
        raise UnsupportedFeatureError(f"pattern letter '{letter}' (a time zone) is not supported")
    raise parsed.error(f"Illegal pattern character '{letter}'")


# --- parsing ------------------------------------------------------------------------------------

_STRPTIME = {
    ("y", 2): "%y",
    ("M", 1): "%m",
    ("M", 2): "%m",
    ("M", 3): "%b",
    ("M", 4): "%B",
    ("d", 1): "%d",
    ("d", 2): "%d",
    ("H", 1): "%H",
    ("H", 2): "%H",
    ("h", 1): "%I",
    ("h", 2): "%I",
    ("m", 1): "%M",
    ("m", 2): "%M",
    ("s", 1): "%S",
    ("s", 2): "%S",
    ("a", 1): "%p",
    ("E", 3): "%a",
    ("E", 4): "%A",
    ("D", 3): "%j",
}


def strptime_format(pattern: str, flavor: str) -> tuple[str, bool]:
    """(DuckDB strptime format, whether the pattern has a year) for a Java parsing pattern."""
    parsed = _Pattern(pattern, flavor)
    out: list[str] = []
    has_year = False
    for token in parsed.tokens:
        if isinstance(token, str):
            out.append(token.replace("%", "%%"))
            continue
        letter, count = token
        if letter == "y" or (letter == "u" and flavor == JAVA_TIME):
            has_year = True
            out.append("%y" if count == 2 else "%Y")
        elif letter == "S":
            out.append({3: "%g", 6: "%f", 9: "%n"}.get(count, "%f"))
        elif (letter, min(count, 4)) in _STRPTIME:
            out.append(_STRPTIME[(letter, min(count, 4))])
        else:
            raise UnsupportedFeatureError(f"parsing with pattern letter '{letter}' is not supported")
    return "".join(out), has_year


def prefix_regex(pattern: str) -> str:
    """A regular expression for the text SimpleDateFormat.parse reads with `pattern` (it reads a
    prefix and ignores the rest): numbers take any digits, or exactly the letter count when
    another number follows directly."""
    parsed = _Pattern(pattern, SIMPLE)
    out = []
    for i, token in enumerate(parsed.tokens):
        if isinstance(token, str):
            out.append(re.escape(token))
            continue
        letter, count = token
        if letter in "aE" or (letter in "ML" and count >= 3):
            out.append("[A-Za-z]+")
            continue
        following = parsed.tokens[i + 1] if i + 1 < len(parsed.tokens) else None
        abutting = isinstance(following, tuple) and not (following[0] in "ML" and following[1] >= 3)
        out.append(rf"\d{{{count}}}" if abutting else r"[+-]?\d+")
    return "^" + "".join(out)


# SimpleDateFormat letters that read a plain number, and the calendar field each sets.
_CALENDAR_FIELDS = {
    "y": "year",
    "M": "month",
    "d": "day",
    "H": "hour",
    "m": "minute",
    "s": "second",
    "S": "millisecond",
}


def lenient_regex(pattern: str) -> tuple[str, dict[str, int]] | None:
    """For a SimpleDateFormat pattern of numbers only (y of 3+ letters, M of 1-2, d, H, m, s, S):
    a regular expression for the prefix `parse` reads, and the group (from 1) that holds each
    calendar field. A number may follow spaces or tabs and have a minus; when another number
    follows directly it is the letter count of characters, minus included ('yyyyMMdd' reads
    '2024-13-01' as 2024, -1, 3). (Java reads fewer when a non-digit comes sooner, '1-' as 1;
    a regular expression without lookahead cannot say so, so that is not matched.) None for any
    other pattern (two-digit years, names, AM/PM, ...), which is read strictly."""
    parsed = _Pattern(pattern, SIMPLE)
    out: list[str] = []
    groups: dict[str, int] = {}
    for i, token in enumerate(parsed.tokens):
        if isinstance(token, str):
            out.append(re.escape(token))
            continue
        letter, count = token
        if letter not in _CALENDAR_FIELDS or (letter == "y" and count <= 2) or (letter == "M" and count > 2):
            return None
        following = parsed.tokens[i + 1] if i + 1 < len(parsed.tokens) else None
        if not isinstance(following, tuple):
            out.append(r"[ \t]*(-?\d+)")
        else:
            out.append(rf"[ \t]*(-\d{{{count - 1}}}|\d{{{count}}})" if count > 1 else r"[ \t]*(\d)")
        groups[_CALENDAR_FIELDS[letter]] = len(groups) + 1  # a field given twice: the last wins
    return "^" + "".join(out), groups
