"""The analyses, as Flink SQL files whose connector options are filled in where they run.

A pipeline file is the seeds' SQL with the `WITH (...)` options that say where data lives left as
placeholders, so the same statements read the embedded log or a Kafka broker and write SQLite or
PostgreSQL:

    CREATE TABLE user_behavior (...) WITH ({topics[user_behavior]}, 'format' = 'json');
    CREATE TABLE buy_cnt_per_hour (...) WITH ({results[buy_cnt_per_hour]});
    CREATE TABLE category_dim (...) WITH ({dimensions[category]}, 'lookup.cache.max-rows' = '5000');
    CREATE TABLE Users (..., PRIMARY KEY (user_id) NOT ENFORCED) WITH ({upsert_topics[users]}, ...);

Each placeholder becomes the options of one `Place` (`log_topics`, `kafka_topics`, `jdbc_tables`).
`{upsert_topics[...]}` is a topic read (or written) as a changelog keyed by the table's primary
key: the topics' place gives its `upserts` (the log reads any keyed table so, Kafka needs Flink's
`upsert-kafka` connector).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

Options = Callable[[str], dict[str, str]]


class Place:
    """The connector options of the tables in one place, by table (or topic) name; `upserts`: those
    of its upsert tables, where they differ (by default the same)."""

    def __init__(self, options: Options, upserts: Options | None = None) -> None:
        self.options = options
        self.upserts = Place(upserts) if upserts is not None else self

    def __getitem__(self, name: str) -> str:
        return ", ".join(f"'{key}' = '{_quoted(value)}'" for key, value in self.options(name).items())


def log_topics(path: str, prefix: str = "", extra: Mapping[str, str] | None = None) -> Place:
    """Topics of the embedded log under `path`; `extra` options are added to each table."""
    return Place(lambda topic: {"connector": "log", "path": path, "topic": prefix + topic, **(extra or {})})


def kafka_topics(servers: str, prefix: str = "", extra: Mapping[str, str] | None = None) -> Place:
    """Topics on a Kafka broker (`host:port[,host:port]`); its upsert tables are `upsert-kafka`'s."""

    def options(connector: str) -> Options:
        return lambda topic: {
            "connector": connector,
            "topic": prefix + topic,
            "properties.bootstrap.servers": servers,
            **(extra or {}),
        }

    return Place(options("kafka"), upserts=options("upsert-kafka"))


def jdbc_tables(url: str, schema: str = "", extra: Mapping[str, str] | None = None) -> Place:
    """Tables of a database by JDBC URL (`jdbc:sqlite:<file>`, `jdbc:postgresql://...`)."""
    qualified = f"{schema}." if schema else ""
    return Place(
        lambda table: {"connector": "jdbc", "url": url, "table-name": qualified + table, **(extra or {})}
    )


def load(name: str, *, topics: Place, results: Place, dimensions: Place | None = None) -> str:
    """The statements of pipeline `name` (e.g. 'seed_000') with their places filled in."""
    text = resources.files(__package__).joinpath(f"{name}.sql").read_text()
    places: Mapping[str, Place] = {
        "topics": topics,
        "upsert_topics": topics.upserts,
        "results": results,
        "dimensions": dimensions or results,
    }
    return text.format_map(places)


def dashboard_file(name: str) -> Path | None:
    """The dashboard file next to pipeline `name` (`<name>.dashboard.toml`), if it has one."""
    path = Path(str(resources.files(__package__).joinpath(f"{name}.dashboard.toml")))
    return path if path.is_file() else None


def names() -> list[str]:
    return sorted(
        p.name.removesuffix(".sql") for p in resources.files(__package__).iterdir() if p.name.endswith(".sql")
    )


def _quoted(value: str) -> str:
    return value.replace("'", "''")


__all__ = ["Place", "dashboard_file", "jdbc_tables", "kafka_topics", "load", "log_topics", "names"]
