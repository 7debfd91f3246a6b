"""The catalog: tables and views a job has declared, by name."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from clickstream.errors import CatalogError
from clickstream.schema import TableDef


@dataclass
class ViewDef:
    name: str
    query: exp.Expression


class Catalog:
    """Case-insensitive registry of tables and views, like Flink's default catalog."""

    def __init__(self) -> None:
        self._objects: dict[str, TableDef | ViewDef] = {}
        self._temporary: set[str] = set()  # CREATE TEMPORARY TABLE / VIEW (SHOW CREATE says so)

    def add(
        self,
        obj: TableDef | ViewDef,
        if_not_exists: bool = False,
        replace: bool = False,
        temporary: bool = False,
    ):
        key = obj.name.lower()
        if key in self._objects and not replace:
            if if_not_exists:
                return
            kind = "Table" if isinstance(self._objects[key], TableDef) else "View"
            raise CatalogError(f"{kind} '{obj.name}' already exists")
        self._objects[key] = obj
        if temporary:
            self._temporary.add(key)
        else:
            self._temporary.discard(key)

    def is_temporary(self, name: str) -> bool:
        return name.lower() in self._temporary

    def drop(self, name: str, kind: type, if_exists: bool = False) -> None:
        obj = self._objects.get(name.lower())
        if obj is None or not isinstance(obj, kind):
            if if_exists:
                return
            what = "Table" if kind is TableDef else "View"
            raise CatalogError(f"{what} '{name}' does not exist")
        del self._objects[name.lower()]
        self._temporary.discard(name.lower())

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
