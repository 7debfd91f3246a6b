"""SIGINT (Ctrl-C) and SIGTERM stop every command cleanly: exit 0, no traceback. A `SELECT` on an
unbounded source, `generate`, `replay`, `dashboard` (with an event stream open) and `demo`."""

from __future__ import annotations

import json
import signal
import threading
import urllib.request

import pytest

from tests.cli.helpers import clickstream, free_port, start, wait_for, wait_for_line

SIGNALS = [signal.SIGINT, signal.SIGTERM]


def stop(process, sig: signal.Signals) -> tuple[str, str]:
    """Send `sig`; the rest of stdout and stderr once the process ended (read from the pipes'
    text wrappers: `communicate` would skip what `readline` has buffered already)."""
    process.send_signal(sig)
    out, err = process.stdout.read(), process.stderr.read()
    process.wait(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "Error" not in err, err
    return out, err


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    """A log topic `ub` of 200 events."""
    directory = tmp_path_factory.mktemp("log")
    result = clickstream("generate", "tianchi", "-n", "200", "-o", "log:ub", "--log-dir", str(directory))
    assert result.returncode == 0, result.stderr
    return directory


@pytest.mark.parametrize("sig", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_a_select_on_an_unbounded_source(tmp_path, log_dir, sig):
    script = tmp_path / "select.sql"
    script.write_text(
        f"CREATE TABLE ub (user_id BIGINT, behavior STRING) WITH ('connector' = 'log',\n"
        f"    'path' = '{log_dir}', 'topic' = 'ub', 'format' = 'json');\n"
        "SELECT user_id, behavior FROM ub;\n"
    )
    process = start("run", "-q", str(script))
    wait_for_line(process, "+I[")  # the job runs: it printed a row, and waits for more
    out, _ = stop(process, sig)
    assert out.count("+I[") == 200 - 1  # the rest of the rows, once the first was read


@pytest.mark.parametrize("sig", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_generate_says_what_it_wrote_until_stopped(sig):
    process = start("generate", "tianchi", "-n", "0", "--rate", "500", "-o", "-")
    for _ in range(3):
        wait_for_line(process, "{")
    out, err = stop(process, sig)
    head, topic = err.strip().splitlines()
    assert head.startswith("wrote ") and head.endswith(", interrupted:")
    counted = int(head.split()[1].replace(",", ""))
    # every line written is counted, but for one the signal may have caught between its write
    # and its count
    assert counted in (len(out.splitlines()) + 3, len(out.splitlines()) + 2)
    assert topic == f"  clickstream-feed  {counted:,} -> stdout"


@pytest.mark.parametrize("sig", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_replay_until_stopped(tmp_path, sig):
    csv = tmp_path / "UserBehavior.csv"
    csv.write_text("".join(f"{i},2,3,pv,{1511658000 + 60 * i}\n" for i in range(100)))
    process = start("replay", str(csv), "-o", "-", "--speedup", "60")  # a row a second
    wait_for_line(process, "{")
    _, err = stop(process, sig)
    assert ", interrupted:" in err


@pytest.mark.parametrize("sig", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_the_dashboard_with_an_event_stream_open(tmp_path, sig):
    port = free_port()
    process = start("dashboard", "--port", str(port), "--results", str(tmp_path / "results.db"))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{url}/api/tables"), process)
    opened = threading.Event()
    threading.Thread(target=_listen, args=(f"{url}/api/events", opened), daemon=True).start()
    assert opened.wait(10)
    _, err = stop(process, sig)
    assert "CancelledError" not in err
    assert err.rstrip().endswith("dashboard stopped")


def test_the_demo_stopped_with_sigterm(tmp_path):
    port = free_port()
    process = start("demo", "--port", str(port), "--data-dir", str(tmp_path / "demo"), "--rate", "500")
    wait_for(lambda: _job_runs(port), process, timeout=60)
    _, err = stop(process, signal.SIGTERM)
    assert "demo stopped" in err


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).read()
        return True
    except OSError:
        return False


def _job_runs(port: int) -> bool:
    try:
        status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2).read())
    except OSError:
        return False
    return bool(status.get("queries"))


def _listen(url: str, opened: threading.Event) -> None:
    try:
        with urllib.request.urlopen(url, timeout=30) as stream:
            opened.set()
            while stream.read(1):
                pass
    except OSError:
        pass
