"""`clickstream demo`: for each scenario (`scenarios.py`: one per seed), a simulator, the embedded
log (or a user's Kafka broker, `kafka`), the seed's statements from the pipeline catalogue, and one
dashboard over all of them, in one process. Each simulator writes from a thread of its own to its
scenario's bus (`demo_bus`); each scenario's job runs in a thread of its own; all write their
results into one SQLite file, which the dashboard serves (a tab per scenario).

Stopped and started again on the same data directory, the demo goes on where it stopped: each
simulator writes the rest of the same simulation (see `demo_state`), each job resumes from its
checkpoint and the results are kept. `fresh` starts over. The log keeps about `LOG_RETENTION_BYTES`
per scenario, so a long run stays bounded.

Layout of the data directory: `results.db` (every scenario's result tables), and per scenario
`<name>/`: `log/`, `dim.db` (its dimension tables), `checkpoints/`, `demo.json`.
"""

from __future__ import annotations

import io
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.console import Console

from clickstream import demo_state, pipelines
from clickstream.config import Settings
from clickstream.demo_bus import EventBus, KafkaBus, LogBus
from clickstream.demo_state import Simulation
from clickstream.engine import Engine
from clickstream.errors import ClickstreamError
from clickstream.pipelines import jdbc_tables
from clickstream.runtime.executor import Job
from clickstream.scenarios import SCENARIOS, Scenario

if TYPE_CHECKING:
    from clickstream.serve.access import Access
    from clickstream.serve.status import JobStatusDict

CHECKPOINTS = "checkpoints"
# Append rows reach results.db at checkpoints (exactly-once): often, so the charts stay live.
CHECKPOINT_INTERVAL = "2 s"
# About 3.5 simulated days at the default rate and speed-up; a job that fell further behind goes on
# from the oldest record left (the log's readers skip what retention deleted).
LOG_RETENTION_BYTES = 256 << 20
STOP_JOIN_S = 30.0


@dataclass
class DemoOptions:
    data_dir: Path = Path("clickstream-demo")
    scenarios: list[Scenario] = field(default_factory=lambda: [SCENARIOS["000"]])
    rate: float = 5_000.0  # events per second from each simulator
    speedup: float = 600.0  # event-time seconds per wall-clock second (600: a day in 2.4 min)
    days: float | None = None  # event time the simulators cover, then they stop (None: until stopped)
    duration_s: float | None = None  # stop everything after this many seconds
    port: int = 8000
    host: str = "127.0.0.1"
    access: Access | None = None  # Host names and token (--allow-host, --token); None: loopback's rules
    seed: int = 42
    mini_batch_size: int = 20_000
    fresh: bool = False  # wipe the data directory's logs, results and state first
    kafka: str | None = None  # a Kafka broker's `host:port` for the events instead of the embedded log

    @property
    def simulation(self) -> Simulation:
        return Simulation(seed=self.seed, days=self.days, rate=self.rate, speedup=self.speedup)


class ScenarioRun:
    """One scenario in the demo: its simulator and its job, each on a thread of its own."""

    def __init__(self, scenario: Scenario, options: DemoOptions, data_dir: Path, console: Console) -> None:
        from clickstream.simulate.cli import WriteProgress

        self.scenario = scenario
        self.options = options
        self.console = console
        self.home = data_dir / scenario.name
        self.results_db = data_dir / "results.db"
        self.dimension_db = self.home / "dim.db"
        self.bus: EventBus = (
            KafkaBus(options.kafka, scenario)
            if options.kafka
            else LogBus(self.home / "log", scenario, LOG_RETENTION_BYTES)
        )
        self.job: Job | None = None
        self.job_status: Any = None
        self.error: BaseException | None = None
        self.finished = False  # the simulator wrote the whole simulation
        self.progress = WriteProgress()  # the simulator's last record: the simulated time it has reached

    def prepare(self) -> int:
        """Wipe (`fresh`) or check the scenario's directory; write the dimension tables its job
        looks up before the job starts. Returns how many events were simulated already."""
        from clickstream.simulate.cli import make_generator
        from clickstream.simulate.dimension import write_dimensions

        if self.options.fresh:
            self.wipe()
        self.home.mkdir(parents=True, exist_ok=True)
        simulation = self.options.simulation
        start = demo_state.resume_point(self.home, simulation, self.bus.logged())
        demo_state.save(self.home, simulation, start)
        self.finished = simulation.complete(start)
        generator = make_generator(self.scenario.simulator, simulation.seed)
        write_dimensions(f"sqlite:{self.dimension_db}", generator.dimensions())
        name = self.scenario.name
        if simulation.complete(start):
            self.console.print(f"{name}: the simulation is complete ({start:,} events); the job goes on")
        elif start:
            self.console.print(f"{name}: resuming after {start:,} simulated events")
        return start

    def wipe(self) -> None:
        self.bus.wipe()
        shutil.rmtree(self.home, ignore_errors=True)

    def simulate(self, start: int, stopping: threading.Event) -> None:
        from clickstream.simulate.cli import generate

        options, simulation = self.options, self.options.simulation
        try:
            summary = generate(
                self.scenario.simulator,
                events=simulation.events,
                rate=options.rate,
                seed=options.seed,
                days=options.days or 1.0,
                events_per_day=simulation.events_per_day,
                duration_s=options.duration_s,
                start=start,
                stop=stopping,
                progress=self.progress,
                **self.bus.output(),
            )
            written = start + summary.total
            demo_state.save(self.home, simulation, written)
            self.finished = simulation.complete(written)
        except BaseException as e:  # noqa: BLE001 - reported by the demo's main thread
            self.error = e
            stopping.set()

    def run_job(self, on_start: Any) -> None:
        settings = Settings(
            {
                "table.exec.mini-batch.size": str(self.options.mini_batch_size),
                # the job resumes from its latest checkpoint under <dir>/<pipeline.name> when the
                # demo starts again; a stop takes a final one
                "pipeline.name": f"clickstream-demo-{self.scenario.name}",
                "state.checkpoints.dir": str(self.home / CHECKPOINTS),
                "execution.checkpointing.interval": CHECKPOINT_INTERVAL,
            }
        )
        engine = Engine(settings, out=io.StringIO())  # the statements' "[INFO] ... succeeded" lines
        script = pipelines.load(
            self.scenario.pipeline,
            topics=self.bus.topics(),
            results=jdbc_tables(f"jdbc:sqlite:{self.results_db}"),
            dimensions=jdbc_tables(f"jdbc:sqlite:{self.dimension_db}"),
        )
        engine.on_job_start = on_start
        try:
            engine.execute_script(script, f"{self.scenario.pipeline}.sql")
        except BaseException as e:  # noqa: BLE001 - reported by the demo's main thread
            self.error = e

    def status(self) -> dict[str, Any] | None:
        if self.job_status is None:
            return None
        status: dict[str, Any] = self.job_status()
        return status

    def simulation(self, status: dict[str, Any] | None) -> dict[str, Any]:
        """For the page: the scenario, its dashboard, where its events go, whether its simulator
        still writes, and the simulated time its job has reached (`status`: the job's, if it runs),
        which the page shows on the scenario's tab."""
        from clickstream.serve.status import event_time

        # The job's latest watermark (where its charts are); for statements without event time
        # (seed 003 declares no WATERMARK), where the simulator has got to.
        reached = event_time(status["queries"]) if status else None
        return {
            "title": self.scenario.title,
            "dashboard": self.scenario.pipeline,  # the dashboard file's name: seed_000
            "bus": self.bus.describe(),
            "finished": self.finished,
            "event_time": reached if reached is not None else self.progress.event_ms(),
        }


class Demo:
    def __init__(self, options: DemoOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console(stderr=True)
        self.stopping = threading.Event()
        self.data_dir = options.data_dir.resolve()
        self.results_db = self.data_dir / "results.db"
        self.runs = [ScenarioRun(s, options, self.data_dir, self.console) for s in options.scenarios]
        self.started = time.time()

    def run(self) -> None:
        from clickstream.serve import create_app, start_in_thread

        starts = self._prepare()
        from clickstream.serve.access import Access

        access = self.options.access or Access.for_bind(self.options.host)
        dashboards = self._dashboards()
        app = create_app(
            self.results_db,
            status=self._status,
            title="clickstream demo",
            dashboards=dashboards,
            access=access,
        )
        server = start_in_thread(app, self.options.host, self.options.port)
        if access.warning():
            self.console.print(f"[yellow]{access.warning()}[/yellow]", soft_wrap=True)
        base = access.url(server.port).split("?", 1)[0].rstrip("/")
        self.console.print(
            f"[bold]Dashboard:[/bold] {access.url(server.port)}  (status: {base}/status, "
            f"metrics: {base}/metrics) - Ctrl-C stops",
            soft_wrap=True,
        )
        threads = [
            self._thread(f"simulator-{r.scenario.name}", r.simulate, start, self.stopping)
            for r, start in zip(self.runs, starts, strict=True)
        ]
        jobs = [
            self._thread(f"job-{run.scenario.name}", run.run_job, self._on_job_start(run))
            for run in self.runs
        ]
        self._stop_on_signals()
        try:
            self._wait(jobs)
        finally:
            self._stop()
            for thread in jobs + threads:
                thread.join(STOP_JOIN_S)
            server.stop()
        self._raise_failures()

    def _prepare(self) -> list[int]:
        if self.options.fresh:
            # results.db holds every scenario's results: starting over starts them all over
            for path in self.data_dir.glob(self.results_db.name + "*"):  # with SQLite's -wal/-journal
                path.unlink()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for run in self.runs:
            self.console.print(f"{run.scenario.name}: {run.scenario.title}; events in {run.bus.describe()}")
        return [run.prepare() for run in self.runs]

    def _dashboards(self) -> list[Any]:
        from clickstream.serve.dashboards import load_dashboard

        files = (pipelines.dashboard_file(run.scenario.pipeline) for run in self.runs)
        return [load_dashboard(path) for path in files if path is not None]

    @staticmethod
    def _thread(name: str, target: Any, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        return thread

    def _on_job_start(self, run: ScenarioRun) -> Any:
        def on_job_start(job: Job) -> None:
            from clickstream.serve import job_status

            run.job, run.job_status = job, job_status(job)
            if self.stopping.is_set():
                job.stop()

        return on_job_start

    def _stop_on_signals(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        if self.options.duration_s is not None:
            timer = threading.Timer(self.options.duration_s, self.stopping.set)
            timer.daemon = True
            timer.start()

    def _wait(self, jobs: list[threading.Thread]) -> None:
        """Until a signal, the duration, a failure, or every job's end."""
        while not self.stopping.is_set() and any(thread.is_alive() for thread in jobs):
            self.stopping.wait(0.2)
            if any(run.error is not None for run in self.runs):
                break

    def _stop(self) -> None:
        self.stopping.set()
        for run in self.runs:
            if run.job is not None:
                run.job.stop()

    def _raise_failures(self) -> None:
        for run in self.runs:
            if run.error is not None and not isinstance(run.error, KeyboardInterrupt):
                if isinstance(run.error, ClickstreamError):
                    raise type(run.error)(f"scenario {run.scenario.name}: {run.error}") from run.error
                raise run.error

    def _status(self) -> JobStatusDict:
        """Every scenario's job in one status: queries and sources named `<scenario>/<name>`, and
        each simulation's progress."""
        out: dict[str, Any] = {"started": self.started, "queries": {}, "sources": {}, "simulations": {}}
        for run in self.runs:
            name = run.scenario.name
            status = run.status()
            out["simulations"][name] = run.simulation(status)
            if status is None:
                continue
            out["started"] = min(out["started"], status["started"])
            for part in ("queries", "sources"):
                out[part].update({f"{name}/{key}": value for key, value in status[part].items()})
            if "checkpoints" in status and len(self.runs) == 1:  # /metrics shows one job's checkpoints
                out["checkpoints"] = status["checkpoints"]
        return cast("JobStatusDict", out)
