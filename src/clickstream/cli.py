"""The `clickstream` command."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.errors import ClickstreamError, CommandError, redact_secrets
from clickstream.runtime.batch import MAX_WATERMARK, MIN_WATERMARK
from clickstream.runtime.executor import Job

if TYPE_CHECKING:
    from clickstream.serve.access import Access

err = Console(stderr=True)
DEBUG_VARIABLE = "CLICKSTREAM_DEBUG"


class _Commands(TyperGroup):
    """Every command's way out. A usage mistake (bad option or value): one line naming it and the
    help to read, exit 2. SIGINT or SIGTERM: a clean stop, exit 0. Any other exception: one line
    naming it, exit 1; `CLICKSTREAM_DEBUG=1` shows its traceback instead."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        # Never click's standalone mode: its messages are boxes of several lines, and it exits 130
        # on Ctrl-C. `standalone_mode` is taken and ignored: this always exits.
        name = prog_name or "clickstream"
        with _sigterm_as_interrupt():
            try:
                result = super().main(args, name, complete_var, False, windows_expand_args, **extra)
            except typer.Abort:  # end of input at a prompt
                sys.exit(1)
            except Exception as error:
                if not _is_usage_error(error):
                    raise
                usage: Any = error
                if usage.format_message():  # empty when it printed the help (no command given)
                    _say(_usage_line(usage), "red")
                sys.exit(usage.exit_code)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM where the command does not stop by itself
            _say("stopped")
            return 0
        except Exception as error:
            if _is_usage_error(error) or os.environ.get(DEBUG_VARIABLE):
                raise
            _say(f"Error: {_one_line(error)} (set {DEBUG_VARIABLE}=1 for the traceback)", "red")
            raise typer.Exit(1) from None


def _is_usage_error(error: BaseException) -> bool:
    """Click's `UsageError`s and `ClickException`s (typer vendors click, so matched by shape)."""
    return hasattr(error, "format_message") and isinstance(getattr(error, "exit_code", None), int)


def _usage_line(error: Any) -> str:
    message = " ".join(error.format_message().split()).rstrip(".")
    ctx = getattr(error, "ctx", None)
    help_hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"Error: {message}{help_hint}"


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a command as Ctrl-C does (a command that stops its job itself replaces it)."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # signals reach the main one only
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


app = typer.Typer(
    help="Real-time clickstream analytics: Flink SQL on an embedded streaming engine.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Commands,
)


def _say(text: str, style: str | None = None) -> None:
    """Print text that may hold user input (statements, names, paths) exactly: escaped, so rich
    does not take `[a-z]` for markup, and not wrapped, so a caret stays under its column."""
    markup = escape(text)
    err.print(f"[{style}]{markup}[/{style}]" if style else markup, highlight=False, soft_wrap=True)


def _settings(options: list[str]) -> Settings:
    settings = Settings()
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set needs key=value, got '{option}'")
        settings.set(key.strip(), value.strip())
    return settings


def _watermark_text(watermark: int) -> str:
    if watermark == MIN_WATERMARK:
        return "-"
    if watermark == MAX_WATERMARK:
        return "+inf"
    return datetime.fromtimestamp(watermark / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _status_table(job: Job) -> Table:
    elapsed = max(time.monotonic() - job.status.started, 1e-9)
    table = Table(
        title=f"{job.status.records_in:,} records read, "
        f"{job.status.records_in / elapsed:,.0f}/s, {elapsed:.1f} s",
        title_justify="left",
    )
    for column in ("query", "in", "out", "late dropped", "malformed", "watermark"):
        table.add_column(column, justify="left" if column in ("query", "watermark") else "right")
    for name, m in job.metrics().items():
        table.add_row(
            escape(name),
            f"{m['records_in']:,}",
            f"{m['records_out']:,}",
            f"{m['late_dropped']:,}",
            f"{m['malformed']:,}",
            _watermark_text(m["watermark"]),
        )
    notes = job.waiting() + _checkpoint_note(job) + _lag_notes(job)
    if notes:
        table.caption = escape("; ".join(notes))
    return table


def _checkpoint_note(job: Job) -> list[str]:
    checkpointer = job.checkpointer
    if checkpointer is None:
        return []
    restored = job.status.restored_from
    note = f"resumed from checkpoint {restored}, " if restored else ""
    if not checkpointer.last_id:
        return [f"{note}no checkpoint yet"]
    size = checkpointer.last_bytes / 1024
    return [
        f"{note}checkpoint {checkpointer.last_id} ({checkpointer.last_duration_ms:.0f} ms, {size:,.0f} KiB)"
    ]


def _lag_notes(job: Job) -> list[str]:
    """The lag of each log source, per partition (records appended, not read yet)."""
    notes = []
    for reader in job.readers.values():
        per_partition = getattr(reader.source, "lag_per_partition", None)
        if per_partition is not None:
            lags = ", ".join(f"p{p} {n:,}" for p, n in per_partition().items())
            notes.append(f"{reader.scan.table.name} lag: {lags}")
    return notes


def _host_option(default: str = "127.0.0.1") -> str:
    return typer.Option(
        default, "--host", help="Listen address (loopback by default; beyond it a token is required)."
    )


def _allow_host_option() -> list[str]:
    return typer.Option(
        [], "--allow-host", metavar="NAME", help="Also accept this Host header name (repeatable; * for any)."
    )


def _token_option() -> str | None:
    return typer.Option(
        None,
        "--token",
        help="The token requests must carry (generated and printed when listening beyond loopback).",
    )


def _access(host: str, allow_host: list[str], token: str | None) -> Access:
    from clickstream.serve.access import Access

    return Access.for_bind(host, allow_host, token)


def _stop_running_job(engine: Engine) -> None:
    """SIGINT and SIGTERM stop the running job (INSERTs or a SELECT), which flushes, closes and
    returns, so the command exits 0; before any job runs they stop the command."""

    def stop(*_: object) -> None:
        job = engine.current_job
        if job is None:
            raise KeyboardInterrupt
        job.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


@app.command()
def run(
    cli: typer.Context,
    script: Path = typer.Argument(..., help="A file of Flink SQL statements.", exists=True, dir_okay=False),
    set_: list[str] = typer.Option([], "--set", "-s", help="An option, key=value (as SET)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live status."),
    fresh: bool = typer.Option(
        False, "--fresh", help="Forget the job's checkpoints and start over (else it resumes)."
    ),
    serve_: bool = typer.Option(
        False, "--serve", help="Serve the job's status page, REST API and /metrics while it runs."
    ),
    port: int = typer.Option(8000, "--port", "-p", help="The --serve port."),
    host: str = _host_option(),
    allow_host: list[str] = _allow_host_option(),
    token: str | None = _token_option(),
) -> None:
    """Run every statement of SCRIPT. With file sources it runs to the end and exits 0; a job
    stopped or killed resumes from its last checkpoint when run again."""
    engine = Engine(_settings(set_), fresh=fresh)
    text = script.read_text()
    live: Live | None = None
    server = None
    if serve_:
        from clickstream.serve.job_server import JobServer

        server = JobServer(host, port, _access(host, allow_host, token), say=_say)
        cli.call_on_close(server.stop)

    def on_job_start(job: Job) -> None:
        nonlocal live
        signal.signal(signal.SIGINT, lambda *_: job.stop())
        signal.signal(signal.SIGTERM, lambda *_: job.stop())
        if server is not None:
            server.attach(job)
        if not quiet and err.is_terminal:
            # Rendered on Live's own thread, so the table stays current while a sink waits for its database.
            live = Live(console=err, refresh_per_second=4, get_renderable=lambda: _status_table(job))
            live.start()

    engine.on_job_start = on_job_start
    _stop_running_job(engine)
    try:
        engine.execute_script(text, str(script))
    except ClickstreamError as error:
        if live is not None:
            live.stop()
        _say(str(error), "red")
        raise typer.Exit(1) from None
    except Exception as error:  # a bug or an external failure, not a user mistake
        if live is not None:
            live.stop()
        if os.environ.get(DEBUG_VARIABLE):
            raise
        # Not a message of ours: it may quote the script, so its secret values are masked too.
        message = redact_secrets(_one_line(error), text)
        _say(f"Execution Error: {message} (set {DEBUG_VARIABLE}=1 for the traceback)", "red")
        raise typer.Exit(1) from None
    if live is not None:
        live.stop()
    if not quiet and engine.last_job is not None:
        err.print(_status_table(engine.last_job))


@app.command()
def explain(
    script: Path = typer.Argument(..., exists=True, dir_okay=False),
    set_: list[str] = typer.Option([], "--set", "-s"),
) -> None:
    """Print the plan of each INSERT / SELECT of SCRIPT without running it."""
    engine = Engine(_settings(set_))
    try:
        sys.stdout.write(engine.explain(script.read_text()))
    except ClickstreamError as error:
        _say(str(error), "red")
        raise typer.Exit(1) from None


LOG_DIR_HELP = (
    "The embedded log's directory (default: $CLICKSTREAM_LOG_DIR, else ./clickstream-log, "
    "where the log connector reads without 'path')."
)


def _above_zero(value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not above 0")
    return value


def _check_port(host: str, port: int) -> None:
    """Refuse, naming `--port`, an address the dashboard cannot listen on, before anything starts
    (uvicorn would log a traceback, and the demo would have started its job)."""
    if not 0 < port < 65536:
        raise CommandError(f"--port {port} is not a port: choose one from 1 to 65535")
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise CommandError(f"cannot listen on --host {host}: {error.strerror}") from None
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise CommandError(
                        f"port {port} on {host} is in use (another dashboard or demo?): "
                        "stop it or choose another with --port"
                    ) from None
                if error.errno == errno.EACCES:
                    raise CommandError(
                        f"no permission to listen on port {port}: choose one above 1023 with --port"
                    ) from None
                raise CommandError(f"cannot listen on {host}:{port}: {error.strerror}") from None


@contextlib.contextmanager
def _signals_left_to_the_server() -> Iterator[None]:
    """uvicorn stops on SIGINT/SIGTERM by itself, then raises the signal again for the handler it
    found. That handler does nothing here: Python's would turn it into a KeyboardInterrupt that
    cancels the server's tasks (a `CancelledError` traceback) and exits 130, and the default
    SIGTERM would kill the process (143)."""
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """A user's mistake or an unreachable service (a ClickstreamError): its message, exit code 1."""
    try:
        yield
    except ClickstreamError as error:
        _say(str(error), "red")
        raise typer.Exit(1) from None


@app.command()
def generate(
    kind: str = typer.Argument(
        "tianchi", help="tianchi | ecommerce | ksql-clickstream | users-clicks | checkouts (one per seed)."
    ),
    out: str = typer.Option(
        "-",
        "--out",
        "-o",
        help="File (.jsonl or .csv), - for stdout, log:<topic> for the embedded log, "
        "or kafka://host:port/<topic> for Kafka (several topics: <topic> is their prefix).",
    ),
    events: int | None = typer.Option(
        100_000, "--events", "-n", min=0, help="How many events (0: endless, until --duration)."
    ),
    rate: float | None = typer.Option(
        None, "--rate", min=0, help="Events per second (default or 0: as fast as possible)."
    ),
    seed: int = typer.Option(42, "--seed", help="Same seed, same data."),
    days: float = typer.Option(1.0, "--days", callback=_above_zero, help="Event-time span, in days."),
    late_ratio: float = typer.Option(
        0.0, "--late-ratio", min=0, max=1, help="Share of events arriving late."
    ),
    malformed_ratio: float = typer.Option(
        0.0, "--malformed-ratio", min=0, max=1, help="Share of malformed records."
    ),
    disorder_ms: int = typer.Option(3_000, "--disorder-ms", min=0, help="Out-of-orderness, in ms."),
    duration: float | None = typer.Option(None, "--duration", min=0, help="Stop after this many s."),
    dimension: str | None = typer.Option(
        None,
        "--dimension",
        help="Also write the dimension tables: a SQLite path, postgresql://... or mysql://...",
    ),
    log_dir: str | None = typer.Option(None, "--log-dir", help=LOG_DIR_HELP),
) -> None:
    """Simulate a seed's data, deterministically, at a rate, to a file, stdout, the log or Kafka.
    Names each file or topic written, with its count, at the end."""
    from clickstream.simulate.cli import generate as run_generate

    with _user_errors():
        summary = run_generate(
            kind,
            out,
            events=events or None,
            rate=rate,
            seed=seed,
            late_ratio=late_ratio,
            malformed_ratio=malformed_ratio,
            disorder_ms=disorder_ms,
            duration_s=duration,
            dimension=dimension,
            log_dir=log_dir,
            days=days,
        )
    _say(str(summary))


@app.command()
def replay(
    path: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="A Tianchi UserBehavior.csv (user,item,category,behavior,unix seconds).",
    ),
    out: str = typer.Option(
        "log:user_behavior",
        "--out",
        "-o",
        help="File, - for stdout, log:<topic> or kafka://host:port/<topic>.",
    ),
    speedup: float = typer.Option(
        3_600, "--speedup", min=0, help="Event-time seconds per second (0: no waiting)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=0, help="Replay only this many rows."),
    log_dir: str | None = typer.Option(None, "--log-dir", help=LOG_DIR_HELP),
    duration: float | None = typer.Option(None, "--duration", min=0, help="Stop after this many s."),
) -> None:
    """Replay the real Tianchi file in event-time order at a speed-up, with a progress bar. Names
    each file or topic written, with its count, at the end."""
    from clickstream.simulate.cli import replay as run_replay

    with _user_errors():
        summary = run_replay(path, out, speedup or None, limit=limit, log_dir=log_dir, duration_s=duration)
    _say(str(summary))


@app.command()
def dashboard(
    results: Path = typer.Option(
        Path("data/results.db"), "--results", "-r", help="The SQLite file the jobs write their results to."
    ),
    port: int = typer.Option(8000, "--port", "-p"),
    host: str = _host_option(),
    allow_host: list[str] = _allow_host_option(),
    token: str | None = _token_option(),
    spec: Path | None = typer.Option(
        None,
        "--spec",
        help="A dashboard file (TOML: panels of table, kind, columns); default: a panel per table.",
    ),
) -> None:
    """Serve the live dashboard, REST API and /metrics over a results database."""
    from clickstream.serve import create_app, serve
    from clickstream.serve.dashboards import DashboardError, load_dashboard

    try:
        panels = load_dashboard(spec) if spec else None
    except DashboardError as error:
        _say(str(error), "red")
        raise typer.Exit(2) from None
    access = _access(host, allow_host, token)
    with _user_errors():
        _check_port(host, port)
    if access.warning():
        _say(str(access.warning()), "yellow")
    _say(f"Dashboard on {access.url(port)} over {results} - Ctrl-C stops")
    with _signals_left_to_the_server():
        serve(create_app(results, dashboards=[panels] if panels else [], access=access), host=host, port=port)
    _say("dashboard stopped")


@app.command()
def demo(
    scenario: str = typer.Option(
        "000",
        "--scenario",
        "-s",
        help="Which seed's analyses run: 000, 001, 002, 003, 004, several (000,002) or all.",
    ),
    rate: float = typer.Option(
        5_000, "--rate", callback=_above_zero, help="Events per second from each scenario's simulator."
    ),
    speedup: float = typer.Option(
        600, "--speedup", callback=_above_zero, help="Event-time seconds per second (600: a day in 2.4 min)."
    ),
    days: float | None = typer.Option(
        None,
        "--days",
        callback=_above_zero,
        help="Days of event time to simulate, then stop (default: until stopped).",
    ),
    duration: float | None = typer.Option(
        None, "--duration", min=0, help="Stop after this many seconds (default: Ctrl-C)."
    ),
    port: int = typer.Option(8000, "--port", "-p", help="Dashboard port."),
    host: str = _host_option(),
    allow_host: list[str] = _allow_host_option(),
    token: str | None = _token_option(),
    data_dir: Path = typer.Option(
        Path("clickstream-demo"), "--data-dir", help="Where the log, the results and the dimension table go."
    ),
    seed: int = typer.Option(42, "--seed", help="Same seed, same simulated events."),
    fresh: bool = typer.Option(
        False, "--fresh", help="Delete the data directory's log, results and checkpoints and start over."
    ),
    kafka: str | None = typer.Option(
        None,
        "--kafka",
        metavar="HOST:PORT",
        help="Send the events through this Kafka broker (topic clickstream-demo.user_behavior) "
        "instead of the embedded log.",
    ),
) -> None:
    """Simulators -> embedded log (or Kafka) -> the seeds' analyses -> SQLite -> live dashboards, in
    one command. Prints the dashboard URL; Ctrl-C stops everything cleanly. Started again on the same
    --data-dir, it goes on where it stopped (unless --fresh)."""
    from clickstream.demo import Demo, DemoOptions
    from clickstream.scenarios import chosen

    try:
        scenarios = chosen(scenario)
    except ClickstreamError as error:
        _say(str(error), "red")
        raise typer.Exit(2) from None
    options = DemoOptions(
        scenarios=scenarios,
        data_dir=data_dir,
        rate=rate,
        speedup=speedup,
        days=days,
        duration_s=duration,
        port=port,
        host=host,
        access=_access(host, allow_host, token),
        seed=seed,
        fresh=fresh,
        kafka=kafka,
    )
    try:
        _check_port(options.host, options.port)
        Demo(options, err).run()
    except ClickstreamError as error:
        _say(str(error), "red")
        raise typer.Exit(1) from None
    err.print("demo stopped")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
