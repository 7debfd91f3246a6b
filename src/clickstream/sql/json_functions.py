"""Flink's JSON functions on STRING values, as DuckDB expressions (DuckDB's json extension).

Flink (Calcite's `JsonFunctions`, Jayway JsonPath over Jackson) reads numbers as BigDecimal and
writes them back with `BigDecimal.toString`: `1.50` stays `1.50`, `-0.0` is `0.0`, `1e3` is `1E+3`.
DuckDB reads numbers as doubles (`1.50` would be `1.5`), so before DuckDB parses a document every
number token is rewritten into a marked JSON string holding Flink's text for it (`_marked`); a
scalar read back unmarks it, a JSON text written back turns each marked string into the bare
number again. (A string of the document that itself starts with the escape `\\u0001` would be
taken for a number.)

Path mode: without a `lax`/`strict` prefix the path is strict, as in Calcite. In strict mode a
missing path, an unreadable document and (for JSON_VALUE) a non-scalar or (for JSON_QUERY) a
scalar value are errors: the `ON ERROR` behavior applies (NULL by default). In lax mode they are
empty: the `ON EMPTY` behavior applies. A JSON `null` is NULL, whatever the clauses say, as Flink
gives it. Paths are `$`, `.name`, `['name']` and `[index]`; a wildcard (`[*]`, `.*`) makes the
value a list, an error for JSON_VALUE; other forms (filters, `..`) are refused by name.

Known differences: DuckDB keeps the first of duplicate keys, Jackson the last; DuckDB's reader
accepts some texts Jackson rejects (a trailing comma); JSON_QUERY sorts the keys of the outermost
object only (as Flink's Jackson writes them), Jackson those of nested objects too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError
from clickstream.sql.base_functions import Call, func, quote, sql
from clickstream.sql.cast_functions import java_double_string
from clickstream.sql.expressions import JsonCall
from clickstream.sql.types import datatype_names

# Translates Flink argument expressions into a Call (the translator's `_call`).
CallOf = Callable[[list[exp.Expression]], Call]

_MARK = "\\u0001"  # JSON escape of U+0001: starts the marked string of a number
_NUMBER = r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?"
# A JSON text as tokens: strings (escapes kept), numbers, runs of anything else.
_TOKENS = r'"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|[^"0-9-]+|.'

# BigDecimal.toString of the number token __a0 (java.math.BigDecimal: unscaled digits, scale).
_DIGITS = (
    "coalesce(nullif(ltrim(regexp_extract(__a0, '^-?([0-9]+)', 1) "
    "|| regexp_extract(__a0, '\\.([0-9]+)', 1), '0'), ''), '0')"
)
_SCALE = (
    "(length(regexp_extract(__a0, '\\.([0-9]+)', 1)) "
    "- coalesce(TRY_CAST(regexp_extract(__a0, '[eE]([+-]?[0-9]+)', 1) AS INTEGER), 0))"
)
_BIG_DECIMAL = f"""(CASE WHEN starts_with(__a0, '-') AND {_DIGITS} <> '0' THEN '-' ELSE '' END || CASE
  WHEN {_SCALE} = 0 THEN {_DIGITS}
  WHEN {_SCALE} > 0 AND length({_DIGITS}) - 1 - {_SCALE} >= -6 THEN (CASE
    WHEN length({_DIGITS}) > {_SCALE}
      THEN left({_DIGITS}, length({_DIGITS}) - {_SCALE}) || '.' || right({_DIGITS}, {_SCALE})
    ELSE '0.' || repeat('0', {_SCALE} - length({_DIGITS})) || {_DIGITS} END)
  ELSE left({_DIGITS}, 1) || CASE WHEN length({_DIGITS}) > 1 THEN '.' || substring({_DIGITS}, 2) ELSE '' END
    || 'E' || CASE WHEN length({_DIGITS}) - 1 - {_SCALE} >= 0 THEN '+' ELSE '-' END
    || CAST(abs(length({_DIGITS}) - 1 - {_SCALE}) AS VARCHAR) END)"""


def _marked(document: exp.Expression) -> exp.Expression:
    """The document with each number token replaced by the string `"\\u0001<Flink's text>"`."""
    number = sql(_BIG_DECIMAL, exp.column("t"))
    marked = f"{quote(chr(34) + _MARK)} || __a0 || '\"'"
    token = sql(f"CASE WHEN regexp_full_match(t, {quote(_NUMBER)}) THEN {marked} ELSE t END", number)
    return sql(
        f"array_to_string(list_transform(regexp_extract_all(__a0, {quote(_TOKENS)}), lambda t: __a1), '')",
        document,
        token,
    )


def _unmarked_text(json_text: exp.Expression) -> exp.Expression:
    """A JSON text DuckDB wrote, each marked string back to its bare number."""
    return func(
        "regexp_replace",
        json_text,
        exp.Literal.string('"\\\\u0001([^"]*)"'),
        exp.Literal.string("\\1"),
        exp.Literal.string("g"),
    )


# --- paths --------------------------------------------------------------------------------------

_STEP = re.compile(r"\.([A-Za-z_$][\w$]*)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*(\d+)\s*\]|(\[\s*\*\s*\]|\.\*)")


def _parse_path(text: str) -> tuple[bool, str, bool]:
    """(lax, DuckDB path, has a wildcard) of a Flink JSON path such as `lax $.a[0]['b c']`."""
    mode = re.match(r"\s*(strict|lax)\s+", text, re.IGNORECASE)
    lax = bool(mode) and mode.group(1).lower() == "lax"  # type: ignore[union-attr]
    path = text[mode.end() :] if mode else text
    if not path.startswith("$"):
        raise UnsupportedFeatureError(f"the JSON path {quote(text)} does not start with '$'")
    duck, wildcard, i = "$", False, 1
    while i < len(path):
        step = _STEP.match(path, i)
        if step is None:
            raise UnsupportedFeatureError(
                f"the JSON path {quote(text)} is not supported at {quote(path[i:])}"
                " (supported: .name, ['name'], [index], [*])"
            )
        name = step.group(1) or (step.group(2).replace("\\'", "'") if step.group(2) is not None else None)
        if name is not None:
            if '"' in name:
                raise UnsupportedFeatureError(f"the JSON path {quote(text)} names a key with '\"'")
            duck += f'."{name}"'
        elif step.group(3) is not None:
            duck += f"[{int(step.group(3))}]"
        else:
            duck += "[*]" if step.group(4).startswith("[") else ".*"
            wildcard = True
        i = step.end()
    return lax, duck, wildcard


@dataclass
class _Path:
    """A JSON path as DuckDB reads it: `lax` (a bool, or an expression for a path read from a
    column), the DuckDB path (a string literal or an expression), whether it has a wildcard, and
    for a path read from a column `source` (the path text itself, for NULL) and `valid` (whether
    the text is a path we read; another is an error, as an unreadable path is in Flink)."""

    lax: bool | exp.Expression
    duck: exp.Expression
    wildcard: bool = False
    source: exp.Expression | None = None
    valid: exp.Expression | None = None

    def pick(self, if_lax: exp.Expression, if_strict: exp.Expression) -> exp.Expression:
        if isinstance(self.lax, bool):
            return if_lax if self.lax else if_strict
        return sql("CASE WHEN __a0 THEN __a1 ELSE __a2 END", self.lax, if_lax, if_strict)


# A path read from a column: its mode prefix, and the steps DuckDB reads as Flink does.
_MODE = r"^\s*(strict|lax)\s+"
_SIMPLE_PATH = r"\$(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*"


def _path(call_node: JsonCall, call_of: CallOf, from_column: bool = True) -> _Path:
    path = call_node.expressions[1] if len(call_node.expressions) > 1 else None
    if isinstance(path, exp.Literal) and path.is_string:
        lax, duck, wildcard = _parse_path(path.this)
        return _Path(lax, exp.Literal.string(duck), wildcard)
    if not from_column or path is None:
        raise UnsupportedFeatureError(f"{call_node.kind}'s path must be a string literal")
    text = call_of([path]).args[0]
    steps = sql(f"regexp_replace(__a0, {quote(_MODE)}, '', 'i')", text)
    valid = sql(f"regexp_full_match(__a0, {quote(_SIMPLE_PATH)})", steps)
    return _Path(
        lax=sql(f"regexp_matches(__a0, {quote(_MODE.replace('(strict|lax)', 'lax'))}, 'i')", text),
        duck=sql("CASE WHEN __a0 THEN __a1 END", valid, steps),
        source=text,
        valid=valid,
    )


# --- JSON_VALUE, JSON_QUERY, JSON_EXISTS ---------------------------------------------------------


def _behavior(node: JsonCall, key: str, call_of: CallOf, default: str, what: str) -> exp.Expression:
    """The value the `ON EMPTY` / `ON ERROR` clause gives (an `error(...)` for ERROR)."""
    kind = node.clause(key) or default
    if kind == "DEFAULT":
        return call_of([node.args[f"{key[3:]}_default"]]).args[0]
    values = {"NULL": "NULL", "EMPTY ARRAY": "'[]'", "EMPTY OBJECT": "'{}'", "TRUE": "true", "FALSE": "false"}
    if kind in values:
        return sql(values[kind])
    if kind == "UNKNOWN":
        return sql("CAST(NULL AS BOOLEAN)")
    if kind == "ERROR":
        return sql(f"error({quote(f'{node.kind}: {what}')})")
    raise UnsupportedFeatureError(f"{node.kind}: {kind} ON {key[3:].upper()} is not supported")


def _classified(
    node: JsonCall,
    call_of: CallOf,
    value_of: Callable[[exp.Expression, exp.Expression], exp.Expression],
    bad: str,
) -> exp.Expression:
    """The shared frame of JSON_VALUE and JSON_QUERY: NULL for a NULL input (document or path),
    the error or empty behavior for an unreadable document or path, a missing path or a value of
    the wrong kind (`bad`, a condition on the extracted JSON `__a0`), NULL for a JSON null, else
    `value_of(document, path)`."""
    path = _path(node, call_of)
    call = call_of([node.expressions[0]])
    document = _marked(call.args[0])
    on_error = _behavior(node, "on_error", call_of, "NULL", "the value is missing or of the wrong kind")
    on_empty = _behavior(node, "on_empty", call_of, "NULL", "the value is empty")
    problem = path.pick(on_empty, on_error)
    if path.wildcard:
        if node.kind != "JSON_VALUE":
            raise UnsupportedFeatureError(f"{node.kind} with a wildcard in the path is not supported")
        # The value is a list: never a scalar.
        return sql("CASE WHEN __a0 IS NULL THEN NULL ELSE __a1 END", call.args[0], problem)
    extracted = sql("json_extract(__a0, __a1)", document, path.duck)
    unreadable_path = ""
    if path.source is not None:
        unreadable_path = "WHEN __a7 IS NULL THEN NULL WHEN NOT __a8 THEN __a9 "
    return sql(
        f"CASE WHEN __a0 IS NULL THEN NULL {unreadable_path}WHEN NOT coalesce(json_valid(__a0), false) "
        "THEN __a1 WHEN NOT json_exists(__a2, __a10) THEN __a1 WHEN json_type(__a3) = 'NULL' THEN NULL "
        "WHEN __a4 THEN __a5 ELSE __a6 END",
        call.args[0],
        problem,
        document,
        extracted,
        sql(bad, extracted),
        problem,
        value_of(document, path.duck),
        path.source or exp.null(),
        path.valid or exp.true(),
        on_error,
        path.duck,
    )


# RETURNING types JSON_VALUE supports, and the JSON kinds each takes (Flink's job fails on others).
_RETURNING = {"VARCHAR": None, "INTEGER": "number", "DOUBLE": "number", "BOOLEAN": "BOOLEAN"}


def _json_value(node: JsonCall, call_of: CallOf) -> exp.Expression:
    returning = node.args.get("returning")
    duck = datatype_names(returning)[1] if isinstance(returning, exp.DataType) else "VARCHAR"
    if duck not in _RETURNING:
        flink = datatype_names(returning)[0] if isinstance(returning, exp.DataType) else duck
        raise UnsupportedFeatureError(f"Unsupported type '{flink}' for RETURNING in JSON_VALUE()")
    kind = _RETURNING[duck]

    def value(document: exp.Expression, path: exp.Expression) -> exp.Expression:
        text = sql("json_extract_string(__a0, __a1)", document, path)
        is_number = sql("starts_with(__a0, chr(1))", text)
        number = sql("substring(__a0, 2)", text)
        if kind is None:
            return sql("CASE WHEN __a0 THEN __a1 ELSE __a2 END", is_number, number, text)
        json_kind = sql("json_type(__a0, __a1)", document, path)
        ok = is_number if kind == "number" else sql(f"__a0 = '{kind}'", json_kind)
        source = number if kind == "number" else text
        fail = f"error({quote(f'JSON_VALUE: the value cannot be returned as {duck}')})"
        return sql(f"CASE WHEN __a0 THEN CAST(__a1 AS {duck}) ELSE {fail} END", ok, source)

    return _classified(node, call_of, value, "json_type(__a0) IN ('OBJECT', 'ARRAY')")


def _json_query(node: JsonCall, call_of: CallOf) -> exp.Expression:
    wrapper = node.clause("wrapper") or "WITHOUT"

    def value(document: exp.Expression, path: exp.Expression) -> exp.Expression:
        extracted = sql("json_extract(__a0, __a1)", document, path)
        # Flink's Jackson writes an object's keys sorted (here: the outermost object's only).
        sorted_keys = (
            "to_json(map_from_entries(list_transform(list_sort(list_distinct(json_keys(__a0))), "
            """lambda k: struct_pack(key := k, value := json_extract(__a0, '$."' || k || '"')))))"""
        )
        text = sql(
            f"CAST(CASE WHEN json_type(__a0) = 'OBJECT' THEN {sorted_keys} ELSE __a0 END AS VARCHAR)",
            extracted,
        )
        if wrapper == "UNCONDITIONAL":
            text = sql("'[' || __a0 || ']'", text)
        elif wrapper == "CONDITIONAL":
            text = sql(
                "CASE WHEN json_type(__a0) = 'ARRAY' THEN __a1 ELSE '[' || __a1 || ']' END", extracted, text
            )
        return _unmarked_text(text)

    # A scalar is an error unless a wrapper makes it an array.
    bad = "false" if wrapper != "WITHOUT" else "json_type(__a0) NOT IN ('OBJECT', 'ARRAY')"
    return _classified(node, call_of, value, bad)


def _json_exists(node: JsonCall, call_of: CallOf) -> exp.Expression:
    """JSON_EXISTS: true when the path leads to a value other than JSON null; an unreadable document
    or (strict mode) a missing path takes the ON ERROR behavior (FALSE by default)."""
    # Flink 2.3 cannot run JSON_EXISTS with a path read from a column (its code generation fails).
    path = _path(node, call_of, from_column=False)
    call = call_of([node.expressions[0]])
    on_error = _behavior(node, "on_error", call_of, "FALSE", "the path does not exist")
    return sql(
        "CASE WHEN __a0 IS NULL THEN NULL WHEN NOT coalesce(json_valid(__a0), false) THEN __a1 "
        "WHEN NOT json_exists(__a0, __a3) THEN __a2 ELSE json_type(json_extract(__a0, __a3)) <> 'NULL' END",
        call.args[0],
        on_error,
        path.pick(exp.false(), on_error),
        path.duck,
    )


def is_json(value: exp.Expression, kind: str | None) -> exp.Expression:
    """`s IS JSON [VALUE|SCALAR|ARRAY|OBJECT]`: false (never NULL) for NULL and unreadable text."""
    test = {
        "SCALAR": "json_type(__a0) NOT IN ('OBJECT', 'ARRAY')",
        "ARRAY": "json_type(__a0) = 'ARRAY'",
        "OBJECT": "json_type(__a0) = 'OBJECT'",
    }.get((kind or "VALUE").upper(), "true")
    return sql(f"coalesce(CASE WHEN json_valid(__a0) THEN {test} END, false)", value)


# --- JSON_OBJECT, JSON_ARRAY, JSON_STRING ---------------------------------------------------------

_NOT_JSON = ("DATE", "TIME", "TIMESTAMP", "TIMESTAMPTZ", "BLOB", "INTERVAL")


def _is_json_constructor(node: exp.Expression) -> bool:
    """JSON_OBJECT and JSON_ARRAY values go into an enclosing one as JSON, not as a string."""
    return isinstance(node, exp.JSONObject) or (isinstance(node, JsonCall) and node.kind == "JSON_ARRAY")


def json_text(call: Call, i: int) -> exp.Expression:
    """Argument i as Jackson writes it into JSON: strings quoted and escaped, DECIMAL with its
    scale, DOUBLE as Java's Double.toString, JSON_OBJECT/JSON_ARRAY values as they are."""
    value, duck, source = call.args[i], call.type(i), call.source(i)
    if _is_json_constructor(source):
        return value
    if isinstance(source, exp.Literal) and not source.is_string:
        return exp.Literal.string(source.this)  # a DECIMAL literal keeps its scale: 1.50
    if duck in _NOT_JSON:
        raise SqlValidationError(f"a value of type {duck} cannot be converted into JSON")
    if duck in ("DOUBLE", "FLOAT"):
        return java_double_string(value)
    if duck in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT") or (duck or "").startswith("DECIMAL"):
        return sql("CAST(__a0 AS VARCHAR)", value)
    if duck == "BOOLEAN":
        return sql("CASE WHEN __a0 THEN 'true' ELSE 'false' END", value)
    return sql("CAST(to_json(__a0) AS VARCHAR)", value)


def json_object(node: exp.JSONObject, call_of: CallOf) -> exp.Expression:
    """JSON_OBJECT(KEY k VALUE v, ...): keys in sorted order, a repeated key keeps its last value
    (Flink's Jackson ObjectNode is written with sorted keys); NULL ON NULL is the default."""
    pairs: dict[str, exp.Expression] = {}
    for pair in node.expressions:
        if not isinstance(pair, exp.JSONKeyValue):
            raise UnsupportedFeatureError("JSON_OBJECT takes KEY k VALUE v pairs")
        key = pair.this.this if isinstance(pair.this, exp.Column) else pair.this
        if not (isinstance(key, exp.Literal) and key.is_string):
            raise UnsupportedFeatureError("JSON_OBJECT's keys must be string literals")
        pairs[key.this] = pair.expression
    absent = str(node.args.get("null_handling") or "").upper().startswith("ABSENT")
    keys = sorted(pairs)
    call = call_of([pairs[k] for k in keys])
    members = []
    for i, key in enumerate(keys):
        name = exp.Literal.string(_json_string(key) + ":")
        value = json_text(call, i)
        members.append(sql("__a0 || __a1", name, value if absent else sql("coalesce(__a0, 'null')", value)))
    return _joined("{", members, "}")


def _json_array(node: JsonCall, call_of: CallOf) -> exp.Expression:
    """JSON_ARRAY(v, ...): ABSENT ON NULL by default."""
    call = call_of(list(node.expressions))
    null = (node.clause("on_null") or "ABSENT") == "NULL"
    items = [json_text(call, i) for i in range(len(call.args))]
    return _joined("[", [sql("coalesce(__a0, 'null')", v) if null else v for v in items], "]")


def _joined(start: str, members: list[exp.Expression], end: str) -> exp.Expression:
    """`start` + the members that are not NULL, comma-separated + `end`."""
    if not members:
        return exp.Literal.string(start + end)
    return sql(
        f"{quote(start)} || __a0 || {quote(end)}", func("concat_ws", exp.Literal.string(","), *members)
    )


def _json_string(text: str) -> str:
    """A Python string as a JSON string literal, escaped as Jackson escapes it."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\n\t\r\b\f":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def json_string(call: Call) -> exp.Expression:
    """JSON_STRING(v): v serialized as JSON; NULL stays NULL."""
    call.arity(1)
    return sql("CASE WHEN __a0 IS NULL THEN NULL ELSE __a1 END", call.args[0], json_text(call, 0))


def build_json_call(node: JsonCall, call_of: CallOf) -> exp.Expression:
    """JSON_VALUE, JSON_QUERY, JSON_EXISTS or JSON_ARRAY with its clauses."""
    if node.kind != "JSON_ARRAY" and len(node.expressions) != 2:
        raise SqlValidationError(f"{node.kind} takes a JSON string and a path")
    if node.kind == "JSON_VALUE":
        return _json_value(node, call_of)
    if node.kind == "JSON_QUERY":
        return _json_query(node, call_of)
    if node.kind == "JSON_EXISTS":
        return _json_exists(node, call_of)
    return _json_array(node, call_of)


JSON_RESULT_TYPES = {"JSON_QUERY": "VARCHAR", "JSON_EXISTS": "BOOLEAN", "JSON_ARRAY": "VARCHAR"}
