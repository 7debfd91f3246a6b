"""`CREATE TABLE t (...) WITH (...) LIKE source (<strategy> <feature>, ...)`: Flink's merging rules.

The new table has the source's physical columns, then its own. Each other feature is merged by its
strategy: INCLUDING takes the source's and fails on a duplicate, OVERWRITING takes the source's and
lets the new table's replace a duplicate, EXCLUDING keeps only the new table's. Without options
Flink uses INCLUDING ALL OVERWRITING OPTIONS; `ALL` sets every feature and the other options then
override it. Features: CONSTRAINTS (primary key), GENERATED (computed columns), WATERMARKS,
OPTIONS; METADATA and PARTITIONS are accepted and have nothing to merge here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from clickstream.errors import CatalogError, SqlError, SqlValidationError
from clickstream.schema import ComputedColumn, TableDef
from clickstream.sql.catalog import ViewDef
from clickstream.sql.statements import CreateTable, check_table

_Fail = Callable[[str], SqlError]  # an error positioned at the LIKE clause

_DEFAULTS = {
    "CONSTRAINTS": "INCLUDING",
    "GENERATED": "INCLUDING",
    "METADATA": "INCLUDING",
    "OPTIONS": "OVERWRITING",
    "PARTITIONS": "INCLUDING",
    "WATERMARKS": "INCLUDING",
}


def merge_like(statement: CreateTable, source: TableDef | ViewDef | None) -> TableDef:
    """The table `statement` declares, merged with its LIKE source (from the catalog)."""
    like, table = statement.like, statement.table
    assert like is not None and table is not None
    if source is None or isinstance(source, ViewDef):
        reason = "not found in the catalog" if source is None else "can not be a VIEW"
        raise statement.error(
            CatalogError, f"Source table '{like.source}' of the LIKE clause {reason}", like.node
        )
    strategies = _strategies(like.options)

    def fail(message: str) -> SqlError:
        return statement.error(SqlValidationError, message, like.node)

    if strategies["METADATA"] == "EXCLUDING":  # the source's metadata columns are left out
        source = replace(
            source, physical=[c for c in source.physical if c.name not in source.metadata], metadata={}
        )
    merged = TableDef(
        name=table.name,
        physical=_physical(source, table, fail),
        computed=_computed(source, table, strategies["GENERATED"], fail),
        watermark=_pick(source.watermark, table.watermark, strategies["WATERMARKS"], fail, _watermark_clash),
        primary_key=_pick(source.primary_key, table.primary_key, strategies["CONSTRAINTS"], fail, _key_clash),
        options=_options(source.options, table.options, strategies["OPTIONS"], fail),
        metadata={**source.metadata, **table.metadata},
    )
    check_table(statement, merged, like.node)
    return merged


def _strategies(options: list[tuple[str, str]]) -> dict[str, str]:
    strategies = dict(_DEFAULTS)
    for strategy, feature in sorted(options, key=lambda o: o[1] != "ALL"):  # ALL first
        for name in strategies if feature == "ALL" else [feature]:
            strategies[name] = strategy
    return strategies


def _physical(source: TableDef, table: TableDef, fail: _Fail) -> list:
    taken = {c.name.lower() for c in source.physical} | {c.name.lower() for c in source.computed}
    for column in table.physical:
        if column.name.lower() in taken:
            raise fail(f"A column named '{column.name}' already exists in the base table.")
    return list(source.physical) + list(table.physical)


def _computed(source: TableDef, table: TableDef, strategy: str, fail: _Fail) -> list[ComputedColumn]:
    if strategy == "EXCLUDING":
        return list(table.computed)
    physical = {c.name.lower() for c in source.physical}
    merged = list(source.computed)
    for column in table.computed:
        if column.name.lower() in physical:
            raise fail(f"A column named '{column.name}' already exists in the base table.")
        index = next((i for i, c in enumerate(merged) if c.name.lower() == column.name.lower()), None)
        if index is None:
            merged.append(column)
        elif strategy == "OVERWRITING":
            merged[index] = column
        else:
            raise fail(
                f"A generated column named '{column.name}' already exists in the base table. You "
                "might want to specify EXCLUDING GENERATED or OVERWRITING GENERATED."
            )
    return merged


def _pick(base, own, strategy: str, fail: _Fail, clash: Callable[..., str]):
    """The source's or the new table's watermark or primary key, by strategy."""
    if strategy == "EXCLUDING" or not base:
        return own
    if not own:
        return base
    if strategy == "OVERWRITING":
        return own
    raise fail(clash(base))


def _watermark_clash(base) -> str:
    return (
        f"There already exists a watermark spec for column '{base.column}' in the base table. You "
        "might want to specify EXCLUDING WATERMARKS or OVERWRITING WATERMARKS."
    )


def _key_clash(_base) -> str:
    return "The base table already has a primary key. You might want to specify EXCLUDING CONSTRAINTS."


def _options(base: dict[str, str], own: dict[str, str], strategy: str, fail: _Fail) -> dict[str, str]:
    if strategy == "EXCLUDING":
        return dict(own)
    if strategy == "INCLUDING":
        for key in own:
            if key in base:
                raise fail(
                    f"There already exists an option ['{key}' -> '{base[key]}']  in the base table. "
                    "You might want to specify EXCLUDING OPTIONS or OVERWRITING OPTIONS."
                )
    return {**base, **own}
