"""Flink scalar functions, rewritten into DuckDB expressions.

`translate(node, resolve)` walks a Flink expression, resolves column references through `resolve`
(which raises a positioned error for an unknown column) and returns DuckDB SQL. Functions sqlglot
already models with the same meaning in both engines pass through; the rest are rewritten, one
entry per Flink function in FUNCTIONS, whose builders live by topic: `time_functions`,
`string_functions`, `math_functions`, `cast_functions` (CAST), `format_functions` (Java date
patterns). An unknown function is an error that names it.

Builders are told the DuckDB types of their arguments where they follow from the query (columns,
literals, casts, functions of known result type): Flink's CAST to STRING, DATE_FORMAT of a STRING
and the time functions on a TIMESTAMP_LTZ depend on them.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.schema import WATERMARK_COLUMN
from clickstream.sql import collection_functions
from clickstream.sql.base_functions import Builder, Call, literal_int, literal_string, sql, template
from clickstream.sql.cast_functions import cast
from clickstream.sql.expressions import Descriptor, JsonCall, MapConstructor, TableArg, WindowTvf
from clickstream.sql.json_functions import (
    JSON_RESULT_TYPES,
    build_json_call,
    is_json,
    json_object,
    json_string,
)
from clickstream.sql.math_functions import MATH_FUNCTIONS
from clickstream.sql.null_literals import check_null_literals
from clickstream.sql.string_functions import STRING_FUNCTIONS, STRING_RESULT_TYPES, similar_to
from clickstream.sql.time_functions import (
    TIME_FUNCTIONS,
    TIME_RESULT_TYPES,
    build_extract,
    floor_ceil,
    timestampadd,
    timestampdiff,
    unit_name,
)
from clickstream.sql.types import datatype_names, normalize_duckdb_type

Resolver = Callable[[exp.Column], exp.Expression]
# The DuckDB type of a column a query names (for the rules that depend on types, such as INT / INT).
ColumnType = Callable[[exp.Column], str]
# The precision of a TIMESTAMP/TIMESTAMP_LTZ column (3 when not given).
ColumnPrecision = Callable[[exp.Column], int | None]

_INTEGRAL = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")
_FRACTIONAL = ("FLOAT", "DOUBLE", "REAL")

# Every Flink scalar function, by name -> builder from the translated call.
FUNCTIONS: dict[str, Builder] = {
    **TIME_FUNCTIONS,
    **STRING_FUNCTIONS,
    **MATH_FUNCTIONS,
    **collection_functions.COLLECTION_FUNCTIONS,
    "IFNULL": template("coalesce(__a0, __a1)", (2,)),
    "MOD": template("(__a0 % __a1)", (2,)),
    "POWER": template("power(__a0, __a1)", (2,)),
    "LOG10": template("log10(__a0)", (1,)),
    "LN": template("ln(__a0)", (1,)),
    "RAND": template("random()", (0,)),
    "JSON_STRING": json_string,
}
_RESULT_TYPES = {**TIME_RESULT_TYPES, **STRING_RESULT_TYPES, "JSON_STRING": "VARCHAR"}

# sqlglot classes whose Flink name differs from sqlglot's.
_FLINK_NAMES: dict[type[exp.Expression], str] = {
    exp.DayOfWeek: "DAYOFWEEK",
    exp.DayOfMonth: "DAYOFMONTH",
    exp.DayOfYear: "DAYOFYEAR",
    exp.Substring: "SUBSTRING",
    exp.Length: "CHAR_LENGTH",
    exp.ArrayToString: "ARRAY_JOIN",
}

_PREDICATES = (
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
    exp.NullSafeEQ,  # IS NOT DISTINCT FROM
    exp.NullSafeNEQ,  # IS DISTINCT FROM
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.RegexpLike,
    exp.Escape,  # LIKE ... ESCAPE
    exp.Boolean,
)

# sqlglot nodes whose DuckDB rendering already has Flink's meaning.
PASS_THROUGH: tuple[type[exp.Expression], ...] = (
    *_PREDICATES,
    exp.Literal,
    exp.Null,
    exp.Star,
    exp.Paren,
    exp.Neg,
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
    exp.ConcatWs,
    exp.Array,
)


def translate(
    node: exp.Expression,
    resolve: Resolver,
    time_zone: str = "UTC",
    column_type: ColumnType | None = None,
    column_precision: ColumnPrecision | None = None,
) -> exp.Expression:
    """A DuckDB expression equal in meaning to the Flink expression `node`."""
    check_null_literals(node)
    return _Translator(resolve, time_zone, column_type, column_precision).visit(node.copy())


def numeric_kind(node: exp.Expression, column_type: ColumnType | None) -> str | None:
    """'integral', 'decimal' or 'fractional' for a Flink numeric expression whose kind follows from
    its parts (columns, literals, arithmetic, casts); None when it does not, or is not numeric."""
    if isinstance(node, exp.Paren | exp.Neg | exp.Abs):
        return numeric_kind(node.this, column_type)
    if isinstance(node, exp.Column):
        duck = column_type(node) if column_type else ""
        return _kind_of_type(duck)
    if isinstance(node, exp.Literal) and not node.is_string:
        text = node.this.lower()
        return "fractional" if "e" in text else "decimal" if "." in text else "integral"
    if isinstance(node, exp.Cast):
        return _kind_of_type(datatype_names(node.to)[1])
    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod) or _is_conditional(node):
        # a CASE, IF, COALESCE or NULLIF takes its branches' common kind (INT / INT stays integral)
        parts = _branches(node) if _is_conditional(node) else [node.this, node.expression]
        kinds = {numeric_kind(p, column_type) for p in parts if not isinstance(p, exp.Null)}
        if not kinds or None in kinds:
            return None
        return next(k for k in ("fractional", "decimal", "integral") if k in kinds)
    return None


def _kind_of_type(duck: str) -> str | None:
    if duck in _INTEGRAL:
        return "integral"
    if duck in _FRACTIONAL:
        return "fractional"
    return "decimal" if duck.startswith("DECIMAL") else None


class _Translator:
    def __init__(
        self,
        resolve: Resolver,
        time_zone: str,
        column_type: ColumnType | None = None,
        column_precision: ColumnPrecision | None = None,
    ) -> None:
        self.resolve = resolve
        self.zone = time_zone
        self.column_type = _with_fields(column_type) if column_type else None
        self.column_precision = _no_field_precision(column_precision) if column_precision else None

    def visit(self, node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column):
            return self._column(node)
        collection = self._collection(node)
        if collection is not None:
            return collection
        if isinstance(node, exp.Cast):
            return self._cast(node)
        if isinstance(node, exp.Div) and self._integral(node.this) and self._integral(node.expression):
            return self._integer_division(node)
        if isinstance(node, exp.Div):
            exact = self._decimal_division(node)
            if exact is not None:
                return exact
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Neg):
            wrapped = self._wrapping_arithmetic(node)
            if wrapped is not None:
                return wrapped
        if isinstance(node, exp.Add | exp.Sub | exp.Mul):
            exact = self._decimal_arithmetic(node)
            if exact is not None:
                return exact
        special = self._special(node)
        if special is not None:
            return special
        name = _function_name(node)
        if name is not None and name in FUNCTIONS:
            try:
                return FUNCTIONS[name](self._call(_function_args(node)))
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
        # CASE, IF, COALESCE, NULLIF: Flink's type is the least restrictive of the branches'.
        common = None
        if _is_conditional(node) and self.integer_type(node) is None:
            common = self.decimal_type(node)
        for key, value in list(node.args.items()):
            if isinstance(value, exp.Expression):
                node.set(key, self.visit(value))
            elif isinstance(value, list):
                node.set(key, [self.visit(v) if isinstance(v, exp.Expression) else v for v in value])
        if common is not None:
            return sql(f"CAST(__a0 AS DECIMAL({common[0]}, {common[1]}))", node)
        return node

    def _column(self, node: exp.Column) -> exp.Expression:
        """A column, or a field of a ROW column (`r.x`, `t.r.x`) when no column has that name."""
        try:
            return self.resolve(node)
        except SqlValidationError:
            path = (
                collection_functions.field_path(node, self.column_type)
                if self.column_type and node.table
                else None
            )
            if path is None:
                raise
        column, names = path
        value, kind = self.resolve(column), self.type_of(column)
        for name in names:
            value = collection_functions.field(value, name, kind)
            kind = collection_functions.path_type(kind, [name])
        return value

    def _collection(self, node: exp.Expression) -> exp.Expression | None:
        """`a[i]`, `m[k]`, `x.field` and `MAP[...]`; None for anything else."""
        try:
            if isinstance(node, exp.Bracket):
                if len(node.expressions) != 1:
                    raise SqlValidationError("an ARRAY or MAP access takes one index")
                index, kind = node.expressions[0], self.type_of(node.this)  # typed before translated
                constant = literal_int(index)
                return collection_functions.element_at(
                    self.visit(node.this), self.visit(index), kind, constant
                )
            if isinstance(node, exp.Dot):
                kind = self.type_of(node.this)
                return collection_functions.field(self.visit(node.this), node.name, kind)
            if isinstance(node, MapConstructor):
                return collection_functions.map_constructor(node, self.visit)
            if isinstance(node, exp.EQ | exp.NEQ):
                types = (self.type_of(node.this), self.type_of(node.expression))
                return collection_functions.row_comparison(node, types, self.visit)
        except SqlValidationError as error:
            if error.line is not None:
                raise
            raise _positioned(SqlValidationError, error.message, node) from None
        return None

    def _call(self, sources: list[exp.Expression]) -> Call:
        types = [self.type_of(s) for s in sources]
        return Call([self.visit(s) for s in sources], types, self.zone, sources)

    def _special(self, node: exp.Expression) -> exp.Expression | None:
        """EXTRACT(u FROM x), FLOOR/CEIL(x TO u), TIMESTAMPDIFF(u, a, b): a unit, not a value."""
        if _function_name(node) == "CURRENT_WATERMARK":
            return self._current_watermark(node)
        try:
            if isinstance(node, JsonCall):
                return build_json_call(node, self._call)
            if isinstance(node, exp.JSONObject):
                return json_object(node, self._call)
            if isinstance(node, exp.Is) and isinstance(node.expression, exp.JSON):
                kind = node.expression.this
                return is_json(self.visit(node.this), kind.name if isinstance(kind, exp.Expression) else kind)
            if isinstance(node, exp.SimilarTo | exp.Escape):
                return self._pattern_match(node)
            if isinstance(node, exp.Extract):
                if node.this.name.upper() == "DAYOFMONTH":  # HOUR-like function, not an EXTRACT unit
                    raise SqlValidationError("'DAYOFMONTH' is not a valid time frame")
                return build_extract(self._call([node.expression]), unit_name(node.this))
            if _function_name(node) == "TIMESTAMPADD":
                args = _function_args(node)
                if len(args) != 3:
                    raise SqlValidationError("TIMESTAMPADD takes (unit, count, timestamp)")
                return timestampadd(self._call(args[1:]), unit_name(args[0]))
            if isinstance(node, exp.Floor | exp.Ceil) and node.args.get("to") is not None:
                call = self._call([node.this])
                return floor_ceil(call, unit_name(node.args["to"]), isinstance(node, exp.Ceil))
            if isinstance(node, exp.TimestampDiff):
                # Flink's TIMESTAMPDIFF(unit, a, b) reaches sqlglot as (this=unit, expression=a, unit=b).
                end = node.args.get("unit")
                if isinstance(end, exp.Var):
                    end = exp.column(end.name)
                if not isinstance(node.this, exp.Column) or end is None:
                    raise SqlValidationError("TIMESTAMPDIFF takes (unit, start, end)")
                return timestampdiff(self._call([node.expression, end]), unit_name(node.this))
        except (SqlValidationError, UnsupportedFeatureError) as error:
            if error.line is not None:  # positioned deeper down, at an argument
                raise
            raise _positioned(type(error), error.message, node) from None
        return None

    def _pattern_match(self, node: exp.SimilarTo | exp.Escape) -> exp.Expression | None:
        """`x SIMILAR TO p [ESCAPE e]` (a regular expression from a literal p); `x LIKE p ESCAPE e`
        is DuckDB's own."""
        escape = None
        match = node
        if isinstance(node, exp.Escape):
            match, escape = node.this, literal_string(node.expression, "the ESCAPE character")
            if not isinstance(match, exp.SimilarTo):
                return None  # LIKE / ILIKE ... ESCAPE: passes through
        text = self.visit(match.this)
        pattern = literal_string(match.expression, "the SIMILAR TO pattern")
        result = similar_to(text, pattern, escape)
        return exp.Not(this=result) if match.args.get("negate") else result

    def _current_watermark(self, node: exp.Expression) -> exp.Expression:
        """CURRENT_WATERMARK(rowtime): the watermark just before the row (every row carries it),
        in the rowtime's type; NULL while there is none yet, as in Flink."""
        args = _function_args(node)
        if len(args) != 1 or not isinstance(args[0], exp.Column):
            raise _positioned(SqlValidationError, "CURRENT_WATERMARK takes the rowtime attribute", node)
        duck = self.type_of(args[0])
        if duck not in ("TIMESTAMP", "TIMESTAMPTZ"):
            raise _positioned(SqlValidationError, "CURRENT_WATERMARK takes a rowtime attribute", node)
        self.visit(args[0].copy())  # an unknown column is reported like any other
        instant = "make_timestamp(__a0 * 1000)" if duck == "TIMESTAMP" else "to_timestamp(__a0 / 1000.0)"
        mark = exp.column(WATERMARK_COLUMN, quoted=True)
        return sql(f"(CASE WHEN __a0 = {-(2**63)} THEN NULL ELSE CAST({instant} AS {duck}) END)", mark)

    def type_of(self, node: exp.Expression) -> str | None:
        """The DuckDB type of a Flink expression, where it follows from the query; else None."""
        if isinstance(node, exp.Paren):
            return self.type_of(node.this)
        if isinstance(node, exp.Column):
            return normalize_duckdb_type(self.column_type(node)) if self.column_type else None
        if isinstance(node, exp.Cast):
            return datatype_names(node.to)[1]
        if isinstance(node, exp.Literal):
            if node.is_string:
                return "VARCHAR"
            # an integer literal beyond INT is a BIGINT, as in Flink
            return self.integer_type(node) or _TYPE_OF_KIND[str(numeric_kind(node, None))]
        if isinstance(node, _PREDICATES):
            return "BOOLEAN"
        if isinstance(node, exp.DPipe | exp.JSONObject):
            return "VARCHAR"
        if isinstance(node, JsonCall):
            returning = node.args.get("returning")
            if node.kind == "JSON_VALUE":
                return datatype_names(returning)[1] if isinstance(returning, exp.DataType) else "VARCHAR"
            return JSON_RESULT_TYPES[node.kind]
        if isinstance(node, exp.Add | exp.Sub) and isinstance(node.expression, exp.Interval):
            return self.type_of(node.this)
        if isinstance(node, exp.Floor | exp.Ceil) and node.args.get("to") is not None:
            return self.type_of(node.this)
        if _is_conditional(node):
            kinds = [self.type_of(b) for b in _branches(node)]
            return next((k for k in kinds if k is not None), None)
        kind = numeric_kind(node, self.column_type)
        if kind is not None:
            return "DOUBLE" if kind == "fractional" else None
        collection = collection_functions.type_of(node, self.type_of)
        if collection is not None:
            return collection
        name = _function_name(node)
        if name == "TIMESTAMPADD":
            args = _function_args(node)
            kind = self.type_of(args[-1]) if args else None
            short = unit_name(args[0]) not in ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR")
            return "TIMESTAMP" if kind == "DATE" and short else kind
        return _RESULT_TYPES.get(name) if name else None

    def precision_of(self, node: exp.Expression) -> int:
        """The precision of a TIMESTAMP/TIMESTAMP_LTZ expression (3 when the query does not say)."""
        if isinstance(node, exp.Paren):
            return self.precision_of(node.this)
        if isinstance(node, exp.Cast):
            params = node.to.expressions
            if params and isinstance(params[0].this, exp.Literal):
                return int(params[0].this.this)
            return 6 if node.to.this != exp.DType.DATE else 3
        if isinstance(node, exp.Column) and self.column_precision is not None:
            return self.column_precision(node) or 3
        return 3

    def _integral(self, node: exp.Expression) -> bool:
        return numeric_kind(node, self.column_type) == "integral"

    def _integer_division(self, node: exp.Div) -> exp.Expression:
        """INT / INT is an INT in Flink, truncated toward zero (Java's `/`, as DuckDB's `//`), and a
        division by zero fails the job."""
        dividend, divisor = self.visit(node.this), self.visit(node.expression)
        return sql(
            "(CASE WHEN __a1 = 0 THEN error('Division by zero') ELSE __a0 // __a1 END)", dividend, divisor
        )

    def _wrapping_arithmetic(self, node: exp.Expression) -> exp.Expression | None:
        """`+`, `-`, `*` and unary minus on integers wrap around as Java's do in Flink (INT_MAX + 1 is
        INT_MIN), instead of DuckDB's overflow error: computed one size wider, then wrapped into the
        result type. None when an operand's integer type does not follow from the query."""
        result = self.integer_type(node)
        if result is None:
            return None
        wide = "HUGEINT" if result == "BIGINT" else "BIGINT"
        operands = [node.this] if isinstance(node, exp.Neg) else [node.this, node.expression]
        widened = [exp.Cast(this=self.visit(o), to=exp.DataType.build(wide)) for o in operands]
        if isinstance(node, exp.Neg):
            value: exp.Expression = exp.Neg(this=widened[0])
        else:
            value = type(node)(this=widened[0], expression=widened[1])
        bits = _INTEGER_BITS[result]
        half, full = 2 ** (bits - 1), 2**bits
        return sql(
            f"CAST((((__a0 + {half}) % {full} + {full}) % {full} - {half}) AS {result})",
            exp.Paren(this=value),
        )

    def _decimal_division(self, node: exp.Div) -> exp.Expression | None:
        """DECIMAL / DECIMAL (or with an integer) is an exact DECIMAL in Flink, with the precision and
        scale of its `LogicalTypeMerging.findDivisionDecimalType`, rounded half up; DuckDB would give
        a DOUBLE. Computed on the unscaled integers (HUGEINT). None when an operand is not exact."""
        left, right = self.decimal_type(node.this), self.decimal_type(node.expression)
        if left is None or right is None or self.integer_type(node) is not None:
            return None  # not exact, or integers only (`_integer_division`)
        (p1, s1), (p2, s2) = left, right
        precision, scale = _adjusted(p1 - s1 + s2 + max(6, s1 + p2 + 1), max(6, s1 + p2 + 1))
        shift = scale - s1 + s2  # the quotient of the unscaled values, scaled to `scale` digits
        dividend = f"(CAST(__a0 * {10**s1} AS HUGEINT) * {10**shift})" if shift >= 0 else None
        if dividend is None:
            return None
        divisor = f"CAST(__a1 * {10**s2} AS HUGEINT)"
        halves = f"(abs({dividend}) * 2 + abs({divisor})) // (2 * abs({divisor}))"  # half up
        rounded = f"sign({dividend}) * sign({divisor}) * {halves}"
        unit = f"CAST('{10**-scale:.{scale}f}' AS DECIMAL({scale + 1}, {scale}))" if scale else "1"
        value = f"CAST(CAST({rounded} AS DECIMAL(38, 0)) * {unit} AS DECIMAL({precision}, {scale}))"
        return sql(
            f"(CASE WHEN {divisor} = 0 THEN error('Division by zero') ELSE {value} END)",
            self.visit(node.this),
            self.visit(node.expression),
        )

    def _decimal_arithmetic(self, node: exp.Add | exp.Sub | exp.Mul) -> exp.Expression | None:
        """DECIMAL `+`, `-`, `*` (or with an integer) are exact in Flink, of the type of its
        `LogicalTypeMerging.findAdditionDecimalType` / `findMultiplicationDecimalType`, rounded half up
        where that type has fewer decimals than the exact result (beyond 38 digits). DuckDB types them
        its own way, and fails a product of two 18-digit DECIMALs beyond 18 digits: computed at 38
        digits here, then cast to Flink's type. None when an operand is not exact or both are integers."""
        result = self.decimal_type(node)
        left, right = self.decimal_type(node.this), self.decimal_type(node.expression)
        if result is None or left is None or right is None or self.integer_type(node) is not None:
            return None
        if isinstance(node, exp.Mul) and left[1] + right[1] > 38:
            return None  # beyond DuckDB's DECIMAL; README, Known differences
        wide = [
            sql(f"CAST(__a0 AS DECIMAL(38, {scale}))", self.visit(operand))
            for operand, (_, scale) in ((node.this, left), (node.expression, right))
        ]
        value = type(node)(this=wide[0], expression=wide[1])
        return sql(f"CAST(__a0 AS DECIMAL({result[0]}, {result[1]}))", value)

    def decimal_type(self, node: exp.Expression) -> tuple[int, int] | None:
        """(precision, scale) of an exact numeric expression as Flink types it (an integer is a
        DECIMAL of its digits), or None when it is not exact or does not follow from the query."""
        if isinstance(node, exp.Paren | exp.Neg | exp.Abs):
            return self.decimal_type(node.this)
        integer = self.integer_type(node)
        if integer is not None:
            return (_INTEGER_DIGITS[integer], 0)
        duck = None
        if isinstance(node, exp.Column) and self.column_type:
            duck = self.column_type(node)
        elif isinstance(node, exp.Cast):
            duck = datatype_names(node.to)[1]
        elif isinstance(node, exp.Literal) and not node.is_string and "e" not in node.this.lower():
            whole, _, fraction = node.this.lstrip("-").partition(".")
            return (max(len(whole.lstrip("0")) + len(fraction), len(fraction), 1), len(fraction))
        if duck and duck.startswith("DECIMAL("):
            digits, places = duck[8:-1].split(",")
            return (int(digits), int(places))
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div):
            left, right = self.decimal_type(node.this), self.decimal_type(node.expression)
            if left is None or right is None:
                return None
            (p1, s1), (p2, s2) = left, right
            if isinstance(node, exp.Mul):
                return _adjusted(p1 + p2 + 1, s1 + s2)
            if isinstance(node, exp.Add | exp.Sub):
                scale = max(s1, s2)
                return _adjusted(max(p1 - s1, p2 - s2) + scale + 1, scale)
            return _adjusted(p1 - s1 + s2 + max(6, s1 + p2 + 1), max(6, s1 + p2 + 1))
        if _is_conditional(node):
            return self._least_restrictive(_branches(node))
        return None

    def _least_restrictive(self, branches: list[exp.Expression]) -> tuple[int, int] | None:
        """Flink's common type of exact branches (`LogicalTypeMerging.findCommonType`): the most
        integer digits and the most decimals, at most 38 digits; untyped NULLs do not count."""
        types = []
        for branch in branches:
            found = None if isinstance(branch, exp.Null) else self.decimal_type(branch)
            if found is None and not isinstance(branch, exp.Null):
                return None
            types += [found] if found else []
        if not types:
            return None
        digits = min(max(p - s for p, s in types), 38)
        scale = min(max(s for _, s in types), 38 - digits)
        return digits + scale, scale

    def integer_type(self, node: exp.Expression) -> str | None:
        """The integer type of an integer expression (Flink's: the wider operand's), or None."""
        if isinstance(node, exp.Paren | exp.Neg | exp.Abs):
            return self.integer_type(node.this)
        if isinstance(node, exp.Column):
            duck = self.column_type(node) if self.column_type else None
            return duck if duck in _INTEGER_BITS else None
        if isinstance(node, exp.Literal) and not node.is_string and node.this.lstrip("-").isdigit():
            return "INTEGER" if -(2**31) <= int(node.this) < 2**31 else "BIGINT"
        if isinstance(node, exp.Cast):
            duck = datatype_names(node.to)[1]
            return duck if duck in _INTEGER_BITS else None
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod) or _is_conditional(node):
            branches = _branches(node) if _is_conditional(node) else [node.this, node.expression]
            types = [self.integer_type(b) for b in branches if not isinstance(b, exp.Null)]
            if not types or None in types:
                return None
            return max(types, key=lambda t: _INTEGER_BITS[str(t)])
        return None

    def _cast(self, node: exp.Cast) -> exp.Expression:
        """Flink's CAST (cast_functions); TRY_CAST is the same with NULL for what cannot be read,
        and so is CAST here (README, "Bad input")."""
        call = self._call([node.this])
        return cast(call, node.to, self.precision_of(node.this), numeric_kind(node.this, self.column_type))


_TYPE_OF_KIND = {"integral": "INTEGER", "decimal": None, "fractional": "DOUBLE", "None": None}
_INTEGER_BITS = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}
_INTEGER_DIGITS = {"TINYINT": 3, "SMALLINT": 5, "INTEGER": 10, "BIGINT": 19}


def _adjusted(precision: int, scale: int) -> tuple[int, int]:
    """Flink's `adjustPrecisionScale`: beyond 38 digits the scale gives way, down to 6."""
    if precision <= 38:
        return precision, scale
    return 38, max(38 - (precision - scale), min(scale, 6))


def _is_conditional(node: exp.Expression) -> bool:
    """A CASE, IF, COALESCE or NULLIF (not the WHEN ... THEN clause of a CASE, also an exp.If)."""
    if isinstance(node, exp.If):
        return not isinstance(node.parent, exp.Case)
    return isinstance(node, exp.Case | exp.Coalesce | exp.Nullif)


def _branches(node: exp.Expression) -> list[exp.Expression]:
    """The expressions a CASE, IF, COALESCE or NULLIF can take its value from."""
    if isinstance(node, exp.Nullif):
        return [node.this]
    if isinstance(node, exp.Coalesce):
        return [node.this, *node.expressions]
    ifs = (node.args.get("ifs") or []) if isinstance(node, exp.Case) else [node]
    values = [i.args.get("true") for i in ifs]
    values.append(node.args.get("default") or node.args.get("false"))
    return [v for v in values if isinstance(v, exp.Expression)]


def _function_name(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Anonymous):
        return node.name.upper()
    if isinstance(node, exp.Pad):
        return "LPAD" if node.args.get("is_left") else "RPAD"
    if type(node) in _FLINK_NAMES:
        return _FLINK_NAMES[type(node)]
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


def _with_fields(column_type: ColumnType) -> ColumnType:
    """`column_type` extended to the fields of ROW columns (`r.x`, `t.r.x`)."""

    def lookup(node: exp.Column) -> str:
        try:
            return column_type(node)
        except SqlValidationError:
            path = collection_functions.field_path(node, column_type) if node.table else None
            found = collection_functions.path_type(column_type(path[0]), path[1]) if path else None
            if found is None:
                raise
            return found

    return lookup


def _no_field_precision(column_precision: ColumnPrecision) -> ColumnPrecision:
    """`column_precision`, None (3) for a field of a ROW column."""

    def lookup(node: exp.Column) -> int | None:
        try:
            return column_precision(node)
        except SqlValidationError:
            return None

    return lookup


def _positioned(cls, message: str, node: exp.Expression, hint: str | None = None):
    from clickstream.sql.statements import position_of

    line, col = position_of(node)
    return cls(message, line, col, hint)
