"""The catalog: tables and views a job has declared, by name."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from clickstream.errors import CatalogError
from clickstream.sql.types import Column

SECRET_OPTIONS = ("password", "properties.sasl.jaas.config", "properties.ssl.key.password")


@dataclass
class ComputedColumn:
    name: str
    expression: exp.Expression  # Flink SQL over the physical columns

    @property
    def is_proctime(self) -> bool:
        return isinstance(self.expression, exp.Anonymous) and self.expression.name.upper() == ("PROCTIME")


@dataclass
class Watermark:
    column: str
    expression: exp.Expression  # Flink SQL over the table's columns; value is the watermark


@dataclass
class TableDef:
    """A `CREATE TABLE`: its physical columns, derived columns, time attributes and options."""

    name: str
    physical: list[Column]
    computed: list[ComputedColumn] = field(default_factory=list)
    computed_columns: list[Column] = field(default_factory=list)  # types, once planned
    watermark: Watermark | None = None
    primary_key: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def connector(self) -> str:
        return self.options.get("connector", "")

    @property
    def proctime_column(self) -> str | None:
        return next((c.name for c in self.computed if c.is_proctime), None)

    @property
    def columns(self) -> list[Column]:
        """All columns in declaration order: physical first, then computed (as Flink lists them)."""
        return self.physical + self.computed_columns

    def column(self, name: str) -> Column | None:
        lowered = name.lower()
        return next((c for c in self.columns if c.name.lower() == lowered), None)

    def public_options(self) -> dict[str, str]:
        """Options with secrets masked, for DESCRIBE, EXPLAIN, logs and the dashboard."""
        return {k: ("******" if k in SECRET_OPTIONS else v) for k, v in self.options.items()}


@dataclass
class ViewDef:
    name: str
    query: exp.Expression


class Catalog:
    """Case-insensitive registry of tables and views, like Flink's default catalog."""

    def __init__(self) -> None:
        self._objects: dict[str, TableDef | ViewDef] = {}

    def add(self, obj: TableDef | ViewDef, if_not_exists: bool = False, replace: bool = False):
        key = obj.name.lower()
        if key in self._objects and not replace:
            if if_not_exists:
                return
            kind = "Table" if isinstance(self._objects[key], TableDef) else "View"
            raise CatalogError(f"{kind} '{obj.name}' already exists")
        self._objects[key] = obj

    def drop(self, name: str, kind: type, if_exists: bool = False) -> None:
        obj = self._objects.get(name.lower())
        if obj is None or not isinstance(obj, kind):
            if if_exists:
                return
            what = "Table" if kind is TableDef else "View"
            raise CatalogError(f"{what} '{name}' does not exist")
        del self._objects[name.lower()]

    def get(self, name: str) -> TableDef | ViewDef | None:
        return self._objects.get(name.lower())

    def table(self, name: str) -> TableDef:
        obj = self.get(name)
        if not isinstance(obj, TableDef):
            raise CatalogError(
                f"Table '{name}' not found",
                hint=_names_hint(name, [o.name for o in self._objects.values()]),
            )
        return obj

    def names(self) -> list[str]:
        return sorted(o.name for o in self._objects.values())


def _names_hint(name: str, names: list[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"Did you mean '{close[0]}'?"
    if names:
        return "Known tables and views: " + ", ".join(sorted(names))
    return "No table has been created yet."
