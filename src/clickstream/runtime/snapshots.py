"""What a checkpoint holds of a job: its state tables, and each operator's Python-side state.

Tables: every table of the job's DuckDB database is operator state (operators create their tables
there and nowhere else), so copying them all is complete by construction.

Python-side state (a window's open slices and fired-up-to mark, watermarks, a MATCH_RECOGNIZE's
partial matches, emitted-row counters): every attribute of an operator is state, except the
wiring an operator is built with (`BaseOperator.wiring`: its plan node, state connection, clock,
connector), which the rebuilt job has already. So a new attribute is checkpointed without anyone
remembering to. Nested helpers (a state-TTL tracker) may refer to the job's connection or clock:
those references are stored as names and bound to the new job's on restore.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from clickstream.duck import DuckSession
from clickstream.errors import ExecutionError
from clickstream.runtime.operators.base import BaseOperator

_ALIAS = "checkpoint"


def save_tables(state: DuckSession, path: Path) -> int:
    """Copy every state table into a new DuckDB file at `path`; the number of rows copied."""
    tables = _tables(state)
    state.execute(f"ATTACH '{path}' AS {_ALIAS}")
    rows = 0
    try:
        for name in tables:
            state.execute(f'CREATE TABLE {_ALIAS}."{name}" AS SELECT * FROM memory.main."{name}"')
            rows += state.scalar(f'SELECT count(*) FROM {_ALIAS}."{name}"') or 0
    finally:
        state.execute(f"DETACH {_ALIAS}")
    return rows


def load_tables(state: DuckSession, path: Path) -> None:
    """Replace the state tables' contents with the checkpoint's (creating the tables an operator
    creates on its first rows)."""
    existing = set(_tables(state))
    state.execute(f"ATTACH '{path}' AS {_ALIAS} (READ_ONLY)")
    try:
        saved = [
            row[0]
            for row in state.con.execute(
                f"SELECT table_name FROM duckdb_tables() WHERE database_name = '{_ALIAS}'"
            ).fetchall()
        ]
        for name in saved:
            if name in existing:
                state.execute(f'DELETE FROM memory.main."{name}"')
                state.execute(f'INSERT INTO memory.main."{name}" SELECT * FROM {_ALIAS}."{name}"')
            else:
                state.execute(f'CREATE TABLE memory.main."{name}" AS SELECT * FROM {_ALIAS}."{name}"')
    finally:
        state.execute(f"DETACH {_ALIAS}")


def _tables(state: DuckSession) -> list[str]:
    rows = state.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'memory' AND NOT temporary "
        "ORDER BY table_name"
    ).fetchall()
    return [row[0] for row in rows]


def operator_state(operator: BaseOperator, clock: object) -> bytes:
    """The operator's state attributes, pickled together (so objects they share stay shared)."""
    attributes = {k: v for k, v in vars(operator).items() if k not in operator.wiring}
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, clock).dump(attributes)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        # a bug, not a user error: an attribute that is neither state nor declared wiring
        raise ExecutionError(f"cannot checkpoint operator {operator.name}: {error}") from error
    return buffer.getvalue()


def restore_operator(operator: BaseOperator, data: bytes, state: DuckSession, clock: object) -> None:
    vars(operator).update(_Unpickler(io.BytesIO(data), state, clock).load())


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, clock: object) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.clock = clock

    def persistent_id(self, obj: Any) -> str | None:
        if isinstance(obj, DuckSession):
            return "state"
        if obj is self.clock:
            return "clock"
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, state: DuckSession, clock: object) -> None:
        super().__init__(file)
        self.bound = {"state": state, "clock": clock}

    def persistent_load(self, pid: Any) -> Any:
        return self.bound[pid]
