"""The FastAPI app: dashboard and status pages, REST API, SSE and Prometheus metrics.

```
app = create_app("data/results.db", status=job_status(job))
serve(app)                                   # blocks; Ctrl-C stops it
handle = start_in_thread(app, port=8000)     # or: serve in the background while the engine runs here
...; handle.stop()
```

`access` (see `access.py`) checks the Host header and, beyond loopback, a token: build it with
`Access.for_bind(host, allow_hosts, token)` for the address the server will listen on.
"""

from __future__ import annotations

import contextlib
import html
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from clickstream.serve.access import Access, AccessMiddleware
from clickstream.serve.api import ServeContext, make_router
from clickstream.serve.dashboards import Dashboard, inferred_dashboard
from clickstream.serve.events import MAX_STREAMS
from clickstream.serve.metrics import CONTENT_TYPE_LATEST, make_registry, render
from clickstream.serve.results import ResultsDB, ResultsUnavailable
from clickstream.serve.status import JobStatusDict

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_HOST = "127.0.0.1"  # beyond loopback a token is required (access.py)
DEFAULT_PORT = 8000
GRACEFUL_SHUTDOWN_S = 3

log = logging.getLogger(__name__)


def create_app(
    results_db: str | Path | None,
    status: Callable[[], JobStatusDict] | None = None,
    title: str = "clickstream",
    dashboards: Sequence[Dashboard] = (),
    *,
    access: Access | None = None,
    max_streams: int = MAX_STREAMS,
) -> FastAPI:
    """An app over the SQLite results file (None: status only); `status` (see `status.py`) feeds
    /status and /metrics; `dashboards` say what the dashboard draws (several: one page each; none:
    a panel per result table); `access` defaults to loopback's rules (the Host header must name it)."""
    results = ResultsDB(Path(results_db).resolve()) if results_db is not None else None
    ctx = ServeContext(results=results, status=status)
    ctx.hub.max_streams = max_streams
    app = FastAPI(title=title, docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.serve_context = ctx
    app.include_router(make_router(ctx))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_pages(app, title)
    _add_dashboards(app, ctx, list(dashboards), title)
    _add_metrics(app, ctx)
    app.add_exception_handler(ResultsUnavailable, _results_unavailable)
    app.add_middleware(AccessMiddleware, access=access or Access.for_bind(DEFAULT_HOST))
    return app


async def _results_unavailable(request: Request, error: Exception) -> Response:
    log.warning("%s %s: %s", request.method, request.url.path, error)  # one line, no traceback
    return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "2"})


def _add_pages(app: FastAPI, title: str) -> None:
    def page(file: str) -> HTMLResponse:
        # Read per request: the pages are small, and edits show up without a restart.
        text = (STATIC_DIR / file).read_text(encoding="utf-8")
        return HTMLResponse(text.replace("{{title}}", html.escape(title)))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return page("dashboard.html")

    @app.get("/status", response_class=HTMLResponse, include_in_schema=False)
    def status_page() -> HTMLResponse:
        return page("status.html")


def _add_dashboards(app: FastAPI, ctx: ServeContext, dashboards: list[Dashboard], title: str) -> None:
    @app.get("/api/dashboards", tags=["dashboard"])
    def dashboard_list() -> dict[str, Any]:
        """The dashboards this server draws, by name and title (the first is the default)."""
        boards = dashboards or [inferred_dashboard([], title)]
        return {"dashboards": [{"name": b.name, "title": b.title} for b in boards]}

    @app.get("/api/dashboard", tags=["dashboard"])
    def dashboard_panels(name: str | None = None) -> dict[str, Any]:
        """The panels of dashboard `name` (default: the first): the pipeline's dashboard file, or
        one panel per result table (a line chart of its numeric columns over its time column, else
        the table)."""
        if not dashboards:
            tables = ctx.results.tables() if ctx.results is not None else []
            return inferred_dashboard(tables, title).to_json()
        chosen = next((b for b in dashboards if b.name == name), None if name else dashboards[0])
        if chosen is None:
            known = ", ".join(b.name for b in dashboards)
            raise HTTPException(404, f"no dashboard named {name!r}; there are: {known}")
        return chosen.to_json()


def _add_metrics(app: FastAPI, ctx: ServeContext) -> None:
    registry = make_registry(ctx.results, ctx.status)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(render(registry), media_type=CONTENT_TYPE_LATEST)


class _Server(uvicorn.Server):
    """uvicorn, plus: on exit, end the app's SSE streams so shutdown does not wait for them."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event | None) -> None:
        super().__init__(config)
        self._stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # uvicorn's first: it takes a Ctrl-C after `should_exit` for a second one, which forces
        # the exit and cancels the app's tasks (a CancelledError traceback).
        super().handle_exit(sig, frame)
        self.request_stop()

    def request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        self.should_exit = True


def _server(app: FastAPI, host: str, port: int, log_level: str) -> _Server:
    ctx: ServeContext | None = getattr(app.state, "serve_context", None)
    if ctx is not None:
        ctx.stopping.clear()
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S
    )
    return _Server(config, ctx.stopping if ctx else None)


def serve(app: FastAPI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "info") -> None:
    """Run the app with uvicorn in the current thread until Ctrl-C/SIGTERM."""
    _server(app, host, port, log_level).run()


@dataclass
class ServerHandle:
    """A server running in a background thread; `stop()` ends it and waits for the thread."""

    server: _Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.request_stop()
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            log.warning("dashboard server did not stop within %.0f s", timeout_s)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    app: FastAPI,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    log_level: str = "warning",
    startup_timeout_s: float = 10.0,
) -> ServerHandle:
    """Serve in a daemon thread (uvicorn installs no signal handlers off the main thread, so Ctrl-C
    still reaches the engine). `port=0` picks a free port; the handle tells which."""
    server = _server(app, host, port, log_level)
    thread = threading.Thread(target=_run, args=(server,), name="clickstream-serve", daemon=True)
    thread.start()
    started = _wait_started(server, thread, startup_timeout_s)
    if not started:
        server.request_stop()
        thread.join(startup_timeout_s)
        raise RuntimeError(f"dashboard server failed to start on {host}:{port} (port in use?)")
    return ServerHandle(server, thread, host, _bound_port(server, port))


def _run(server: uvicorn.Server) -> None:
    # uvicorn exits on a bind failure after logging why; start_in_thread raises for the caller.
    with contextlib.suppress(SystemExit):
        server.run()


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.started:
            return True
        if not thread.is_alive():
            return False  # uvicorn exits its thread when it cannot bind
        time.sleep(0.02)
    return server.started


def _bound_port(server: uvicorn.Server, requested: int) -> int:
    for listener in getattr(server, "servers", []):
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    return requested
