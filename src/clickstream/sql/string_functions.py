"""Flink's string functions as DuckDB expressions, where DuckDB's namesake differs.

The differences are at the edges: Flink's SUBSTR treats position 0 as 1 and a negative length as
NULL; REGEXP_EXTRACT and SPLIT_INDEX give NULL (not '') when nothing matches or the index is out of
range; LPAD/RPAD give NULL for a negative length or an empty pad; UPPER/LOWER use Java's full case
mapping ('ß' -> 'SS'); INITCAP is Calcite's, which only knows ASCII letters and digits.
"""

from __future__ import annotations

from sqlglot import exp

from clickstream.sql.base_functions import Builder, Call, func, literal_int, sql, template


def _concat(call: Call) -> exp.Expression:
    # Flink's CONCAT is NULL if any argument is NULL; DuckDB's concat() skips NULLs, `||` does not.
    result = call.args[0]
    for arg in call.args[1:]:
        result = exp.DPipe(this=result, expression=arg, safe=False)
    return exp.Paren(this=result)


def _concat_ws(call: Call) -> exp.Expression:
    """CONCAT_WS(sep, s1, ...): NULL if sep is NULL; NULL strings are skipped, empty ones kept
    (DuckDB's concat_ws, called by name: sqlglot would rewrite it to NULL on any NULL)."""
    if len(call.args) < 2:
        call.arity(2)
    return func("concat_ws", *call.args)


def _substring(call: Call) -> exp.Expression:
    """SUBSTR(s, pos[, len]): pos 0 is 1, a negative pos counts from the end, len < 0 is NULL."""
    call.arity(2, 3)
    text, start = call.args[0], call.args[1]
    position = literal_int(start)
    if position is None:
        start = sql("CASE WHEN __a0 = 0 THEN 1 ELSE __a0 END", start)
    elif position == 0:
        start = exp.Literal.number(1)
    if len(call.args) == 2:
        return func("substring", text, start)
    length = call.args[2]
    count = literal_int(length)
    if count is not None and count >= 0:
        return func("substring", text, start, length)
    return sql("CASE WHEN __a2 < 0 THEN NULL ELSE substring(__a0, __a1, __a2) END", text, start, length)


def _pad(name: str) -> Builder:
    def build(call: Call) -> exp.Expression:
        call.arity(3)
        return sql(f"CASE WHEN __a1 < 0 OR __a2 = '' THEN NULL ELSE {name}(__a0, __a1, __a2) END", *call.args)

    return build


def _regexp_extract(call: Call) -> exp.Expression:
    """REGEXP_EXTRACT(s, regex[, group]): group 0 (the whole match) by default; NULL when the
    regex does not match. (A group that takes no part in the match is '' here, NULL in Flink.)"""
    call.arity(2, 3)
    group = call.args[2] if len(call.args) == 3 else exp.Literal.number(0)
    return sql(
        "CASE WHEN regexp_matches(__a0, __a1) THEN regexp_extract(__a0, __a1, __a2) END",
        call.args[0],
        call.args[1],
        group,
    )


def _split_index(call: Call) -> exp.Expression:
    """SPLIT_INDEX(s, sep, i): the i-th (from 0) piece of s split at every sep, empty pieces kept;
    NULL when out of range, for '' and for i < 0. An empty sep splits at each whitespace
    (Apache Commons' splitByWholeSeparatorPreserveAllTokens)."""
    call.arity(3)
    text, separator, index = call.args
    if isinstance(separator, exp.Literal) and separator.is_string and separator.this == "":
        pieces = sql(r"string_split_regex(__a0, '\s')", text)
    else:
        pieces = sql(
            r"CASE WHEN __a1 = '' THEN string_split_regex(__a0, '\s') ELSE string_split(__a0, __a1) END",
            text,
            separator,
        )
    return sql(
        "CASE WHEN __a2 < 0 OR __a0 = '' THEN NULL ELSE list_extract(__a1, __a2 + 1) END", text, pieces, index
    )


# Java's String.toUpperCase maps these to two or three letters; DuckDB keeps one.
_UPPER_SPECIAL = {"ß": "SS", "ﬀ": "FF", "ﬁ": "FI", "ﬂ": "FL", "ﬃ": "FFI", "ﬄ": "FFL", "ﬅ": "ST", "ﬆ": "ST"}


def _upper(call: Call) -> exp.Expression:
    call.arity(1)
    text = call.args[0]
    for special, replacement in _UPPER_SPECIAL.items():
        text = func("replace", text, exp.Literal.string(special), exp.Literal.string(replacement))
    return func("upper", text)


def _lower(call: Call) -> exp.Expression:
    call.arity(1)
    # Java lowers 'İ' to 'i' and a combining dot above.
    return func("lower", func("replace", call.args[0], exp.Literal.string("İ"), exp.Literal.string("i̇")))


# Calcite's INITCAP: in each run of ASCII letters and digits the first is upper case, the rest
# lower; every other character (including non-ASCII letters) is left as is and ends the run.
_INITCAP = (
    "array_to_string(list_transform(regexp_extract_all(__a0, '[A-Za-z0-9]+|[^A-Za-z0-9]+'), "
    "lambda t: CASE WHEN regexp_full_match(t[1], '[A-Za-z0-9]') THEN upper(t[1]) || lower(t[2:]) "
    "ELSE t END), '')"
)


STRING_FUNCTIONS: dict[str, Builder] = {
    "SUBSTRING": _substring,
    "SUBSTR": _substring,
    "CONCAT": _concat,
    "CONCAT_WS": _concat_ws,
    "UPPER": _upper,
    "LOWER": _lower,
    "CHAR_LENGTH": template("length(__a0)", (1,)),
    "CHARACTER_LENGTH": template("length(__a0)", (1,)),
    "INITCAP": template(_INITCAP, (1,)),
    "SPLIT_INDEX": _split_index,
    "REGEXP_EXTRACT": _regexp_extract,
    "LPAD": _pad("lpad"),
    "RPAD": _pad("rpad"),
    "MD5": template("md5(__a0)", (1,)),
    "UUID": template("CAST(uuid() AS VARCHAR)", (0,)),
}

STRING_RESULT_TYPES = {name: "VARCHAR" for name in STRING_FUNCTIONS if not name.endswith("_LENGTH")}
