"""The `filesystem` connector: a file or a directory of files, JSON Lines or CSV.

Options as in Flink: `path` (file or directory), `format` (json, csv). A directory is read file by
file in name order; with `source.monitor-interval` set it is watched for new files and the source
never ends. Records are read as lines (newlines found with numpy in 16 MiB blocks; no copy)
and decoded in bulk by `formats.Decoder`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from clickstream.config import Settings, parse_duration_ms
from clickstream.connectors.base import BaseSink, BaseSource
from clickstream.connectors.changelog import decoder_for, is_changelog_format
from clickstream.connectors.collection_values import is_collection, to_json
from clickstream.connectors.formats import FORMATS, refuse_collections
from clickstream.connectors.options import DELIVERY_GUARANTEE, Option, exactly_once
from clickstream.errors import ConnectorError
from clickstream.log.files import read_json, write_atomically
from clickstream.schema import TableDef

_BLOCK_BYTES = 16 << 20

DEAD_LETTER_PATH = Option(
    "dead-letter.path",
    description="The JSON Lines file malformed records go to (default: '<dead-letter.dir>/<table>.jsonl').",
)
OPTIONS = (
    Option("path", required=True, description="The file or directory to read, or to write into."),
    Option(
        "format",
        "enum",
        "json",
        values=tuple(FORMATS),
        format=True,
        description="The record format: one JSON object or one CSV line per line.",
    ),
    Option(
        "source.monitor-interval",
        "duration",
        description="Watch the directory for new files this often; the source then never ends.",
    ),
    DEAD_LETTER_PATH,
    Option("sink.parallelism", "int", minimum=1, description="Accepted for Flink compatibility."),
    Option(
        "sink.rolling-policy.file-size",
        description="Accepted for Flink compatibility; the sink appends to one file.",
    ),
    Option(
        "sink.rolling-policy.rollover-interval",
        "duration",
        description="Accepted for Flink compatibility; the sink appends to one file.",
    ),
    Option(
        "sink.rolling-policy.check-interval",
        "duration",
        description="Accepted for Flink compatibility; the sink appends to one file.",
    ),
    Option(
        "sink.rolling-policy.inactivity-interval",
        "duration",
        description="Accepted for Flink compatibility; the sink appends to one file.",
    ),
    Option("auto-compaction", "bool", "false", description="Accepted for Flink compatibility."),
    DELIVERY_GUARANTEE,
    Option("compaction.file-size", description="Accepted for Flink compatibility."),
    Option(
        "partition.default-name",
        default="__DEFAULT_PARTITION__",
        description="Accepted for Flink compatibility (PARTITIONED BY is not supported).",
    ),
    Option(
        "sink.shuffle-by-partition.enable",
        "bool",
        "false",
        description="Accepted for Flink compatibility (PARTITIONED BY is not supported).",
    ),
)


class LineReader:
    """A file as Arrow string arrays of whole lines, block by block, without copying: each block
    is read into a fresh numpy buffer, and the newline positions found with numpy become the
    offsets of a StringArray over it. Blank lines are left out. Lines that are not UTF-8 are
    set apart (`invalid`): DuckDB must never see them (it invalidates its database)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self._rest = np.empty(0, dtype=np.uint8)  # a line not complete at the end of a block
        self._line = 0  # lines read so far, blank ones too
        self.invalid: list[tuple[str, int]] = []  # (the line, its number), taken by the source

    def read_next(self) -> tuple[pa.Array, np.ndarray] | None:
        """The next block's complete lines and their line numbers (from 1; the file's last line
        need not end in a newline)."""
        while True:
            kept = len(self._rest)
            buffer = np.empty(kept + _BLOCK_BYTES, dtype=np.uint8)
            buffer[:kept] = self._rest
            got = self._file.readinto(memoryview(buffer)[kept:])
            data = buffer[: kept + got]
            if len(data) == 0:
                self._file.close()
                return None
            ends = np.flatnonzero(data == 10)
            if got == 0:  # end of file: the last line, newline or not
                self._rest = np.empty(0, dtype=np.uint8)
                if data[-1] != 10:
                    data, ends = np.append(data, np.uint8(10)), np.append(ends, len(data))
            elif len(ends) == 0:  # a line longer than a block: read on
                self._rest = data
                continue
            else:
                self._rest = data[ends[-1] + 1 :].copy()
                data = data[: ends[-1] + 1]
            numbers = np.arange(self._line + 1, self._line + 1 + len(ends), dtype=np.int64)
            self._line += len(ends)
            lines, keep = _lines(data, ends)
            lines, numbers = self._utf8(lines, numbers[keep])
            return lines, numbers

    def _utf8(self, lines: pa.Array, numbers: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """The lines that are UTF-8; the others go to `invalid` (checked one by one only when
        the block as a whole is not valid, which Arrow checks fast)."""
        try:
            lines.validate(full=True)
            return lines, numbers
        except pa.ArrowInvalid:
            pass
        ok = np.ones(len(lines), dtype=bool)
        for i, raw in enumerate(lines.cast(pa.large_binary()).to_pylist()):
            try:
                raw.decode()
            except UnicodeDecodeError:
                ok[i] = False
                self.invalid.append((raw.decode(errors="replace"), int(numbers[i])))
        return lines.filter(pa.array(ok)), numbers[ok]

    @property
    def lines_read(self) -> int:
        return self._line

    def close(self) -> None:
        self._file.close()


def _lines(data: np.ndarray, ends: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """`data` ends with a newline at `ends[-1]`; one string per line that is not blank, each
    still ending in its newline (the JSON decoder ignores it as whitespace; the CSV decoder trims
    it): no copy of the text. Also which lines those are (not blank)."""
    starts = np.r_[0, ends[:-1] + 1]
    length = ends - starts  # without the newline
    blank = (length == 0) | ((length == 1) & (data[starts] == 13))
    large = len(data) >= 1 << 31
    offsets = np.r_[0, ends + 1].astype(np.int64 if large else np.int32)
    kind = pa.LargeStringArray if large else pa.StringArray
    lines = kind.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    return (lines.filter(pa.array(~blank)), ~blank) if blank.any() else (lines, ~blank)


def _path_option(table: TableDef) -> Path:
    path = table.options.get("path")
    if not path:
        raise ConnectorError(f"Table '{table.name}': the filesystem connector needs 'path'")
    return Path(path.removeprefix("file://"))


class DeadLetters:
    """Malformed records of one table: appended to a JSON Lines file and counted."""

    def __init__(self, table: TableDef, settings: Settings) -> None:
        directory = table.options.get("dead-letter.path") or os.path.join(
            settings.get("dead-letter.dir"), f"{table.name}.jsonl"
        )
        self.path = Path(directory)
        self.count = 0

    def write(
        self, records: list[tuple[str, str]], source: str, where: Sequence[dict[str, int]] | None = None
    ) -> None:
        """`where`: per record, its position in `source` (`line`, or `partition` and `offset`)."""
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        places = where if where is not None else [{}] * len(records)
        with self.path.open("ab") as out:
            for (raw, reason), place in zip(records, places, strict=True):
                entry = {"source": source, **place, "reason": reason, "record": raw.rstrip("\r\n")}
                out.write(orjson.dumps(entry) + b"\n")
        self.count += len(records)


class FileSystemSource(BaseSource):
    read_ahead = True

    def __init__(self, table: TableDef, settings: Settings) -> None:
        super().__init__(table, settings)
        self.path = _path_option(table)
        if not self.path.exists():
            raise ConnectorError(f"Table '{table.name}': path '{self.path}' does not exist")
        monitor = table.options.get("source.monitor-interval")
        self.monitor_ms = parse_duration_ms(monitor) if monitor else None
        self.bounded = self.monitor_ms is None
        self.decoder = decoder_for(table)
        self.dead_letters = DeadLetters(table, settings)
        self._done_files: set[Path] = set()
        self._current: tuple[Path, LineReader] | None = None
        self._pending: pa.Array | None = None
        self._numbers = np.empty(0, dtype=np.int64)  # the pending lines' numbers in their file
        self._last_scan = 0.0

    def _files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        return sorted(p for p in self.path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))

    def _next_lines(self) -> pa.Array | None:
        while True:
            if self._current is None:
                if (
                    self.monitor_ms is not None
                    and (time.monotonic() - self._last_scan) * 1000 < (self.monitor_ms)
                    and self._done_files
                ):
                    return None
                self._last_scan = time.monotonic()
                todo = [p for p in self._files() if p not in self._done_files]
                if not todo:
                    return None
                self._current = (todo[0], LineReader(todo[0]))
            path, reader = self._current
            read = reader.read_next()
            self._not_utf8(path, reader)
            if read is None:
                self._done_files.add(path)
                self._current = None
                continue
            lines, self._numbers = read
            self.metrics.bytes_in += lines.nbytes
            return lines

    def _not_utf8(self, path: Path, reader: LineReader) -> None:
        bad, reader.invalid = reader.invalid, []
        where = [{"line": number} for _, number in bad]
        self.dead_letters.write([(line, "not UTF-8 text") for line, _ in bad], str(path), where)
        self.metrics.malformed = self.dead_letters.count

    def poll(self, max_rows: int) -> pa.Table | None:
        if self._pending is None or len(self._pending) == 0:
            self._pending = self._next_lines()
            if self._pending is None:
                return None
        lines, self._pending = self._pending[:max_rows], self._pending[max_rows:]
        numbers, self._numbers = self._numbers[:max_rows], self._numbers[max_rows:]
        decoded = self.decoder.decode(lines)
        where = [{"line": int(numbers[i])} for i in decoded.positions]
        source = str(self._current[0] if self._current else self.path)
        self.dead_letters.write(decoded.malformed, source, where)
        self.metrics.malformed = self.dead_letters.count
        self.metrics.records_in += decoded.rows.num_rows
        return decoded.rows

    def position(self) -> object:
        """The files read to the end, and the file being read with how many of its lines were
        handed out."""
        current = None
        if self._current is not None:
            path, reader = self._current
            pending = self._pending is not None and len(self._pending) > 0
            current = (str(path), int(self._numbers[0]) - 1 if pending else reader.lines_read)
        return {"done": sorted(str(p) for p in self._done_files), "current": current}

    def seek(self, position: object) -> None:
        assert isinstance(position, dict)
        self._done_files = {Path(p) for p in position["done"]}
        if position["current"] is None:
            return
        name, skip = position["current"]
        path = Path(name)
        reader = LineReader(path)
        self._current = (path, reader)
        while (read := reader.read_next()) is not None:
            lines, numbers = read
            reader.invalid = [(line, n) for line, n in reader.invalid if n > skip]
            after = numbers > skip
            if after.any():
                self._pending, self._numbers = lines.filter(pa.array(after)), numbers[after]
                return
            if reader.lines_read > skip:  # the rest of the block was blank or not UTF-8
                return
        self._done_files.add(path)
        self._current = None

    def exhausted(self) -> bool:
        if not self.bounded:
            return False
        return (
            self._current is None
            and (self._pending is None or len(self._pending) == 0)
            and all(p in self._done_files for p in self._files())
        )


class FileSystemSink(BaseSink):
    """Appends rows as JSON Lines or CSV (an append-only sink, as in Flink)."""

    def __init__(self, table: TableDef, settings: Settings) -> None:
        super().__init__(table, settings)
        if is_changelog_format(table):
            raise ConnectorError(
                f"Table '{table.name}': the filesystem sink writes json or csv, not the changelog "
                f"format '{table.options.get('format')}'"
            )
        self.path = _path_option(table)
        if self.path.suffix == "" or self.path.is_dir():
            self.path.mkdir(parents=True, exist_ok=True)
            self.path = self.path / "part-0"
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.format = table.options.get("format", "json")
        if self.format != "json":
            refuse_collections(table, f"the {self.format} format")
        self._out = self.path.open("ab")

    @property
    def is_upsert(self) -> bool:
        return False

    def write(self, batch: pa.Table) -> None:
        self._out.write(self._encode(batch))

    def _encode(self, batch: pa.Table) -> bytes:
        data = batch.drop_columns([c for c in ("_op",) if c in batch.column_names])
        names = data.column_names
        nested = [f for f in data.schema if is_collection(f.type)]
        lines = []
        for row in data.to_pylist():
            for f in nested:  # a MAP as a JSON object, not a list of pairs
                row[f.name] = to_json(row[f.name], f.type)
            if self.format == "csv":
                lines.append(",".join("" if row[n] is None else str(row[n]) for n in names).encode())
            else:
                lines.append(orjson.dumps(row, default=str))
        return b"".join(line + b"\n" for line in lines)

    @property
    def transactional(self) -> bool:
        return exactly_once(self.table.options)

    def commit(self, writer: str, checkpoint: int, batches: list[pa.Table]) -> None:
        """Append the rows and then note, in `.<file>.commits` (replaced atomically), the
        checkpoint and the file's length after them. A kill between the two leaves rows past the
        noted length: they are cut off before the checkpoint's rows are appended again."""
        notes_path = self.path.with_name(f".{self.path.name}.commits")
        notes = read_json(notes_path) or {}
        self._out.flush()
        last = notes.get(writer)
        if last is None:
            # the writer's first commit: where its rows start is noted first (as checkpoint 0,
            # before any), so that a kill before its note is cut off as for a later commit
            last = notes[writer] = {"checkpoint": 0, "length": self.path.stat().st_size}
            write_atomically(notes_path, notes)
        if last["checkpoint"] >= checkpoint:
            return
        if self.path.stat().st_size > last["length"]:
            os.truncate(self.path, last["length"])
        for batch in batches:
            self._out.write(self._encode(batch))
        self._out.flush()
        os.fsync(self._out.fileno())
        notes[writer] = {"checkpoint": checkpoint, "length": self.path.stat().st_size}
        write_atomically(notes_path, notes)

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self._out.close()
