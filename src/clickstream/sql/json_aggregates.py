"""JSON_ARRAYAGG and JSON_OBJECTAGG, planned as a LISTAGG of JSON texts.

Each row's contribution is computed before the aggregate as the JSON text Flink writes for it
(`JSON_STRING` of the value: strings quoted, numbers as Flink writes them, a JSON_OBJECT or
JSON_ARRAY value as it is), so the aggregate only keeps texts in arrival order, skipping NULLs, and
retracts one as LISTAGG does. The aggregate's final value wraps them (runtime `aggregates.final`):
- JSON_ARRAYAGG(v [NULL|ABSENT ON NULL]): `[...]` in arrival order; ABSENT ON NULL by default
  (a NULL value is no text, so skipped); NULL ON NULL writes `null`. Flink accepts an ORDER BY
  and ignores it (its function keeps arrival order), and so do we.
- JSON_OBJECTAGG([KEY] k VALUE v [NULL|ABSENT ON NULL]): a member `key \\x02 value` per row, the
  members sorted by key (Flink writes the object with sorted keys), a key seen twice fails the
  job as in Flink, and so does a NULL key; NULL ON NULL by default. The members are joined
  with `\\x01`, a character that JSON text never holds unescaped.
"""

from __future__ import annotations

from sqlglot import exp

from clickstream.errors import UnsupportedFeatureError
from clickstream.sql.statements import position_of

OBJECT_SEPARATOR = "\x01"  # between JSON_OBJECTAGG's members
KEY_END = "\x02"  # between a member's key and its value
NULL_KEY = "\x03"  # a NULL key's text: the final value fails the job, as Flink's does

JSON_AGGREGATES = ((exp.JSONArrayAgg, "JSON_ARRAYAGG"), (exp.JSONObjectAgg, "JSON_OBJECTAGG"))


def _json(value: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this="JSON_STRING", expressions=[value.copy()])


def _absent(call: exp.Expression, default: str) -> bool:
    handling = str(call.args.get("null_handling") or default).upper()
    return handling.startswith("ABSENT")


def json_member(call: exp.JSONArrayAgg | exp.JSONObjectAgg) -> exp.Expression:
    """The text a row adds to the aggregate (NULL: nothing)."""
    if isinstance(call, exp.JSONArrayAgg):
        value = _json(call.this)
        if _absent(call, "ABSENT"):
            return value
        return exp.Coalesce(this=value, expressions=[exp.Literal.string("null")])
    if len(call.expressions) != 1 or not isinstance(call.expressions[0], exp.JSONKeyValue):
        raise UnsupportedFeatureError("JSON_OBJECTAGG takes one KEY k VALUE v pair", *position_of(call))
    pair = call.expressions[0]
    key, value = pair.this, pair.expression
    text = exp.Coalesce(this=_json(value), expressions=[exp.Literal.string("null")])
    key_text = exp.Coalesce(this=_json(key), expressions=[exp.Literal.string(NULL_KEY)])
    member = exp.DPipe(this=exp.DPipe(this=key_text, expression=exp.Literal.string(KEY_END)), expression=text)
    if _absent(call, "NULL"):
        is_null = exp.Is(this=value.copy(), expression=exp.Null())
        return exp.Case(ifs=[exp.If(this=is_null, true=exp.Null())], default=member)
    return member


def check_legacy_window(functions: list[str], where: exp.Expression) -> None:
    """Flink 2.3's legacy group windows pass the JSON aggregates raw values (strings unquoted,
    numbers refused): refused here rather than copied."""
    for function in functions:
        if function in ("JSON_ARRAYAGG", "JSON_OBJECTAGG"):
            raise UnsupportedFeatureError(
                f"{function} in a legacy group window (GROUP BY TUMBLE(...)) is not supported",
                *position_of(where),
                hint="Use a window table function: FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), ...)).",
            )
