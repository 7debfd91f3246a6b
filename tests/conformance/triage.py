"""Compare clickstream with the recorded Flink results and keep the ``divergence`` marks honest.

    .venv/bin/python -m tests.conformance.triage                 # print every difference
    .venv/bin/python -m tests.conformance.triage --group casts --mark

``--mark`` writes a ``divergence`` sentence (Flink's result vs ours, from the actual values) into
each differing case that has none, with ``divergence_batch_size`` when it differs at one
mini-batch size only, and removes the marks of cases that now agree. Sentences you wrote by hand
are kept while the case still differs the same way. No PyFlink needed.
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


def difference(case: Case) -> tuple[str | None, str | None]:
    """(None, None) when clickstream agrees with Flink at every batch size the test uses, else a
    sentence and the one batch size it is limited to (None when it holds at all of them)."""
    assert case.expected is not None, f"{case.id}: not recorded"
    sizes = [UNBOUNDED, "1"] if case.has_event_time else [UNBOUNDED]
    notes: dict[str, str] = {}
    for size in sizes:
        rows, error = _ours(case, size)
        where = " with mini-batch size 1" if size == "1" else ""
        if "error" in case.expected:
            if error is None or error.startswith("crashes"):
                got = f"returns {_short(rows)}" if error is None else error
                notes[size] = f"Flink fails ({case.expected['error']}); clickstream{where} {got}"
        elif error is not None:
            notes[size] = f"Flink gives {_short(case.expected['rows'])}; clickstream{where} {error}"
        elif not same_rows(rows or [], case.expected["rows"]):
            notes[size] = _row_difference(case.expected["rows"], rows or [], where)
    if not notes:
        return None, None
    if len(notes) < len(sizes):
        ((size, text),) = notes.items()
        return text, size
    texts = list(notes.values())
    if len(texts) == 2 and texts[1].replace(" with mini-batch size 1", "") == texts[0]:
        texts = texts[:1]
    return "; ".join(texts), None


def triage_group(group: str, mark: bool) -> tuple[int, int]:
    cases = load_group(group)
    found = {}
    for case in cases:
        found[case.name] = difference(case)
        text, size = found[case.name]
        if text:
            only = f" [only at mini-batch size {size}]" if size else ""
            print(f"{case.id}{only}: {text}")
    if mark:
        path = group_path(group)
        data = json.loads(path.read_text(encoding="utf-8"))
        for raw in data["cases"]:
            text, size = found.get(raw["name"], (None, None))
            if text is None:
                raw.pop("divergence", None)
                raw.pop("divergence_batch_size", None)
            elif "divergence" not in raw or raw.get("divergence_batch_size") != size:
                raw["divergence"] = text
                raw.pop("divergence_batch_size", None)
                if size is not None:
                    raw["divergence_batch_size"] = size
        path.write_text(dump_group(data), encoding="utf-8")
    return len(cases), sum(1 for text, _ in found.values() if text)


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
