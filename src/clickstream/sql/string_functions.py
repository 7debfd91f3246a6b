"""Flink's string functions as DuckDB expressions, where DuckDB's namesake differs.

The differences are at the edges: Flink's SUBSTR treats position 0 as 1, a position before the
start as '' and a negative length as NULL; REPLACE of '' inserts everywhere (Java's String.replace);
REGEXP_EXTRACT and SPLIT_INDEX give NULL (not '') when nothing matches or the index is out of range;
LPAD/RPAD give NULL for a negative length or an empty pad; UPPER/LOWER use Java's full case mapping
('ß' -> 'SS'); INITCAP is Calcite's, which only knows ASCII letters and digits.
"""

from __future__ import annotations

import re

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
    """SUBSTR(s, pos[, len]) as Flink's `substringSQL`: pos counts from 1, 0 is 1, a negative pos
    counts from the end; a start before the first character (pos < -CHAR_LENGTH(s)) gives ''
    where DuckDB would start at the first character; len < 0 is NULL."""
    call.arity(2, 3)
    text, start, *length = call.args
    position = literal_int(start)
    if position is not None and position >= 0:
        result = func("substring", text, exp.Literal.number(max(position, 1)), *length)
    else:
        # DuckDB's positions from the end clamp at the first character; Flink's give ''.
        from_end = sql("length(__a0) + __a1", text, start)
        result = sql(
            "CASE WHEN __a1 >= 0 THEN __a2 WHEN __a3 < 0 THEN '' ELSE __a4 END",
            text,
            start,
            func("substring", text, sql("greatest(__a0, 1)", start), *length),
            from_end,
            func("substring", text, sql("__a0 + 1", from_end), *length),
        )
    count = literal_int(length[0]) if length else 0
    if count is not None and count >= 0:
        return result
    return sql("CASE WHEN __a0 < 0 THEN NULL ELSE __a1 END", length[0], result)


def _pad(name: str) -> Builder:
    def build(call: Call) -> exp.Expression:
        call.arity(3)
        return sql(f"CASE WHEN __a1 < 0 OR __a2 = '' THEN NULL ELSE {name}(__a0, __a1, __a2) END", *call.args)

    return build


def _regexp_extract(call: Call) -> exp.Expression:
    """REGEXP_EXTRACT(s, regex[, group]): group 0 (the whole match) by default; NULL when the
    regex does not match, and for a group the regex does not have (Java's `group(i)` throws,
    Flink answers NULL), which needs a literal regex to count its groups. A group that takes no
    part in the match is NULL too (Java's `group(i)`): DuckDB's regexp_extract gives '' for it,
    regexp_extract_all a NULL, so the group is read from the first match of the latter."""
    call.arity(2, 3)
    text, regex = call.args[0], call.args[1]
    group = call.args[2] if len(call.args) == 3 else exp.Literal.number(0)
    pattern = call.source(1)
    groups = _group_count(pattern.this) if isinstance(pattern, exp.Literal) and pattern.is_string else None
    index = literal_int(group)
    if groups is None or index is not None:
        extracted = sql("regexp_extract_all(__a0, __a1, __a2)[1]", text, regex, group)
        if index is not None and groups is not None and not 0 <= index <= groups:
            extracted = exp.Null()
    else:
        # DuckDB wants a constant group number: one branch per group of the regex.
        branches = " ".join(
            f"WHEN {i} THEN regexp_extract_all(__a0, __a1, {i})[1]" for i in range(groups + 1)
        )
        extracted = sql(f"CASE __a2 {branches} END", text, regex, group)
    return sql("CASE WHEN regexp_matches(__a0, __a1) THEN __a2 END", text, regex, extracted)


def _group_count(regex: str) -> int:
    """The capturing groups of a Java regex: each '(' that is not escaped, not in a character
    class and not a '(?' construct other than a named group '(?<name>'."""
    count, i, in_class = 0, 0, 0
    while i < len(regex):
        if regex.startswith("\\Q", i):  # quoted up to \E
            end = regex.find("\\E", i + 2)
            i = len(regex) if end < 0 else end + 2
            continue
        ch = regex[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            in_class += 1  # Java nests classes: [a-z&&[^x]]
        elif ch == "]" and in_class:
            in_class -= 1
        elif ch == "(" and not in_class:
            named = regex.startswith("(?<", i) and regex[i + 3 : i + 4].isalpha()
            count += named or not regex.startswith("(?", i)
        i += 1
    return count


def _split_index(call: Call) -> exp.Expression:
    """SPLIT_INDEX(s, sep, i): the i-th (from 0) piece of s split at every sep, empty pieces kept;
    NULL when out of range, for '' and for i < 0, and when any argument is NULL (DuckDB's
    string_split would not split at a NULL sep). An empty sep splits at each whitespace
    (Apache Commons' splitByWholeSeparatorPreserveAllTokens)."""
    call.arity(3)
    text, separator, index = call.args
    if isinstance(separator, exp.Literal) and separator.is_string and separator.this == "":
        pieces = sql(r"string_split_regex(__a0, '\s')", text)
    else:
        pieces = sql(
            r"CASE WHEN __a1 IS NULL THEN NULL WHEN __a1 = '' THEN string_split_regex(__a0, '\s') "
            "ELSE string_split(__a0, __a1) END",
            text,
            separator,
        )
    return sql(
        "CASE WHEN __a2 < 0 OR __a0 = '' THEN NULL ELSE list_extract(__a1, __a2 + 1) END", text, pieces, index
    )


def _replace(call: Call) -> exp.Expression:
    """REPLACE(s, search, replacement) as Java's String.replace: an empty search puts the
    replacement before each UTF-16 unit of s and at its end ('ab' -> 'xaxbx', '' -> 'x'), where
    DuckDB leaves s as is. A character beyond U+FFFF is two units: a non-empty replacement
    between them leaves each alone, and Flink writes a lone one as '?'."""
    call.arity(3)
    text, search, replacement = call.args
    if isinstance(search, exp.Literal) and search.is_string and search.this:
        return func("replace", text, search, replacement)
    units = (
        "list_transform(string_split(__a0, ''), "
        "lambda c: CASE WHEN unicode(c) > 65535 AND __a2 <> '' THEN '?' || __a2 || '?' ELSE c END)"
    )
    everywhere = f"(__a2 || array_to_string({units}, __a2) || CASE WHEN __a0 = '' THEN '' ELSE __a2 END)"
    return sql(f"CASE WHEN __a1 = '' THEN {everywhere} ELSE replace(__a0, __a1, __a2) END", *call.args)


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


def _locate(call: Call) -> exp.Expression:
    """LOCATE(sub, s[, pos]), POSITION(sub IN s), INSTR(s, sub): the 1-based position of sub in s
    from pos on, 0 when absent. As Flink's `BinaryStringData.indexOf`: an empty sub is found at 1
    wherever the search starts, and a pos below 1 searches from the start."""
    call.arity(2, 3)
    text, sub = call.args[0], call.args[1]
    start = sql("greatest(__a0, 1)", call.args[2]) if len(call.args) == 3 else exp.Literal.number(1)
    found = sql("strpos(substring(__a0, __a2), __a1)", text, sub, start)
    return sql(
        "CASE WHEN __a1 = '' AND __a0 IS NOT NULL AND __a2 IS NOT NULL THEN 1 "
        "WHEN __a3 = 0 THEN 0 ELSE __a3 + __a2 - 1 END",
        text,
        sub,
        start,
        found,
    )


def _regexp(call: Call) -> exp.Expression:
    """REGEXP(s, regex): whether regex matches part of s (Java's `find`); an empty regex never
    matches in Flink."""
    call.arity(2)
    return sql(
        "CASE WHEN __a1 = '' AND __a0 IS NOT NULL THEN false ELSE regexp_matches(__a0, __a1) END", *call.args
    )


# ASCII: Flink gives the first byte of the UTF-8 encoding as a signed Java byte ('Ä' is -61), 0 for ''.
_ASCII = """CASE WHEN __a0 = '' THEN 0 ELSE (CASE
  WHEN unicode(__a0) < 128 THEN unicode(__a0)
  WHEN unicode(__a0) < 2048 THEN 192 + unicode(__a0) // 64
  WHEN unicode(__a0) < 65536 THEN 224 + unicode(__a0) // 4096
  ELSE 240 + unicode(__a0) // 262144 END) - CASE WHEN unicode(__a0) < 128 THEN 0 ELSE 256 END END"""


def _left_right(name: str) -> Builder:
    """LEFT/RIGHT(s, n): '' for a negative n, where DuckDB would count from the other end."""

    def build(call: Call) -> exp.Expression:
        call.arity(2)
        return sql(f"CASE WHEN __a1 < 0 THEN '' ELSE {name}(__a0, __a1) END", *call.args)

    return build


def _split(call: Call) -> exp.Expression:
    """SPLIT(s, sep) -> ARRAY<STRING>: every piece, empty ones kept, [] for ''. An empty sep splits
    into UTF-16 units, so a character beyond U+FFFF is two lone halves, which Flink writes as '?'."""
    call.arity(2)
    units = (
        "flatten(list_transform(string_split(__a0, ''), "
        "lambda c: CASE WHEN unicode(c) > 65535 THEN ['?', '?'] ELSE [c] END))"
    )
    return sql(
        f"CASE WHEN __a0 = '' THEN CAST([] AS VARCHAR[]) WHEN __a1 = '' THEN {units} "
        "ELSE string_split(__a0, __a1) END",
        *call.args,
    )


def _str_to_map(call: Call) -> exp.Expression:
    """STR_TO_MAP(s[, listSep, kvSep]) -> MAP<STRING, STRING>: s split at listSep (','), each piece at
    its first kvSep ('='); a piece without kvSep maps to NULL, a repeated key keeps its last value
    (Java's HashMap.put), '' is the empty map. (Flink reads the separators as regular expressions;
    here they are literal text.)"""
    call.arity(1, 2, 3)
    text = call.args[0]
    items = call.args[1] if len(call.args) > 1 else exp.Literal.string(",")
    pair = call.args[2] if len(call.args) > 2 else exp.Literal.string("=")
    entries = (
        "list_transform(string_split(__a0, __a1), lambda p: struct_pack(key := CASE WHEN strpos(p, __a2) = 0 "
        "THEN p ELSE substring(p, 1, strpos(p, __a2) - 1) END, value := CASE WHEN strpos(p, __a2) = 0 "
        "THEN NULL ELSE substring(p, strpos(p, __a2) + length(__a2)) END))"
    )
    later_keys = f"list_transform(list_slice({entries}, i + 1, -1), lambda x: x.key)"
    last = f"list_filter({entries}, lambda e, i: NOT list_contains({later_keys}, e.key))"
    return sql(
        f"CASE WHEN __a0 IS NULL OR __a1 IS NULL OR __a2 IS NULL THEN NULL WHEN __a0 = '' THEN MAP() "
        f"ELSE map_from_entries({last}) END",
        text,
        items,
        pair,
    )


# Characters that are plain text in a SIMILAR TO pattern but special in a regular expression.
_REGEX_ONLY = set("\\.$")


def similar_to(text: exp.Expression, pattern: str, escape: str | None) -> exp.Expression:
    """`text SIMILAR TO pattern [ESCAPE e]` as Calcite's `sqlToRegexSimilar`: `%` is `.*`, `_` is `.`,
    the regex operators `| * + ? {m,n} ( ) [ ]` keep their meaning, everything else is literal, and
    the whole text must match."""
    regex, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if escape is not None and ch == escape and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) if ch in _REGEX_ONLY else ch)
        i += 1
    return func("regexp_full_match", text, exp.Literal.string("".join(regex)))


def _trim(name: str) -> Builder:
    def build(call: Call) -> exp.Expression:
        call.arity(1, 2)
        return func(name, *call.args)

    return build


# A string as its UTF-16 units, as Java indexes it: a character beyond U+FFFF is itself followed
# by '' (its second half); nothing else is ever ''.
_UNITS = (
    "CASE WHEN __a0 = '' THEN CAST([] AS VARCHAR[]) ELSE flatten(list_transform(string_split(__a0, ''), "
    "lambda c: CASE WHEN unicode(c) > 65535 THEN [c, ''] ELSE [c] END)) END"
)


def _overlay(call: Call) -> exp.Expression:
    """OVERLAY(s PLACING r FROM pos [FOR len]) as Flink's: s itself when pos is outside 1..the
    length of s, else s's first pos - 1 UTF-16 units, r, then (only when len > 0 and s reaches
    past pos + len - 1) the rest of s after the len units from pos; len is r's length by default.
    Positions count UTF-16 units, and a character cut in two leaves a '?' for its half."""
    call.arity(3, 4)
    text, replacement, start = call.args[:3]
    units = sql(_UNITS, text)
    length = call.args[3] if len(call.args) == 4 else sql(f"len({_UNITS})", replacement)
    head = sql(
        "array_to_string(list_transform(list_slice(__a0, 1, __a1 - 1), lambda x, i: "
        "CASE WHEN i = __a1 - 1 AND unicode(x) > 65535 THEN '?' ELSE x END), '')",
        units,
        start,
    )
    tail = sql(
        "array_to_string(list_transform(list_slice(__a0, __a1 + __a2, len(__a0)), lambda x, i: "
        "CASE WHEN i = 1 AND x = '' THEN '?' ELSE x END), '')",
        units,
        start,
        length,
    )
    return sql(
        "CASE WHEN __a0 IS NULL OR __a1 IS NULL OR __a2 IS NULL OR __a3 IS NULL THEN NULL "
        "WHEN __a2 <= 0 OR __a2 > len(__a4) THEN __a0 "
        "ELSE __a5 || __a1 || CASE WHEN __a3 > 0 AND __a2 + __a3 <= len(__a4) THEN __a6 ELSE '' END END",
        text,
        replacement,
        start,
        length,
        units,
        head,
        tail,
    )


STRING_FUNCTIONS: dict[str, Builder] = {
    "OVERLAY": _overlay,
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
    "REPLACE": _replace,
    "LPAD": _pad("lpad"),
    "RPAD": _pad("rpad"),
    "MD5": template("md5(__a0)", (1,)),
    "UUID": template("CAST(uuid() AS VARCHAR)", (0,)),
    "STR_POSITION": _locate,  # sqlglot's node for LOCATE, POSITION and INSTR
    "REGEXP": _regexp,
    "ASCII": template(_ASCII, (1,)),
    # CHR(n): the character n mod 256, '' for a negative n.
    "CHR": template("CASE WHEN __a0 < 0 THEN '' ELSE chr(CAST(__a0 % 256 AS INTEGER)) END", (1,)),
    "LEFT": _left_right("left"),
    "RIGHT": _left_right("right"),
    "SPLIT": _split,
    "STR_TO_MAP": _str_to_map,
    "TRANSLATE": template("translate(__a0, __a1, __a2)", (3,)),
    "BTRIM": _trim("trim"),
    "STARTS_WITH": template("starts_with(__a0, __a1)", (2,)),
    "ENDS_WITH": template("ends_with(__a0, __a1)", (2,)),
}

# Functions whose result is not a STRING.
_NOT_STRING = {
    "STR_POSITION": "INTEGER",
    "REGEXP": "BOOLEAN",
    "ASCII": "INTEGER",
    "SPLIT": "VARCHAR[]",
    "STR_TO_MAP": "MAP(VARCHAR, VARCHAR)",
    "STARTS_WITH": "BOOLEAN",
    "ENDS_WITH": "BOOLEAN",
}

STRING_RESULT_TYPES = {name: _NOT_STRING.get(name, "VARCHAR") for name in STRING_FUNCTIONS}
