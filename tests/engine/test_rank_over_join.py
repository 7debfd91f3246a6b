"""Top-N over an updating input without a key (a LEFT JOIN, whose NULL-padded rows are retracted
when a match arrives), as Flink's retract rank: the final top N per partition equals a one-pass
Python oracle over the join's final rows, whatever the mini-batch size. (The conformance group
`misc11` has the cases recorded from PyFlink: `top2_over_left_join`, `top2_over_changelog_join`.)"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from tests.conformance.harness import materialize

SCRIPT = """
CREATE TABLE l (id INT, k STRING) WITH ('connector' = 'filesystem', 'path' = '{left}', 'format' = 'json');
CREATE TABLE r (k STRING, w INT) WITH ('connector' = 'filesystem', 'path' = '{right}', 'format' = 'json');
"""

QUERY = (
    "SELECT k, id, w, rn FROM (SELECT l.id, l.k, r.w, ROW_NUMBER() OVER (PARTITION BY l.k "
    "ORDER BY r.w DESC, l.id) AS rn FROM l LEFT JOIN r ON l.k = r.k) WHERE rn <= 2"
)


def _oracle(left: list[tuple[int, str]], right: list[tuple[str, int]]) -> list[list]:
    joined = []
    for i, k in left:
        matches = [w for rk, w in right if rk == k]
        joined += [(k, i, w) for w in matches] or [(k, i, None)]
    out = []
    for k in {row[0] for row in joined}:
        # DESC puts NULL last (NULL is the lowest value, as in Flink)
        ranked = sorted((r for r in joined if r[0] == k), key=lambda r: (r[2] is None, -(r[2] or 0), r[1]))
        out += [[k, i, w, n] for n, (_, i, w) in enumerate(ranked[:2], start=1)]
    return sorted(out, key=json.dumps)


@pytest.mark.parametrize("seed", [1, 2])
def test_top_n_over_left_join_equals_oracle_at_every_batch_size(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    left = [(i, rng.choice("abcde")) for i in range(40)]
    right = [(rng.choice("abcdf"), rng.randint(0, 30)) for _ in range(25)]
    (tmp_path / "l.jsonl").write_text("".join(json.dumps({"id": i, "k": k}) + "\n" for i, k in left))
    (tmp_path / "r.jsonl").write_text("".join(json.dumps({"k": k, "w": w}) + "\n" for k, w in right))
    want = _oracle(left, right)
    for size in ("-1", "7", "1"):
        engine = Engine(Settings({"table.exec.mini-batch.size": size}), out=io.StringIO())
        engine.execute_script(SCRIPT.format(left=tmp_path / "l.jsonl", right=tmp_path / "r.jsonl"))
        got = materialize([(kind, list(row)) for kind, row in engine.collect(QUERY)])
        assert sorted(got, key=json.dumps) == want, f"mini-batch size {size}"
