"""Flink scalar functions, rewritten into DuckDB expressions.

`translate(node, resolve)` walks a Flink expression, resolves column references through `resolve`
(which raises a positioned error for an unknown column) and returns DuckDB SQL. Functions sqlglot
already models with the same meaning in both engines pass through; the rest are rewritten here, one
entry per Flink function. An unknown function is an error that names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.sql.expressions import Descriptor, TableArg, WindowTvf
from clickstream.sql.types import datatype_names

Resolver = Callable[[exp.Column], exp.Expression]
# The DuckDB type of a column a query names (for the rules that depend on types, such as INT / INT).
ColumnType = Callable[[exp.Column], str]

_INTEGRAL = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")
_FRACTIONAL = ("FLOAT", "DOUBLE", "REAL")

# Java DateTimeFormatter / SimpleDateFormat letters -> strftime.
_JAVA_PATTERN = [
    ("yyyy", "%Y"),
    ("yy", "%y"),
    ("MMMM", "%B"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("M", "%-m"),
    ("dd", "%d"),
    ("d", "%-d"),
    ("HH", "%H"),
    ("H", "%-H"),
    ("hh", "%I"),
    ("h", "%-I"),
    ("mm", "%M"),
    ("m", "%-M"),
    ("ss", "%S"),
    ("s", "%-S"),
    ("SSSSSS", "%f"),
    ("SSS", "%g"),
    ("a", "%p"),
    ("EEEE", "%A"),
    ("EEE", "%a"),
    ("E", "%a"),
    ("DDD", "%j"),
    ("Z", "%z"),
    ("XXX", "%z"),
    ("X", "%z"),
    ("z", "%Z"),
]
_JAVA_TOKEN = re.compile("|".join(re.escape(j) for j, _ in _JAVA_PATTERN) + r"|'[^']*'|.", re.S)


def java_to_strftime(pattern: str) -> str:
    """'yyyy-MM-dd HH:mm:ss' -> '%Y-%m-%d %H:%M:%S'; quoted text ('T') is kept literally."""
    table = dict(_JAVA_PATTERN)
    out = []
    for token in _JAVA_TOKEN.findall(pattern):
        if token in table:
            out.append(table[token])
        elif token.startswith("'") and token.endswith("'") and len(token) >= 2:
            out.append(token[1:-1].replace("%", "%%") or "'")
        else:
            out.append(token.replace("%", "%%"))
    return "".join(out)


def _literal_string(node: exp.Expression, what: str) -> str:
    if isinstance(node, exp.Literal) and node.is_string:
        return node.this
    raise UnsupportedFeatureError(f"{what} must be a string literal")


def _sql(text: str) -> exp.Expression:
    return sqlglot.parse_one(text, read="duckdb")


def _fmt(node: exp.Expression | None, default: str) -> str:
    pattern = default if node is None else _literal_string(node, "the format")
    return java_to_strftime(pattern).replace("'", "''")


def _date_format(args: list[exp.Expression]) -> exp.Expression:
    value, pattern = args[0], _fmt(args[1] if len(args) > 1 else None, "yyyy-MM-dd HH:mm:ss")
    return _sql(f"strftime(__a0, '{pattern}')").transform(_bind(value))


def _to_timestamp(args: list[exp.Expression]) -> exp.Expression:
    if len(args) == 1:
        return _sql("TRY_CAST(__a0 AS TIMESTAMP)").transform(_bind(args[0]))
    pattern = _fmt(args[1], "yyyy-MM-dd HH:mm:ss")
    return _sql(f"try_strptime(CAST(__a0 AS VARCHAR), '{pattern}')").transform(_bind(args[0]))


def _bind(*values: exp.Expression):
    """Replace placeholders __a0, __a1 ... in a template with the given expressions."""

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name.startswith("__a") and not node.table:
            return values[int(node.name[3:])].copy()
        return node

    return replace


def _template(text: str, arity: tuple[int, ...] | None = None):
    def build(args: list[exp.Expression]) -> exp.Expression:
        if arity is not None and len(args) not in arity:
            raise SqlValidationError(f"wrong number of arguments ({len(args)})")
        return _sql(text).transform(_bind(*args))

    return build


def _concat(args: list[exp.Expression]) -> exp.Expression:
    # Flink's CONCAT is NULL if any argument is NULL; DuckDB's concat() skips NULLs, `||` does not.
    result = args[0]
    for arg in args[1:]:
        result = exp.DPipe(this=result, expression=arg, safe=False)
    return exp.Paren(this=result)


def _to_timestamp_ltz(args: list[exp.Expression]) -> exp.Expression:
    """TO_TIMESTAMP_LTZ(epoch[, precision]): precision 3 (the default) reads epoch milliseconds,
    0 epoch seconds, as in Flink."""
    if len(args) not in (1, 2):
        raise SqlValidationError(f"wrong number of arguments ({len(args)})")
    precision = args[1] if len(args) == 2 else exp.Literal.number(3)
    if not (isinstance(precision, exp.Literal) and precision.this in ("0", "3")):
        raise SqlValidationError(
            "TO_TIMESTAMP_LTZ's precision must be 0 (epoch seconds) or 3 (epoch milliseconds)"
        )
    micros_per_unit = 1_000_000 if precision.this == "0" else 1000
    return _sql(f"make_timestamptz(CAST(__a0 AS BIGINT) * {micros_per_unit})").transform(_bind(args[0]))


def _floor_ceil(name: str):
    def build(args: list[exp.Expression]) -> exp.Expression:
        return _sql(f"{name}(__a0)").transform(_bind(args[0]))

    return build


# Flink name -> builder from translated arguments.
FUNCTIONS: dict[str, Callable[[list[exp.Expression]], exp.Expression]] = {
    "DATE_FORMAT": _date_format,
    "TO_TIMESTAMP": _to_timestamp,
    "TO_TIMESTAMP_LTZ": _to_timestamp_ltz,
    "TO_DATE": _template("TRY_CAST(__a0 AS DATE)", (1,)),
    "PROCTIME": _template("CAST(now() AS TIMESTAMPTZ)", (0,)),
    "NOW": _template("CAST(now() AS TIMESTAMPTZ)", (0,)),
    "CURRENT_TIMESTAMP": _template("CAST(now() AS TIMESTAMPTZ)", (0,)),
    "LOCALTIMESTAMP": _template("CAST(now() AS TIMESTAMP)", (0,)),
    "UNIX_TIMESTAMP": _template("CAST(epoch(now()) AS BIGINT)", (0,)),
    "FROM_UNIXTIME": _template(
        "strftime(make_timestamp(CAST(__a0 AS BIGINT) * 1000000), '%Y-%m-%d %H:%M:%S')", (1,)
    ),
    "HOUR": _template("hour(__a0)", (1,)),
    "MINUTE": _template("minute(__a0)", (1,)),
    "SECOND": _template("second(__a0)", (1,)),
    "YEAR": _template("year(__a0)", (1,)),
    "MONTH": _template("month(__a0)", (1,)),
    "DAYOFMONTH": _template("day(__a0)", (1,)),
    "DAYOFYEAR": _template("dayofyear(__a0)", (1,)),
    "DAYOFWEEK": _template("(dayofweek(__a0) + 1)", (1,)),
    "WEEK": _template("week(__a0)", (1,)),
    "QUARTER": _template("quarter(__a0)", (1,)),
    "SUBSTR": _template("substr(__a0, __a1)", (2,)),
    "CONCAT": _concat,
    "CONCAT_WS": _template("concat_ws(__a0, __a1, __a2)", (3,)),
    "IFNULL": _template("coalesce(__a0, __a1)", (2,)),
    "CHAR_LENGTH": _template("length(__a0)", (1,)),
    "CHARACTER_LENGTH": _template("length(__a0)", (1,)),
    # Flink: each run of letters and digits starts upper case and goes on lower case.
    "INITCAP": _template(
        r"array_to_string(list_transform(regexp_extract_all(__a0, '[\p{L}\p{N}]+|[^\p{L}\p{N}]+'), "
        "lambda t: upper(t[1]) || lower(t[2:])), '')",
        (1,),
    ),
    "SPLIT_INDEX": _template("split_part(__a0, __a1, __a2 + 1)", (3,)),
    "REGEXP_EXTRACT": _template("regexp_extract(__a0, __a1, __a2)", (3,)),
    "MD5": _template("md5(__a0)", (1,)),
    "MOD": _template("(__a0 % __a1)", (2,)),
    "POWER": _template("power(__a0, __a1)", (2,)),
    "LOG10": _template("log10(__a0)", (1,)),
    "LN": _template("ln(__a0)", (1,)),
    "RAND": _template("random()", (0,)),
    "UUID": _template("CAST(uuid() AS VARCHAR)", (0,)),
}

# sqlglot nodes whose DuckDB rendering already has Flink's meaning.
PASS_THROUGH: tuple[type[exp.Expression], ...] = (
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Star,
    exp.Paren,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Case,
    exp.If,
    exp.Coalesce,
    exp.Lower,
    exp.Upper,
    exp.Trim,
    exp.Abs,
    exp.Round,
    exp.Sqrt,
    exp.Ln,
    exp.Exp,
    exp.Pow,
    exp.Interval,
    exp.Var,
    exp.DataType,
    exp.Substring,
    exp.Hour,
    exp.Length,
    exp.Replace,
    exp.RegexpReplace,
    exp.RegexpLike,
    exp.Concat,
    exp.Greatest,
    exp.Least,
    exp.Ceil,
    exp.Floor,
    exp.Tuple,
    exp.Identifier,
    exp.DPipe,
    exp.Nullif,
    exp.Pad,
    exp.StrPosition,
    exp.Sign,
    exp.CurrentTimestamp,
    exp.CurrentDate,
    exp.Year,
    exp.Month,
    exp.Day,
    exp.Week,
    exp.Quarter,
    exp.Order,
    exp.Ordered,
    exp.Distinct,
    exp.Bracket,
    exp.DayOfWeek,
    exp.DayOfYear,
    exp.DayOfMonth,
    exp.MD5,
    exp.Log,
    exp.Rand,
    exp.Uuid,
    exp.Split,
    exp.Left,
    exp.Right,
    exp.Reverse,
    exp.Repeat,
    exp.Levenshtein,
    exp.RegexpExtract,
    exp.UnixToStr,
    exp.Pad,
    exp.ConcatWs,
)


# Functions that read the wall-clock fields of their first argument.
WALL_CLOCK = (
    "DATE_FORMAT",
    "HOUR",
    "MINUTE",
    "SECOND",
    "YEAR",
    "MONTH",
    "DAYOFMONTH",
    "DAYOFYEAR",
    "DAYOFWEEK",
    "WEEK",
    "QUARTER",
)


def translate(
    node: exp.Expression, resolve: Resolver, time_zone: str = "UTC", column_type: ColumnType | None = None
) -> exp.Expression:
    """A DuckDB expression equal in meaning to the Flink expression `node`."""
    return _Translator(resolve, time_zone, column_type).visit(node.copy())


def numeric_kind(node: exp.Expression, column_type: ColumnType | None) -> str | None:
    """'integral', 'decimal' or 'fractional' for a Flink numeric expression whose kind follows from
    its parts (columns, literals, arithmetic, casts); None when it does not, or is not numeric."""
    if isinstance(node, exp.Paren | exp.Neg):
        return numeric_kind(node.this, column_type)
    if isinstance(node, exp.Column):
        duck = column_type(node) if column_type else ""
        return _kind_of_type(duck)
    if isinstance(node, exp.Literal) and not node.is_string:
        text = node.this.lower()
        return "fractional" if "e" in text else "decimal" if "." in text else "integral"
    if isinstance(node, exp.Cast):
        return _kind_of_type(datatype_names(node.to)[1])
    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod):
        kinds = {numeric_kind(node.this, column_type), numeric_kind(node.expression, column_type)}
        if None in kinds:
            return None
        return next(k for k in ("fractional", "decimal", "integral") if k in kinds)
    return None


def _kind_of_type(duck: str) -> str | None:
    if duck in _INTEGRAL:
        return "integral"
    if duck in _FRACTIONAL:
        return "fractional"
    return "decimal" if duck.startswith("DECIMAL") else None


def to_duckdb_sql(node: exp.Expression) -> str:
    return node.sql(dialect="duckdb")


class _Translator:
    def __init__(self, resolve: Resolver, time_zone: str, column_type: ColumnType | None = None) -> None:
        self.resolve = resolve
        self.column_type = column_type
        self.utc = time_zone.upper() in ("UTC", "Z", "GMT", "ETC/UTC")

    def visit(self, node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column):
            return self.resolve(node)
        if isinstance(node, exp.Cast):
            return self._cast(node)
        if isinstance(node, exp.Div) and self._integral(node.this) and self._integral(node.expression):
            return self._integer_division(node)
        name = _function_name(node)
        if name is not None and name in FUNCTIONS:
            args = [self.visit(a) for a in _function_args(node)]
            if self.utc and name in WALL_CLOCK and args:
                # In UTC the wall clock is the epoch itself: skip DuckDB's ICU time zone
                # conversion, by far the slowest part of DATE_FORMAT / HOUR on an instant.
                args[0] = _sql("make_timestamp(epoch_us(TRY_CAST(__a0 AS TIMESTAMPTZ)))").transform(
                    _bind(args[0])
                )
            try:
                return FUNCTIONS[name](args)
            except SqlValidationError as error:
                raise _positioned(SqlValidationError, f"{name}: {error.message}", node) from None
        if isinstance(node, (TableArg, Descriptor, WindowTvf)):
            raise _positioned(
                UnsupportedFeatureError, "a window table function can only be used in FROM", node
            )
        if isinstance(node, exp.AggFunc):
            raise _positioned(
                SqlValidationError, f"aggregate {node.sql(dialect='duckdb')} is not allowed here", node
            )
        if not isinstance(node, PASS_THROUGH):
            label = name or type(node).__name__.upper()
            raise _positioned(
                SqlValidationError,
                f"No match found for function '{label}'",
                node,
                hint="See the README for the supported functions.",
            )
        for key, value in list(node.args.items()):
            if isinstance(value, exp.Expression):
                node.set(key, self.visit(value))
            elif isinstance(value, list):
                node.set(key, [self.visit(v) if isinstance(v, exp.Expression) else v for v in value])
        return node

    def _integral(self, node: exp.Expression) -> bool:
        return numeric_kind(node, self.column_type) == "integral"

    def _integer_division(self, node: exp.Div) -> exp.Expression:
        """INT / INT is an INT in Flink, truncated toward zero (Java's `/`, as DuckDB's `//`), and a
        division by zero fails the job."""
        dividend, divisor = self.visit(node.this), self.visit(node.expression)
        return _sql("(CASE WHEN __a1 = 0 THEN error('Division by zero') ELSE __a0 // __a1 END)").transform(
            _bind(dividend, divisor)
        )

    def _cast(self, node: exp.Cast) -> exp.Expression:
        _, duck = datatype_names(node.to)
        inner = self.visit(node.this)
        if duck in _INTEGRAL and numeric_kind(node.this, self.column_type) in ("decimal", "fractional"):
            # Flink truncates a fraction toward zero when casting to an integer; DuckDB rounds.
            inner = exp.func("trunc", inner)
        # Flink's CAST of an unparsable value fails the job; we give NULL so one bad record
        # cannot stop a stream (what Flink's legacy cast behaviour did).
        return exp.TryCast(this=inner, to=exp.DataType.build(duck, dialect="duckdb"))


def _function_name(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Anonymous):
        return node.name.upper()
    if isinstance(node, exp.Func) and not isinstance(node, exp.AggFunc):
        names = node.sql_names()
        return names[0].upper() if names else None
    return None


def _function_args(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Anonymous):
        return list(node.expressions)
    args: list[exp.Expression] = []
    for key in node.arg_types:
        value = node.args.get(key)
        if isinstance(value, exp.Expression):
            args.append(value)
        elif isinstance(value, list):
            args.extend(v for v in value if isinstance(v, exp.Expression))
    return args


def _positioned(cls, message: str, node: exp.Expression, hint: str | None = None):
    from clickstream.sql.statements import position_of

    line, col = position_of(node)
    return cls(message, line, col, hint)
