"""`clickstream demo --scenario`: which scenarios a value names, and the error for one that is not."""

from __future__ import annotations

import pytest

from clickstream import pipelines
from clickstream.scenarios import SCENARIOS, ScenarioError, chosen


def test_each_ready_scenario_has_its_statements_and_dashboard() -> None:
    ready = [s for s in SCENARIOS.values() if s.ready]
    assert [s.name for s in ready][:1] == ["000"]
    for scenario in ready:
        assert scenario.pipeline in pipelines.names()
        assert pipelines.dashboard_file(scenario.pipeline) is not None, scenario.name


def test_values() -> None:
    assert [s.name for s in chosen("000")] == ["000"]
    assert [s.name for s in chosen("0")] == ["000"]
    assert [s.name for s in chosen("all")] == [s.name for s in SCENARIOS.values() if s.ready]
    assert [s.name for s in chosen("000, 000")] == ["000"]


@pytest.mark.parametrize("value", ["", "999", "seed", "000,7"])
def test_an_unknown_scenario_lists_the_known_ones(value: str) -> None:
    with pytest.raises(ScenarioError, match="--scenario takes one of 000"):
        chosen(value)
