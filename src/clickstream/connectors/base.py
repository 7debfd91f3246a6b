"""What a connector implements: sources, sinks and lookup sources, over Arrow tables.

Batches are `pyarrow.Table`s whose columns are the table's physical columns, typed as
`clickstream.sql.types.arrow_type` says. Batches given to a sink also carry an `_op` int8 column: the
Flink RowKind of each row (0 +I, 1 -U, 2 +U, 3 -D).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import pyarrow as pa

from clickstream.config import Settings
from clickstream.schema import TableDef, arrow_type

OP_COLUMN = "_op"
PARTITION = "__partition"  # int32 column a partitioned source adds: watermarks per partition
INSERT, UPDATE_BEFORE, UPDATE_AFTER, DELETE = 0, 1, 2, 3
OP_SHORT = {INSERT: "+I", UPDATE_BEFORE: "-U", UPDATE_AFTER: "+U", DELETE: "-D"}


def physical_schema(table: TableDef) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c)) for c in table.physical])


@dataclass
class SourceMetrics:
    records_in: int = 0
    malformed: int = 0
    bytes_in: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class BaseSource(ABC):
    """Reads one table's records. `bounded` sources end; others are polled until the job stops."""

    bounded: bool = True
    # May be polled on a background thread, one batch ahead of the job (bounded sources only):
    # for sources whose poll has no side effect the job must see first (such as offset commits).
    read_ahead: bool = False

    def __init__(self, table: TableDef, settings: Settings) -> None:
        self.table = table
        self.settings = settings
        self.metrics = SourceMetrics()

    @abstractmethod
    def poll(self, max_rows: int) -> pa.Table | None:
        """The next batch of at most `max_rows` decoded rows; None if nothing is available now."""

    @abstractmethod
    def exhausted(self) -> bool:
        """True once a bounded source has returned everything."""

    def position(self) -> object:
        """Where the source is: what a checkpoint stores so that `seek` resumes after the last
        batch polled (picklable; None for a source that can only start over)."""
        return None

    def seek(self, position: object) -> None:
        """Resume at a `position()` a checkpoint stored."""
        if position is not None:
            raise NotImplementedError(f"{type(self).__name__} cannot resume from a checkpoint")

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class BaseSink(ABC):
    """Writes a changelog. A sink with a primary key upserts; without one it appends."""

    def __init__(self, table: TableDef, settings: Settings) -> None:
        self.table = table
        self.settings = settings

    @property
    def is_upsert(self) -> bool:
        return bool(self.table.primary_key)

    accepts_updates_without_key: bool = False  # print accepts any changelog

    @property
    def status(self) -> str:
        """What the sink is waiting on (jdbc: "waiting for database"); empty while it runs."""
        return ""

    @abstractmethod
    def write(self, batch: pa.Table) -> None:
        """Apply one batch (data columns in the sink's declared order, plus `_op`)."""

    @property
    def transactional(self) -> bool:
        """Does this sink commit its rows with checkpoints (`sink.delivery-guarantee` =
        'exactly-once', the default where the sink supports it)? An upsert sink need not: writing
        the same changes again leaves the same rows."""
        return False

    def commit(self, writer: str, checkpoint: int, batches: list[pa.Table]) -> None:
        """Append `batches` as the rows of `checkpoint`, atomically with a note that `writer` (a
        job's sink) committed it; nothing if that note says it already did (a restored job
        committing again what its crashed run committed)."""
        raise NotImplementedError(f"{type(self).__name__} does not commit with checkpoints")

    def flush(self) -> None:  # noqa: B027 - optional hook
        pass

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class BaseLookupSource(ABC):
    """Answers point queries for a lookup join (`FOR SYSTEM_TIME AS OF proctime`)."""

    @property
    def status(self) -> str:
        """What the lookup is waiting on (jdbc: "waiting for database"); empty while it runs."""
        return ""

    def __init__(self, table: TableDef, settings: Settings) -> None:
        self.table = table
        self.settings = settings

    @abstractmethod
    def lookup(self, key_columns: list[str], keys: pa.Table) -> pa.Table:
        """Rows (all physical columns) whose `key_columns` equal a row of `keys`.

        `keys` has one column per key column, no NULLs and no duplicate rows. Results may hold several
        rows per key, or none.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
