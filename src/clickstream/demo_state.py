"""What a demo data directory was made with, so that `clickstream demo` can resume it.

`<data dir>/demo.json` holds the options that fix the simulated stream (the same seed, days, rate
and speed-up give the same events in the same order) and how many events were written when the
simulator last stopped. The log itself says where to resume (its end offset); the file says
whether resuming is sound: other options would append a different stream to a log the job has
half read, so they are refused, and `--fresh` starts over instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from clickstream.errors import ClickstreamError
from clickstream.log.files import read_json, write_atomically

STATE_FILE = "demo.json"
FORMAT = 1


class DemoStateError(ClickstreamError):
    """The data directory cannot be resumed as asked."""


@dataclass(frozen=True)
class Simulation:
    """The demo options that decide which events the simulator writes."""

    seed: int
    days: float | None  # None: day after day until stopped
    rate: float
    speedup: float

    @property
    def events_per_day(self) -> float:
        """At `rate` per second, event time runs `speedup` times faster than the wall clock."""
        return self.rate * 86_400 / self.speedup

    @property
    def events(self) -> int | None:
        """Events of the whole simulation (None: endless), spread evenly over `days` of event time."""
        return None if self.days is None else max(int(self.events_per_day * self.days), 1)

    def flags(self) -> str:
        """As the command line gives them: '--seed 42 --days 1 --rate 5000 --speedup 600'."""
        given = ((f.name, getattr(self, f.name)) for f in fields(self))
        return " ".join(f"--{name} {_number(value)}" for name, value in given if value is not None)

    def complete(self, written: int) -> bool:
        return self.events is not None and written >= self.events


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def save(data_dir: Path, simulation: Simulation, written: int) -> None:
    content = {"format": FORMAT, **asdict(simulation), "events": simulation.events, "written": written}
    write_atomically(data_dir / STATE_FILE, content)


def load(data_dir: Path) -> tuple[Simulation, int] | None:
    """The simulation a data directory holds and the events written by its last stop; None if it
    holds none."""
    content = read_json(data_dir / STATE_FILE)
    if content is None:
        return None
    simulation = Simulation(**{f.name: content[f.name] for f in fields(Simulation)})
    return simulation, int(content["written"])


def resume_point(data_dir: Path, simulation: Simulation, logged: int) -> int:
    """Where the simulator goes on, given the `logged` events the log holds (its end offset).

    Raises `DemoStateError` when the log cannot be continued by `simulation`.
    """
    saved = load(data_dir)
    if saved is None:
        if logged:
            _refuse(data_dir, f"holds a log of {logged:,} events but no {STATE_FILE} saying how it was made")
        return 0
    made_with, written = saved
    if made_with != simulation:
        _refuse(data_dir, f"was made with {made_with.flags()}, not {simulation.flags()}")
    if logged < written:
        _refuse(data_dir, f"holds {logged:,} events in its log, but {written:,} were written to it")
    return logged


def _refuse(data_dir: Path, why: str) -> None:
    raise DemoStateError(
        f"Demo Error: {data_dir} {why}. Run with the options it was made with to resume it, "
        "or add --fresh to start it over."
    )
