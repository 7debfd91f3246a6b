"""A simulation resumed at `start` continues with exactly the records an uninterrupted run writes
after its first `start`, for every simulator (the demo's restart relies on it)."""

from __future__ import annotations

import itertools

import pytest

from clickstream.simulate.cli import KINDS, _records, make_generator


@pytest.mark.parametrize("kind", KINDS)
def test_a_resumed_simulation_continues_the_same_records(kind: str) -> None:
    whole = [(r.topic, r.key, r.value) for r in make_generator(kind, seed=7).records(3_000)]
    tail = [(r.topic, r.key, r.value) for r in _records(make_generator(kind, seed=7), 3_000, 1_200)]
    assert len(whole) >= 3_000  # events, and the rows of the tables they refer to
    assert tail == whole[1_200:]


@pytest.mark.parametrize("kind", KINDS)
def test_an_endless_simulation_resumes_too_and_its_days_follow_each_other(kind: str) -> None:
    def generator() -> object:
        return make_generator(kind, seed=7, events_per_day=1_000)

    whole = [(r.topic, r.key, r.value) for r in itertools.islice(_records(generator(), None, 0), 3_000)]
    tail = [(r.topic, r.key, r.value) for r in itertools.islice(_records(generator(), None, 1_700), 1_300)]
    assert tail == whole[1_700:]
