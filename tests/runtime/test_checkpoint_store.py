"""The checkpoint directory under kills: whatever moment a kill lands, what is left is either a
complete checkpoint or none."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream.runtime import checkpoint_store
from clickstream.runtime.checkpoint_store import METADATA, CheckpointStore


class _Killed(Exception):
    pass


def _store_with_checkpoint(directory: Path) -> CheckpointStore:
    store = CheckpointStore(directory / "job")
    path = store.begin(1)
    (path / "state.duckdb").write_bytes(b"tables")
    (path / "operators.pickle").write_bytes(b"operators")
    store.complete(1, path, {"id": 1})
    return store


def test_a_kill_while_the_checkpoints_are_deleted_leaves_none(tmp_path: Path, monkeypatch) -> None:
    store = _store_with_checkpoint(tmp_path)

    def killed_partway(path: Path, ignore_errors: bool = False) -> None:
        # a kill after the first file went, before the metadata did (rmtree's order is the
        # directory's): without it, a checkpoint of missing files that no restore can read
        next(p for p in Path(path).rglob("*") if p.is_file() and p.name != METADATA).unlink()
        raise _Killed

    monkeypatch.setattr(checkpoint_store.shutil, "rmtree", killed_partway)
    with pytest.raises(_Killed):
        store.discard()
    assert store.latest() is None
    monkeypatch.undo()
    store.discard()  # the next discard deletes what the killed one left
    assert list(tmp_path.iterdir()) == []
