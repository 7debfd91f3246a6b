"""Compare clickstream with the recorded Flink results and keep the ``divergence`` marks honest.

    .venv/bin/python -m tests.conformance.triage                 # print every difference
    .venv/bin/python -m tests.conformance.triage --group casts --mark

``--mark`` writes a ``divergence`` sentence (Flink's result vs ours, from the actual values) into
each differing case that has none, and removes the mark from cases that now agree. Sentences you
wrote by hand are kept while the case still differs. No PyFlink needed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from clickstream.errors import ClickstreamError
from tests.conformance.harness import Case, dump_group, group_path, groups, load_group, same_rows
from tests.conformance.test_conformance import UNBOUNDED, run_on_clickstream

MAX_TEXT = 400


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _ours(case: Case, batch_size: str) -> tuple[list[list[Any]] | None, str | None]:
    """(rows, None), or (None, why) when clickstream raised."""
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        try:
            return run_on_clickstream(case, Path(tmp), batch_size), None
        except ClickstreamError as e:
            return None, f"raises {type(e).__name__}: {str(e).splitlines()[0]}"
        except Exception as e:  # noqa: BLE001 - a crash is a divergence to report, not to hide
            return None, f"crashes with {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _row_difference(want: list[list[Any]], got: list[list[Any]], where: str) -> str:
    """Both results when they are short, else what is missing, what is extra, how many agree."""
    if len(_short(want)) + len(_short(got)) < MAX_TEXT:
        return f"Flink gives {_short(want)}, clickstream{where} {_short(got)}"
    missing = [r for r in want if not any(same_rows([r], [g]) for g in got)]
    extra = [g for g in got if not any(same_rows([g], [r]) for r in want)]
    return (
        f"clickstream{where} lacks Flink's rows {_short(missing)} and gives {_short(extra)} instead "
        f"({len(want) - len(missing)} of Flink's {len(want)} rows agree)"
    )


def difference(case: Case) -> str | None:
    """None when clickstream agrees with Flink at every batch size the test uses, else a sentence."""
    assert case.expected is not None, f"{case.id}: not recorded"
    sizes = [UNBOUNDED, "1"] if case.has_event_time else [UNBOUNDED]
    notes = []
    for size in sizes:
        rows, error = _ours(case, size)
        where = " with mini-batch size 1" if size == "1" else ""
        if "error" in case.expected:
            if error is None or error.startswith("crashes"):
                got = f"returns {_short(rows)}" if error is None else error
                notes.append(f"Flink fails ({case.expected['error']}); clickstream{where} {got}")
        elif error is not None:
            notes.append(f"Flink gives {_short(case.expected['rows'])}; clickstream{where} {error}")
        elif not same_rows(rows or [], case.expected["rows"]):
            notes.append(_row_difference(case.expected["rows"], rows or [], where))
    if len(notes) == 2 and notes[1].replace(" with mini-batch size 1", "") == notes[0]:
        notes = notes[:1]
    return "; ".join(notes) or None


def triage_group(group: str, mark: bool) -> tuple[int, int]:
    cases = load_group(group)
    found = {}
    for case in cases:
        found[case.name] = difference(case)
        if found[case.name]:
            print(f"{case.id}: {found[case.name]}")
    if mark:
        path = group_path(group)
        data = json.loads(path.read_text(encoding="utf-8"))
        for raw in data["cases"]:
            diff = found.get(raw["name"])
            if diff is None:
                raw.pop("divergence", None)
            elif "divergence" not in raw:
                raw["divergence"] = diff
        path.write_text(dump_group(data), encoding="utf-8")
    return len(cases), sum(1 for d in found.values() if d)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--group", action="append", help="group (repeatable; default: all)")
    parser.add_argument("--mark", action="store_true", help="add/remove divergence marks in the files")
    args = parser.parse_args(argv)
    for group in args.group or groups():
        total, differing = triage_group(group, args.mark)
        print(f"== {group}: {differing} of {total} cases differ from Flink", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
