"""`clickstream demo`: a simulator, the embedded log, the seed's analyses and the dashboard, in
one process. The simulator runs in a thread and appends to the log; the engine runs the seed's
statements on that log in the main thread; the dashboard serves the results from a thread.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from clickstream import pipelines
from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.runtime.executor import Job

TOPIC = "user_behavior"


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


class Demo:
    def __init__(self, options: DemoOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console(stderr=True)
        self.job: Job | None = None
        self.stopping = threading.Event()
        data = options.data_dir.resolve()
        self.log_dir = data / "log"
        self.results_db = data / "results.db"
        self.dimension_db = data / "dim.db"

    def run(self) -> None:
        from clickstream.serve import create_app, start_in_thread

        self.options.data_dir.mkdir(parents=True, exist_ok=True)
        self.results_db.unlink(missing_ok=True)
        simulator = threading.Thread(target=self._simulate, name="simulator", daemon=True)
        simulator.start()
        app = create_app(self.results_db, status=self._status, title="clickstream demo")
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

    def _simulate(self) -> None:
        from clickstream.simulate.cli import generate

        options = self.options
        # the simulator spreads its events evenly over `days` of event time, so the number of
        # events at `rate` per second sets how fast event time runs
        events = max(int(options.rate * 86_400 * options.days / options.speedup), 1)
        generate(
            "tianchi",
            f"log:{TOPIC}",
            events=events,
            rate=options.rate,
            seed=options.seed,
            dimension=f"sqlite:{self.dimension_db}",
            log_dir=str(self.log_dir),
            days=options.days,
            duration_s=options.duration_s,
        )

    def _run_engine(self) -> None:
        settings = Settings({"table.exec.mini-batch.size": str(self.options.mini_batch_size)})
        engine = Engine(settings)
        script = pipelines.load(
            "seed_000",
            log_dir=str(self.log_dir),
            results_db=str(self.results_db),
            dimension_db=str(self.dimension_db),
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
        self._wait_for_dimension()
        engine.execute_script(script, "seed_000.sql")

    def _wait_for_dimension(self) -> None:
        """The lookup table is written by the simulator thread before its first event."""
        for _ in range(200):
            if self.dimension_db.exists() and self.log_dir.exists():
                return
            self.stopping.wait(0.05)

    def _status(self) -> dict:
        if self.job is None:
            return {"started": 0, "queries": {}, "sources": {}}
        return self._job_status()
