"""Dashboard files: what they may say, the errors a mistake gets, and the dashboard inferred from a
results file that has none."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream import pipelines
from clickstream.serve import create_app
from clickstream.serve.dashboards import DashboardError, inferred_dashboard, load_dashboard
from clickstream.serve.results import ResultsDB
from tests.serve.conftest import local_client, write

PANEL = '[[panels]]\ntitle = "Buys"\ntable = "t"\n'


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "board.toml"
    path.write_text(text)
    return path


def test_every_shipped_dashboard_loads() -> None:
    names = [name for name in pipelines.names() if pipelines.dashboard_file(name)]
    assert "seed_000" in names
    for name in names:
        board = load_dashboard(pipelines.dashboard_file(name))  # type: ignore[arg-type]
        assert board.panels and len({p.id for p in board.panels}) == len(board.panels)


def test_a_dashboard_file(tmp_path: Path) -> None:
    board = load_dashboard(
        _spec(
            tmp_path,
            'title = "Shop"\n'
            + PANEL
            + 'kind = "line"\nx = "minute"\ny = ["buys", "views"]\nwide = true\n'
            + '[[panels]]\ntitle = "Funnel"\ntable = "f"\nkind = "funnel"\ny = ["views", "carts", "buys"]\n',
        )
    )
    assert board.title == "Shop" and [p.id for p in board.panels] == ["buys", "funnel"]
    line = board.panels[0]
    assert (line.kind, line.x, line.y, line.wide, line.aggregate) == (
        "line",
        "minute",
        ["buys", "views"],
        True,
        "max",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title = 'x'\n", "needs at least one [[panels]]"),
        ("titel = 'x'\n" + PANEL, "unknown key 'titel'"),
        (PANEL + "colour = 'red'\n", "panel 1: unknown key 'colour'"),
        ('[[panels]]\ntable = "t"\n', "'title' is required"),
        (PANEL + 'kind = "gauge"\n', "'kind' is 'gauge'; one of: line, area"),
        (PANEL + 'kind = "line"\ny = ["a"]\n', "a line panel needs 'x'"),
        (PANEL + 'kind = "pie"\nx = "a"\n', "a pie panel needs 'y'"),
        (PANEL + 'kind = "line"\nx = "a"\ny = ["b", "c"]\nsplit = "d"\n', "'y' names one column"),
        (PANEL + 'kind = "funnel"\ny = ["a"]\n', "two or more stages"),
        (PANEL + 'y = "a"\n', "'y' is a list of column names"),
        (PANEL + PANEL, "two panels are named 'buys'"),
        ("[[panels]\n", "board.toml: "),
    ],
)
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DashboardError, match="board.toml") as caught:
        load_dashboard(_spec(tmp_path, text))
    assert message in str(caught.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DashboardError, match="cannot read dashboard file .*nope.toml"):
        load_dashboard(tmp_path / "nope.toml")


def test_a_dashboard_is_inferred_from_the_tables(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    write(db, "CREATE TABLE per_minute (window_start TIMESTAMP, user_id BIGINT, buys BIGINT, revenue DOUBLE)")
    write(db, "CREATE TABLE top_users (user_id BIGINT, name TEXT, buys BIGINT)")
    write(db, "CREATE TABLE hourly (hour_of_day BIGINT, buy_cnt BIGINT)")
    board = inferred_dashboard(ResultsDB(db).tables())
    kinds = {p.table: (p.kind, p.x, p.y) for p in board.panels}
    assert kinds == {
        "per_minute": ("line", "window_start", ["buys", "revenue"]),  # an id is not a series
        "top_users": ("table", None, []),
        "hourly": ("line", "hour_of_day", ["buy_cnt"]),
    }
    assert board.inferred


def test_the_api_serves_the_dashboard(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    write(db, "CREATE TABLE t (name TEXT, n BIGINT)")
    inferred = local_client(create_app(db)).get("/api/dashboard").json()
    assert inferred["inferred"] and [p["table"] for p in inferred["panels"]] == ["t"]
    board = load_dashboard(_spec(tmp_path, PANEL + 'kind = "pie"\nx = "name"\ny = ["n"]\n'))
    described = local_client(create_app(db, dashboards=[board])).get("/api/dashboard").json()
    assert not described["inferred"] and described["panels"][0]["kind"] == "pie"
