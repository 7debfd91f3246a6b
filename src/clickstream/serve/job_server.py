"""`clickstream run --serve`: the status page, REST API and /metrics of the job being run.

The same server the demo runs (`create_app` in a thread, `job_status` of the running job), for a
user's own script: `attach(job)` is the engine's `on_job_start`. The server starts with the first
job of the script and follows each later one (a script may run several jobs one after another). If
the job's JDBC sinks write to an SQLite file, its tables are served too (the first such file);
otherwise the server gives the status alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from clickstream.errors import ClickstreamError
from clickstream.serve.access import Access
from clickstream.serve.app import ServerHandle, create_app, start_in_thread
from clickstream.serve.status import JobStatusDict, StatusFn, job_status

SQLITE_URL = "jdbc:sqlite:"


class JobServer:
    def __init__(
        self,
        host: str,
        port: int,
        access: Access,
        say: Callable[[str], None] = print,
        title: str = "clickstream run",
    ) -> None:
        self.host, self.port, self.access = host, port, access
        self.say = say
        self.title = title
        self.handle: ServerHandle | None = None
        self.results: Path | None = None
        self._status: StatusFn | None = None
        self._lock = threading.Lock()

    def attach(self, job: object) -> None:
        """Serve `job` (started now); the first call starts the server."""
        with self._lock:
            self._status = job_status(job)  # type: ignore[arg-type]
        if self.handle is None:
            self.results = sqlite_results_of(job)
            self._start()

    def status(self) -> JobStatusDict:
        with self._lock:
            status = self._status
        if status is None:
            return JobStatusDict(started=0.0, queries={}, sources={})
        return status()

    def _start(self) -> None:
        app = create_app(self.results, status=self.status, title=self.title, access=self.access)
        try:
            self.handle = start_in_thread(app, self.host, self.port)
        except RuntimeError:
            raise ClickstreamError(
                f"cannot serve on {self.host}:{self.port}: the address is in use or not this machine's "
                "(choose another with --port or --host)"
            ) from None
        url = self.access.url(self.handle.port)
        base = url.split("?", 1)[0].rstrip("/")
        tables = f"results from {self.results}" if self.results else "no SQLite results: status only"
        warning = self.access.warning()
        if warning:
            self.say(warning)
        self.say(f"Serving {url} ({tables}; status: {base}/status, metrics: {base}/metrics)")

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.stop()
            self.handle = None


def sqlite_results_of(job: object) -> Path | None:
    """The SQLite file the job's first JDBC sink on SQLite writes to, if any.

    Read from the sink operators' table options without importing the runtime (serve only reads
    status and results): each pipeline's last operator is its sink."""
    for pipeline in getattr(job, "pipelines", []):
        operators = getattr(pipeline, "operators", [])
        table = getattr(getattr(operators[-1], "sink", None), "table", None) if operators else None
        options: dict[str, Any] = getattr(table, "options", {}) or {}
        if options.get("connector") == "jdbc":
            path = sqlite_path(str(options.get("url", "")))
            if path is not None:
                return path
    return None


def sqlite_path(url: str) -> Path | None:
    """The file of a `jdbc:sqlite:` URL (a plain path, or a `file:` URI); None for other databases
    and for in-memory ones."""
    if not url.startswith(SQLITE_URL):
        return None
    rest = url[len(SQLITE_URL) :]
    rest = unquote(urlsplit(rest).path) if rest.startswith("file:") else rest.partition("?")[0]
    if not rest or rest == ":memory:":
        return None
    return Path(rest)
