"""Every user mistake gets one line that names it and says what to do, never a traceback: a bad
option, an unknown simulator, an output path that cannot be written, a negative count or rate, an
unreachable database, a busy port. Unexpected errors: one line and how to see the traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clickstream.simulate import KINDS
from tests.cli.helpers import clickstream, environment, listening_socket, one_line


def test_an_unknown_option_names_it_and_the_help():
    result = clickstream("run", "--frobnicate", "job.sql")
    assert result.returncode == 2
    assert one_line(result.stderr) == "Error: No such option: --frobnicate (see 'clickstream run --help')"


def test_a_misspelled_option_suggests_the_right_one():
    result = clickstream("generate", "--event", "5")
    assert result.returncode == 2
    assert "--events" in one_line(result.stderr)


def test_an_unknown_command():
    result = clickstream("rnu", "job.sql")
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("Error: No such command 'rnu'")


def test_a_missing_script():
    result = clickstream("run", "nope.sql")
    assert result.returncode == 2
    assert "'nope.sql' does not exist" in one_line(result.stderr)


def test_an_unknown_simulator_lists_the_known_ones(tmp_path):
    result = clickstream("generate", "clickz", "-n", "10", "-o", str(tmp_path / "x.jsonl"))
    assert result.returncode == 1
    assert one_line(result.stderr) == f"Error: unknown simulator 'clickz': choose one of {', '.join(KINDS)}"


@pytest.mark.parametrize(
    ("out", "says"),
    [
        ("{tmp}", "it is a directory: give a file name, such as {tmp}/events.jsonl"),
        ("{tmp}/file/x.jsonl", "{tmp}/file is a file, not a directory: choose another path"),
        # /proc takes no new directory, not even from root: a directory that cannot be made
        ("/proc/clickstream/x.jsonl", "no such file or directory: choose another path"),
    ],
)
def test_an_output_path_that_cannot_be_written(tmp_path, out, says):
    (tmp_path / "file").write_text("")
    out = out.format(tmp=tmp_path)
    result = clickstream("generate", "tianchi", "-n", "10", "-o", out)
    assert result.returncode == 1
    assert one_line(result.stderr) == f"Error: cannot write --out {out}: {says.format(tmp=tmp_path)}"


def test_a_missing_output_directory_is_created(tmp_path):
    result = clickstream("generate", "tianchi", "-n", "10", "-o", "data/new/x.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "data/new/x.jsonl").read_text().splitlines()) == 10


def test_a_log_directory_that_cannot_be_written(tmp_path):
    result = clickstream("generate", "tianchi", "-n", "5", "-o", "log:t", "--log-dir", "/proc/clickstream")
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        "Error: cannot write the log in /proc/clickstream: no such file or directory; "
        "choose another --log-dir (or $CLICKSTREAM_LOG_DIR)"
    )


def test_a_log_topic_name_the_log_refuses(tmp_path):
    result = clickstream("generate", "tianchi", "-n", "5", "-o", "log:a/b", "--log-dir", str(tmp_path))
    assert result.returncode == 1
    assert one_line(result.stderr).startswith("Error: --out log:a/b: 'a/b' is not a valid topic name")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["generate", "-n", "-5"], "Invalid value for '--events' / '-n'"),
        (["generate", "--rate", "-1"], "Invalid value for '--rate'"),
        (["generate", "--days", "0"], "Invalid value for '--days': 0 is not above 0"),
        (["generate", "--late-ratio", "1.5"], "Invalid value for '--late-ratio'"),
        (["generate", "--duration", "-3"], "Invalid value for '--duration'"),
        (["replay", "{csv}", "--speedup", "-1"], "Invalid value for '--speedup'"),
        (["replay", "{csv}", "--limit", "-1"], "Invalid value for '--limit'"),
        (["demo", "--rate", "0"], "Invalid value for '--rate': 0 is not above 0"),
        (["demo", "--speedup", "-600"], "Invalid value for '--speedup': -600 is not above 0"),
        (["demo", "--days", "-1"], "Invalid value for '--days': -1 is not above 0"),
        (["dashboard", "--port", "70000"], "--port 70000 is not a port: choose one from 1 to 65535"),
    ],
)
def test_negative_or_zero_counts_and_rates(tmp_path, args, says):
    csv = tmp_path / "UserBehavior.csv"
    csv.write_text("1,2,3,pv,1511658000\n")
    result = clickstream(*(a.format(csv=csv) for a in args), cwd=tmp_path)
    assert result.returncode in (1, 2)
    line = one_line(result.stderr)
    assert line.startswith("Error: ") and says in line
    assert not (tmp_path / "clickstream-demo").exists()  # refused before anything started


def test_a_file_that_is_not_user_behavior_csv(tmp_path):
    csv = tmp_path / "clicks.csv"
    csv.write_text("user,item,category,behavior,ts\n1,2,3,pv,1511658000\n")
    result = clickstream("replay", str(csv), "-o", str(tmp_path / "out.jsonl"), "--speedup", "0")
    assert result.returncode == 1
    assert one_line(result.stderr).startswith(f"Error: cannot read {csv} as Tianchi's UserBehavior.csv")


def test_an_unreachable_dimension_database_masks_its_password(tmp_path):
    url = "postgresql://shop:hunter2@127.0.0.1:1/shop"  # port 1: nothing listens, refused at once
    result = clickstream(
        "generate", "tianchi", "-n", "5", "-o", str(tmp_path / "x.jsonl"), "--dimension", url
    )
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith(
        "Error: cannot write the --dimension tables to postgresql://shop:******@127.0.0.1:1/shop"
    )
    assert "Connection refused" in line and "hunter2" not in line


def test_an_unreachable_sink_database(tmp_path):
    script = tmp_path / "job.sql"
    script.write_text(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '5');\n"
        "CREATE TABLE snk (id BIGINT) WITH ('connector' = 'jdbc',\n"
        "    'url' = 'jdbc:postgresql://127.0.0.1:1/shop', 'table-name' = 't');\n"
        "INSERT INTO snk SELECT id FROM src;\n"
    )
    result = clickstream("run", "-q", "-s", "connection.max-retry-timeout=1 s", str(script))
    assert result.returncode == 1
    assert "Connection refused" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["dashboard"], ["demo", "--data-dir", "{tmp}/demo"]])
def test_a_busy_port_names_port(tmp_path, command):
    with listening_socket() as port:
        args = [a.format(tmp=tmp_path) for a in command]
        result = clickstream(*args, "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"Error: port {port} on 127.0.0.1 is in use (another dashboard or demo?): "
        "stop it or choose another with --port"
    )
    assert not (tmp_path / "demo").exists()  # the demo checks the port before it starts anything


# The real command with a bug put in. (`run` names its own errors "Execution Error" and masks the
# script's secrets in them; the other commands share one handler.)
BUG = """
import sys

def broken(*args, **kwargs):
    raise RuntimeError("it broke\\nwith a second line")

{patch}
sys.argv = ["clickstream", *{args!r}]
from clickstream.cli import main
main()
"""
BUGS = {
    "generate": ("import clickstream.simulate.cli as m; m.generate = broken", ["generate", "-n", "5"]),
    "run": ("import clickstream.engine as m; m.Engine.execute_script = broken", ["run", "{script}"]),
}


@pytest.mark.parametrize(("command", "kind"), [("generate", "Error"), ("run", "Execution Error")])
def test_an_unexpected_error_is_one_line_and_says_how_to_see_the_traceback(tmp_path, command, kind):
    result = clickstream_with_bug(command, tmp_path)
    assert result.returncode == 1
    assert (
        one_line(result.stderr)
        == f"{kind}: RuntimeError: it broke (set CLICKSTREAM_DEBUG=1 for the traceback)"
    )


@pytest.mark.parametrize("command", BUGS)
def test_clickstream_debug_shows_the_traceback(tmp_path, command):
    result = clickstream_with_bug(command, tmp_path, CLICKSTREAM_DEBUG="1")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: it broke" in result.stderr


def clickstream_with_bug(command: str, tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "job.sql"
    script.write_text("SHOW TABLES;\n")
    patch, args = BUGS[command]
    code = BUG.format(patch=patch, args=[a.format(script=script) for a in args])
    return subprocess.run(
        [sys.executable, "-c", code], env=environment(**env), capture_output=True, text=True, timeout=60
    )
