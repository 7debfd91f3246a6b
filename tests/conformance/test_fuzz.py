"""The differential fuzzer (``fuzz.py``) for one fixed seed finds no difference that is not a case yet.

Known differences are the cases of ``cases/fuzz.json``: each lists in ``fuzz.origins`` the
fingerprints of the generated statements (tables + query) it was shrunk from. So CI stays green on
divergences already recorded (the conformance suite holds them as xfail) and fails on a new one: a
regression, or a generator change that reaches new ground. To record them, run the command in the
failure message; to fuzz longer, see README.md.
"""

from __future__ import annotations

import time

import pytest

from tests.conformance.fuzz import fuzz, known_origins

pytestmark = [pytest.mark.flink, pytest.mark.integration]

SEED = 0
QUERIES = 40  # one PyFlink JVM: about 2 minutes
BUDGET_S = 150  # no batch starts after this; the whole test stays under 3 minutes


def test_no_new_difference_from_flink() -> None:
    start = time.monotonic()
    report = fuzz(SEED, QUERIES, BUDGET_S, batch=QUERIES)
    print(report.summary())
    assert report.total > 0
    known = known_origins()
    new = [f for f in report.findings if not set(f.origins) & known]
    listing = "\n".join(
        f"  q{f.index} [{f.verdict.status}] {f.trial.sql(('A', 'B'))}\n    {f.verdict.detail}" for f in new
    )
    assert not new, (
        f"{len(new)} new differences from Flink (of {len(report.findings)}; "
        f"{time.monotonic() - start:.0f} s):\n{listing}\nRecord them as cases: .venv/bin/python -m "
        f"tests.conformance.fuzz --seed {SEED} --queries {QUERIES} --batch {QUERIES} --max-shrink 100 "
        "--out tests/conformance/cases/fuzz.json"
    )
