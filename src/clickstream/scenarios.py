"""The demo's scenarios: one per seed, each a simulator, the seed's statements from the pipeline
catalogue (`pipelines/seed_<name>.sql`) and its dashboard (`pipelines/seed_<name>.dashboard.toml`).
"""

from __future__ import annotations

from dataclasses import dataclass

from clickstream import pipelines
from clickstream.errors import ClickstreamError


@dataclass(frozen=True)
class Scenario:
    name: str  # the seed's number: "000"
    title: str
    simulator: str  # the `clickstream generate` kind that feeds it
    topic: str | None = None  # a one-topic simulator's topic: the name the seed's statements read

    @property
    def pipeline(self) -> str:
        return f"seed_{self.name}"

    @property
    def ready(self) -> bool:
        """Its statements are in the catalogue."""
        return self.pipeline in pipelines.names()


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "000",
            "Website activity: trading volume, unique visitors, top categories",
            "tianchi",
            "user_behavior",
        ),
        Scenario(
            "001", "E-commerce: page views, revenue, top products, stock alerts, conversion", "ecommerce"
        ),
        Scenario(
            "002", "Clickstream: pages, errors, bandwidth, users and cities, sessions", "ksql-clickstream"
        ),
        Scenario("003", "VIP actions of platinum users", "users-clicks"),
        Scenario("004", "First-click attribution of checkouts", "checkouts"),
    )
}


class ScenarioError(ClickstreamError):
    """`--scenario` names no scenario there is."""


def chosen(value: str) -> list[Scenario]:
    """`000`, `000,002` or `all` (every scenario whose statements are in the catalogue)."""
    ready = [s for s in SCENARIOS.values() if s.ready]
    if value.strip().lower() == "all":
        return ready
    names = [part.strip() for part in value.split(",") if part.strip()]
    picked = []
    for name in names or [""]:
        scenario = SCENARIOS.get(name.zfill(3) if name.isdigit() else name)
        if scenario is None or not scenario.ready:
            known = ", ".join(s.name for s in ready)
            raise ScenarioError(
                f"no scenario {name!r}; --scenario takes one of {known}, several (000,002) or all"
            )
        if scenario not in picked:
            picked.append(scenario)
    return picked
