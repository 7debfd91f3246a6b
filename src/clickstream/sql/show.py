"""Text of SHOW CREATE TABLE / SHOW CREATE VIEW and the names of SHOW FUNCTIONS, as Flink prints them."""

from __future__ import annotations

from sqlglot import exp

from clickstream.schema import Column, TableDef
from clickstream.sql.dialect import Flink
from clickstream.sql.functions import FUNCTIONS

_PATH = "`default_catalog`.`default_database`."
_AGGREGATES = ("AVG", "COUNT", "FIRST_VALUE", "LAST_VALUE", "MAX", "MIN", "SUM")
_TABLE_FUNCTIONS = ("CUMULATE", "HOP", "SESSION", "TUMBLE", "ROW_NUMBER", "CURRENT_WATERMARK")
_OPERATORS = ("BETWEEN", "CASE", "CAST", "IF", "IN", "LIKE", "TRY_CAST")
# functions sqlglot reads into nodes DuckDB renders with Flink's meaning (functions.PASS_THROUGH)
_NATIVE = (
    "ABS", "CEIL", "COALESCE", "CONCAT", "CURRENT_DATE", "CURRENT_TIMESTAMP", "EXP", "FLOOR",
    "GREATEST", "LEAST", "LOWER", "NULLIF", "POSITION", "REGEXP_REPLACE", "ROUND", "SIGN", "SQRT",
    "TRIM", "UPPER",
)  # fmt: skip


def function_names() -> list[str]:
    """The functions a query can call: the scalar ones, aggregates, window and table functions."""
    return sorted({*FUNCTIONS, *_NATIVE, *_AGGREGATES, *_TABLE_FUNCTIONS, *_OPERATORS})


def _metadata(table: TableDef, name: str) -> str:
    meta = table.metadata.get(name)
    if meta is None:
        return ""
    return f" METADATA FROM '{meta.key}'" + (" VIRTUAL" if meta.virtual else "")


def show_create_table(table: TableDef, temporary: bool) -> str:
    lines = [
        f"  {_quote(c.name)} {_type(c, c.name in table.primary_key)}{_metadata(table, c.name)}"
        for c in table.physical
    ]
    lines += [f"  {_quote(c.name)} AS {_sql(c.expression)}" for c in table.computed]
    if table.watermark is not None:
        lines.append(
            f"  WATERMARK FOR {_quote(table.watermark.column)} AS {_sql(table.watermark.expression)}"
        )
    if table.primary_key:
        keys = ", ".join(_quote(k) for k in table.primary_key)
        lines.append(
            f"  CONSTRAINT {_quote('PK_' + '_'.join(table.primary_key))} PRIMARY KEY ({keys}) NOT ENFORCED"
        )
    text = f"CREATE {_temporary(temporary)}TABLE {_PATH}{_quote(table.name)} (\n" + ",\n".join(lines) + "\n)"
    options = table.public_options()  # secrets masked
    if options:
        text += "\nWITH (\n" + ",\n".join(f"  '{k}' = '{v}'" for k, v in sorted(options.items())) + "\n)"
    return text


def show_create_view(name: str, columns: list[str], query: exp.Expression, temporary: bool) -> str:
    names = ",\n".join(f"  {_quote(c)}" for c in columns)
    return f"CREATE {_temporary(temporary)}VIEW {_PATH}{_quote(name)} (\n{names}\n)\nAS {_sql(query)}"


def _type(column: Column, key: bool) -> str:
    flink = column.flink_type.replace(" *PROCTIME*", "")
    if flink == "STRING":
        flink = "VARCHAR(2147483647)"
    elif flink == "BYTES":
        flink = "VARBINARY(2147483647)"
    elif flink.startswith("TIMESTAMP_LTZ"):
        flink = flink.replace("TIMESTAMP_LTZ", "TIMESTAMP") + " WITH LOCAL TIME ZONE"
    return flink + ("" if column.nullable and not key else " NOT NULL")


def _sql(expression: exp.Expression) -> str:
    return expression.sql(dialect=Flink, identify=True)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _temporary(temporary: bool) -> str:
    return "TEMPORARY " if temporary else ""
