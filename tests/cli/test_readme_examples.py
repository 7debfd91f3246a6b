"""The README's examples print what the README shows.

An example is a fenced block right after a `<!-- readme-test -->` line: each `$ command` line is run
(in a fresh directory holding the files of `tests/readme/`, `clickstream` being this checkout's
command; the commands of one block in order, in one directory), and the lines after it, up to the
next `$`, are its output: stdout and stderr as a terminal interleaves them. `...` in an expected
line stands for any text (timings, rates).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.helpers import COMMAND, environment

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FILES = ROOT / "tests" / "readme"
MARKER = "<!-- readme-test -->"


@dataclass
class Example:
    block: int  # the line of its marker: the commands of a block run in order, in one directory
    line: int  # of the command in README.md, 1-based
    command: str
    output: list[str]  # without trailing blank lines (they separate commands)


def examples(text: str) -> list[Example]:
    """Every `$ command` of every marked block, with the output shown after it."""
    found: list[Example] = []
    lines = text.splitlines()
    for marker, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        assert lines[marker + 1].startswith("```"), f"README.md:{marker + 1}: no ``` block after {MARKER}"
        end = next(i for i in range(marker + 2, len(lines)) if lines[i].startswith("```"))
        for number in range(marker + 2, end):
            if lines[number].startswith("$ "):
                found.append(Example(marker, number + 1, lines[number][2:], []))
            else:
                assert found and found[-1].block == marker, f"README.md:{number + 1}: output before any $"
                found[-1].output.append(lines[number])
    for example in found:
        while example.output and not example.output[-1].strip():
            example.output.pop()
    return found


def matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def run(command: str, cwd: Path) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "clickstream", f"only clickstream commands run: {command}"
    result = subprocess.run(
        [*COMMAND, *words[1:]],
        cwd=cwd,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout.rstrip("\n").splitlines()


README_EXAMPLES = examples(README.read_text())


def test_the_readme_marks_examples():
    assert len(README_EXAMPLES) >= 2


@pytest.mark.parametrize("example", README_EXAMPLES, ids=lambda e: f"README.md:{e.line}")
def test_a_readme_example_prints_what_the_readme_shows(example, tmp_path):
    shutil.copytree(FILES, tmp_path, dirs_exist_ok=True)
    for earlier in README_EXAMPLES:  # its block's commands before it, for the files they write
        if earlier is example:
            break
        if earlier.block == example.block:
            run(earlier.command, tmp_path)
    actual = run(example.command, tmp_path)
    message = (
        f"README.md:{example.line} shows\n" + "\n".join(example.output) + "\nbut got\n" + "\n".join(actual)
    )
    assert len(actual) == len(example.output), message
    assert all(matches(want, got) for want, got in zip(example.output, actual, strict=True)), message


def test_examples_are_read_from_marked_blocks_only():
    text = "\n".join(
        [
            "```",
            "$ clickstream not-marked",
            "```",
            MARKER,
            "```",
            "$ clickstream one",
            "out 1",
            "",
            "$ clickstream two",
            "```",
        ]
    )
    assert [(e.line, e.command, e.output) for e in examples(text)] == [
        (6, "clickstream one", ["out 1"]),
        (9, "clickstream two", []),
    ]


def test_an_ellipsis_stands_for_any_text():
    assert matches("wrote 10 records in ... s (.../s):", "wrote 10 records in 0.1 s (93/s):")
    assert not matches("wrote 10 records in ... s", "wrote 11 records in 0.1 s")
