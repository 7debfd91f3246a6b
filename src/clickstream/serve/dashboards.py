"""What the dashboard draws: panels over result tables, from a small TOML file next to a pipeline's
SQL, or inferred from the tables themselves when there is none.

```toml
title = "Website activity"

[[panels]]
title = "Hourly trading volume"
table = "buy_cnt_per_hour"
kind = "area"            # line, area, bar, hbar, pie, table, kpi, funnel, alerts
x = "hour_of_day"        # the x axis (charts) or the label column (hbar, pie)
y = ["buy_cnt"]          # the series (charts), the value (hbar, pie, kpi) or the stages (funnel)
```

Other keys: `id` (the panel's name in the page, default from the title), `split` (one series per
value of this column, e.g. one line per day), `aggregate` (`max`, `sum`, `last` or `count`: several
rows for one x and series, as Kibana's buckets did; `count` counts the rows), `top` (hbar, pie: the
N largest), `reduce` and `labels` (kpi: `sum`, `max`, `last`, `count`; a name per tile), `columns`,
`order_by` and `limit` (table, alerts), `wide` (the panel spans the page's width), `description`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from clickstream.errors import ClickstreamError
from clickstream.serve.results import TableInfo

KINDS = ("line", "area", "bar", "hbar", "pie", "table", "kpi", "funnel", "alerts")
CHARTS = ("line", "area", "bar")
AGGREGATES = ("max", "sum", "last", "count")
REDUCERS = ("sum", "max", "last", "count")
MAX_SERIES = 4  # an inferred chart draws at most this many numeric columns
_TIME_TYPES = re.compile(r"TIMESTAMP|DATE|TIME", re.IGNORECASE)
_TIME_NAMES = re.compile(r"(^|_)(ts|time|date|hour|minute|day|window_start|window_end|rowtime)($|_)")
_NUMERIC_TYPES = re.compile(r"INT|REAL|NUM|DEC|DOUBLE|FLOAT", re.IGNORECASE)


class DashboardError(ClickstreamError):
    """A dashboard file that cannot be read, with the file and the key at fault."""


@dataclass(frozen=True)
class Panel:
    title: str
    table: str
    kind: str = "table"
    id: str = ""
    x: str | None = None
    y: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # kpi: what each of `y` is called on its tile
    split: str | None = None
    aggregate: str = "max"
    top: int | None = None
    reduce: str = "sum"
    columns: list[str] = field(default_factory=list)
    order_by: str | None = None
    limit: int = 10_000
    wide: bool = False
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    title: str
    panels: list[Panel]
    description: str = ""
    inferred: bool = False
    name: str = ""  # in the page's address when a server has several: /?dashboard=<name>

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_dashboard(path: str | Path) -> Dashboard:
    """The dashboard a TOML file describes; every mistake is reported with the file and the key."""
    where = Path(path)
    try:
        spec = tomllib.loads(where.read_text(encoding="utf-8"))
    except OSError as e:
        raise DashboardError(f"cannot read dashboard file {where}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise DashboardError(f"{where}: {e}") from None
    _only(spec, {"title", "description", "panels"}, str(where))
    panels = spec.get("panels")
    if not isinstance(panels, list) or not panels:
        raise DashboardError(f"{where}: needs at least one [[panels]] table")
    built = [_panel(raw, f"{where}: panel {i + 1}") for i, raw in enumerate(panels)]
    _unique_ids(built, str(where))
    name = where.name.removesuffix(".toml").removesuffix(".dashboard")
    return Dashboard(str(spec.get("title", name)), built, str(spec.get("description", "")), name=name)


def _panel(raw: Any, where: str) -> Panel:
    if not isinstance(raw, dict):
        raise DashboardError(f"{where}: a panel is a table of keys")
    _only(raw, {f.name for f in fields(Panel)}, where)
    for key in ("title", "table"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise DashboardError(f"{where}: '{key}' is required (a string)")
    for key, allowed in (("kind", KINDS), ("aggregate", AGGREGATES), ("reduce", REDUCERS)):
        if key in raw and raw[key] not in allowed:
            raise DashboardError(f"{where}: '{key}' is {raw[key]!r}; one of: {', '.join(allowed)}")
    for key in ("y", "columns", "labels"):
        if key in raw and (not isinstance(raw[key], list) or not all(isinstance(c, str) for c in raw[key])):
            raise DashboardError(f"{where}: '{key}' is a list of column names")
    panel = Panel(**{**raw, "id": raw.get("id") or _slug(raw["title"])})
    _check_shape(panel, where)
    return panel


def _check_shape(panel: Panel, where: str) -> None:
    """The columns each kind needs."""
    needs_x = panel.kind in (*CHARTS, "hbar", "pie")
    if needs_x and not panel.x:
        raise DashboardError(f"{where}: a {panel.kind} panel needs 'x' (its x axis or label column)")
    if panel.kind in (*CHARTS, "hbar", "pie", "kpi", "funnel") and not panel.y:
        raise DashboardError(f"{where}: a {panel.kind} panel needs 'y' (the columns it draws)")
    if panel.split and len(panel.y) != 1:
        raise DashboardError(f"{where}: 'split' draws one series per value, so 'y' names one column")
    if panel.kind == "funnel" and len(panel.y) < 2:
        raise DashboardError(f"{where}: a funnel needs two or more stages in 'y'")


def _only(spec: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise DashboardError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(allowed))}")


def _unique_ids(panels: list[Panel], where: str) -> None:
    seen: set[str] = set()
    for panel in panels:
        if panel.id in seen:
            raise DashboardError(f"{where}: two panels are named {panel.id!r}; give one an 'id'")
        seen.add(panel.id)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "panel"


# --- a dashboard for any results file ------------------------------------------------------------


def inferred_dashboard(tables: list[TableInfo], title: str = "results") -> Dashboard:
    """One panel per table: a line chart of its numeric columns over its time column, else the
    table itself."""
    return Dashboard(title, [_inferred_panel(table) for table in tables], inferred=True, name="results")


def _inferred_panel(table: TableInfo) -> Panel:
    time_column = next((c.name for c in table.columns if _is_time(c.name, c.type)), None)
    numeric = [c.name for c in table.columns if _is_measure(c.name, c.type) and c.name != time_column]
    if time_column and numeric:
        return Panel(
            title=table.name,
            table=table.name,
            kind="line",
            id=table.name,
            x=time_column,
            y=numeric[:MAX_SERIES],
            aggregate="last",
            order_by=time_column,
        )
    return Panel(title=table.name, table=table.name, kind="table", id=table.name, limit=200)


def _is_time(name: str, type_: str) -> bool:
    return bool(_TIME_TYPES.search(type_) or _TIME_NAMES.search(name.lower()))


def _is_measure(name: str, type_: str) -> bool:
    """A numeric column that is not an identifier (`user_id` is not a series to draw)."""
    lowered = name.lower()
    return bool(_NUMERIC_TYPES.search(type_)) and not (lowered == "id" or lowered.endswith("_id"))
