"""`demo_state`: a demo data directory resumes only with the options it was made with."""

from __future__ import annotations

import pytest

from clickstream.demo_state import DemoStateError, Simulation, load, resume_point, save

SIMULATION = Simulation(seed=42, days=1.0, rate=5_000.0, speedup=600.0)


def test_events_cover_the_days_at_the_rate_and_speedup():
    assert SIMULATION.events == 720_000  # a day in 144 s, at 5,000 a second
    assert Simulation(seed=1, days=0.001, rate=1.0, speedup=1e6).events == 1


def test_state_round_trips(tmp_path):
    save(tmp_path, SIMULATION, 1_234)
    assert load(tmp_path) == (SIMULATION, 1_234)
    assert load(tmp_path / "elsewhere") is None


def test_a_new_directory_starts_at_zero(tmp_path):
    assert resume_point(tmp_path, SIMULATION, logged=0) == 0


def test_resumes_at_the_end_of_the_log(tmp_path):
    save(tmp_path, SIMULATION, 1_000)
    # the log is the authority: a simulator killed before saving wrote more than it said
    assert resume_point(tmp_path, SIMULATION, logged=1_500) == 1_500


def test_other_options_are_refused_with_the_flags_and_fresh(tmp_path):
    save(tmp_path, SIMULATION, 1_000)
    other = Simulation(seed=42, days=1.0, rate=4_000.0, speedup=600.0)
    with pytest.raises(DemoStateError) as error:
        resume_point(tmp_path, other, logged=1_000)
    message = str(error.value)
    assert "--seed 42 --days 1 --rate 5000 --speedup 600" in message
    assert "not --seed 42 --days 1 --rate 4000 --speedup 600" in message
    assert "--fresh" in message


def test_a_log_without_state_or_shorter_than_written_is_refused(tmp_path):
    with pytest.raises(DemoStateError, match="no demo.json"):
        resume_point(tmp_path, SIMULATION, logged=10)
    save(tmp_path, SIMULATION, 1_000)
    with pytest.raises(DemoStateError, match="holds 10 events in its log, but 1,000 were written"):
        resume_point(tmp_path, SIMULATION, logged=10)


def test_an_endless_simulation_has_no_end_and_resumes(tmp_path):
    endless = Simulation(seed=42, days=None, rate=5_000.0, speedup=600.0)
    assert endless.events is None and endless.events_per_day == 720_000
    assert not endless.complete(10**9)
    assert endless.flags() == "--seed 42 --rate 5000 --speedup 600"
    save(tmp_path, endless, 5_000)
    assert load(tmp_path) == (endless, 5_000)
    assert resume_point(tmp_path, endless, logged=6_000) == 6_000
    with pytest.raises(DemoStateError, match="--rate 5000 --speedup 600, not --seed 42 --days 1"):
        resume_point(tmp_path, SIMULATION, logged=6_000)
