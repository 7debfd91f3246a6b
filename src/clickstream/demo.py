"""`clickstream demo`: a simulator, the embedded log (or a user's Kafka broker, `kafka`), the seed's
analyses and the dashboard, in one process. The simulator runs in a thread and appends to the bus
(`demo_bus`); the engine runs the seed's statements on it in the main thread; the dashboard serves
the results from a thread.

Stopped and started again on the same data directory, the demo goes on where it stopped: the
simulator writes the rest of the same simulation (see `demo_state`) and the results are kept.
`fresh` starts over. The log keeps about `LOG_RETENTION_BYTES`, so a long run stays bounded.
"""

from __future__ import annotations

import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from clickstream import demo_state, pipelines
from clickstream.config import Settings
from clickstream.demo_bus import EventBus, KafkaBus, LogBus
from clickstream.demo_state import Simulation
from clickstream.engine import Engine
from clickstream.pipelines import jdbc_tables
from clickstream.runtime.executor import Job

PIPELINE = "seed_000"
CHECKPOINTS = "checkpoints"
# Append rows reach results.db at checkpoints (exactly-once): often, so the charts stay live.
CHECKPOINT_INTERVAL = "2 s"
# About 3.5 simulated days at the default rate and speed-up; a job that fell further behind goes on
# from the oldest record left (the log's readers skip what retention deleted).
LOG_RETENTION_BYTES = 256 << 20


@dataclass
class DemoOptions:
    data_dir: Path = Path("clickstream-demo")
    rate: float = 5_000.0  # events per second from the simulator
    speedup: float = 600.0  # event-time seconds per wall-clock second (600: a day in 2.4 min)
    days: float = 1.0  # event time the simulator covers, then it stops
    duration_s: float | None = None  # stop everything after this many seconds
    port: int = 8000
    host: str = "127.0.0.1"
    seed: int = 42
    mini_batch_size: int = 20_000
    fresh: bool = False  # wipe the data directory's log, results and state first
    kafka: str | None = None  # a Kafka broker's `host:port` for the events instead of the embedded log

    @property
    def simulation(self) -> Simulation:
        return Simulation(seed=self.seed, days=self.days, rate=self.rate, speedup=self.speedup)


class Demo:
    def __init__(self, options: DemoOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console(stderr=True)
        self.job: Job | None = None
        self.stopping = threading.Event()
        self.data_dir = options.data_dir.resolve()
        self.bus: EventBus = (
            KafkaBus(options.kafka) if options.kafka else LogBus(self.data_dir / "log", LOG_RETENTION_BYTES)
        )
        self.results_db = self.data_dir / "results.db"
        self.dimension_db = self.data_dir / "dim.db"

    def run(self) -> None:
        from clickstream.serve import create_app, start_in_thread

        start = self._prepare()
        simulator = threading.Thread(target=self._simulate, args=(start,), name="simulator", daemon=True)
        simulator.start()
        from clickstream.serve.dashboards import load_dashboard

        spec = pipelines.dashboard_file(PIPELINE)
        dashboard = load_dashboard(spec) if spec else None
        app = create_app(self.results_db, status=self._status, title="clickstream demo", dashboard=dashboard)
        server = start_in_thread(app, self.options.host, self.options.port)
        self.console.print(
            f"[bold]Dashboard:[/bold] {server.url}  (status: {server.url}/status, "
            f"metrics: {server.url}/metrics) - Ctrl-C stops"
        )
        try:
            self._run_engine()
        finally:
            self.stopping.set()
            server.stop()
            simulator.join(timeout=5)

    def _prepare(self) -> int:
        """Wipe (`fresh`) or check the data directory; write the lookup table the job joins with
        before the job starts. Returns how many events the simulator has written already."""
        from clickstream.simulate.cli import make_generator
        from clickstream.simulate.dimension import write_dimensions

        if self.options.fresh:
            self._wipe()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        simulation = self.options.simulation
        self.console.print(f"Events: {self.bus.describe()}")
        start = demo_state.resume_point(self.data_dir, simulation, self.bus.logged())
        demo_state.save(self.data_dir, simulation, start)
        tianchi = make_generator("tianchi", simulation.seed, days=simulation.days)
        write_dimensions(f"sqlite:{self.dimension_db}", tianchi.dimensions())
        if start >= simulation.events:
            self.console.print(f"The simulation is complete ({start:,} events); the job goes on where it was")
        elif start:
            self.console.print(f"Resuming: {start:,} of {simulation.events:,} events were simulated already")
        return start

    def _wipe(self) -> None:
        # Only what the demo writes: the data directory may hold other files of the user's.
        self.bus.wipe()
        shutil.rmtree(self.data_dir / CHECKPOINTS, ignore_errors=True)
        for database in (self.results_db, self.dimension_db):
            for path in database.parent.glob(database.name + "*"):  # with SQLite's -wal/-journal
                path.unlink()
        (self.data_dir / demo_state.STATE_FILE).unlink(missing_ok=True)

    def _simulate(self, start: int) -> None:
        from clickstream.simulate.cli import generate

        options, simulation = self.options, self.options.simulation
        summary = generate(
            "tianchi",
            events=simulation.events,
            rate=options.rate,
            seed=options.seed,
            days=options.days,
            duration_s=options.duration_s,
            start=start,
            stop=self.stopping,
            **self.bus.output(),
        )
        demo_state.save(self.data_dir, simulation, start + summary.total)

    def _run_engine(self) -> None:
        settings = Settings(
            {
                "table.exec.mini-batch.size": str(self.options.mini_batch_size),
                # the job resumes from its latest checkpoint under <dir>/<pipeline.name> when the
                # demo starts again; a stop takes a final one
                "pipeline.name": "clickstream-demo",
                "state.checkpoints.dir": str(self.data_dir / CHECKPOINTS),
                "execution.checkpointing.interval": CHECKPOINT_INTERVAL,
            }
        )
        engine = Engine(settings)
        script = pipelines.load(
            PIPELINE,
            topics=self.bus.topics(),
            results=jdbc_tables(f"jdbc:sqlite:{self.results_db}"),
            dimensions=jdbc_tables(f"jdbc:sqlite:{self.dimension_db}"),
        )

        def on_job_start(job: Job) -> None:
            from clickstream.serve import job_status

            self.job = job
            self._job_status = job_status(job)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: job.stop())
            if self.options.duration_s is not None:
                timer = threading.Timer(self.options.duration_s, job.stop)
                timer.daemon = True
                timer.start()

        engine.on_job_start = on_job_start
        engine.execute_script(script, f"{PIPELINE}.sql")

    def _status(self) -> dict:
        if self.job is None:
            return {"started": 0, "queries": {}, "sources": {}}
        return self._job_status()
