"""Job settings: the `SET 'key' = 'value'` options a job understands, with defaults.

Keys keep Flink's names where Flink has the option. Each one has a default and a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clickstream.errors import SqlValidationError

# key -> (default, description)
OPTIONS: dict[str, tuple[str, str]] = {
    "table.local-time-zone": (
        "UTC",
        "Session time zone: how TIMESTAMP_LTZ values are rendered and where windows on them align.",
    ),
    "table.exec.mini-batch.size": (
        "250000",
        "Most rows a micro-batch takes from one source. Results in event time do not depend on it.",
    ),
    "table.exec.mini-batch.enabled": ("true", "Accepted for Flink compatibility; we always batch."),
    "table.exec.mini-batch.allow-latency": (
        "200 ms",
        "How long an unbounded source waits to fill a micro-batch before it is processed.",
    ),
    "table.exec.source.idle-timeout": (
        "0 ms",
        "A partition idle this long stops holding back the watermark (0: never).",
    ),
    "table.exec.sink.upsert-materialize": (
        "NONE",
        "NONE: an upsert sink applies +I/+U by its primary key and ignores -U (the seeds' behaviour).",
    ),
    "table.exec.state.ttl": (
        "0 ms",
        "A key's state (a regular join's rows, an unbounded GROUP BY's accumulators) not written for "
        "this long is dropped (0: kept for ever).",
    ),
    "parallelism.default": ("1", "Accepted for Flink compatibility; one process runs the job."),
    "pipeline.name": ("clickstream", "Name of the job, shown in status and metrics."),
    "execution.runtime-mode": ("streaming", "Only 'streaming' is supported; bounded input ends."),
    "sql-client.execution.result-mode": ("table", "Accepted for Flink SQL client compatibility."),
    "execution.checkpointing.interval": (
        "",
        "How often a checkpoint is taken (e.g. '10 s'). Unset: every 10 s for a job with an "
        "unbounded source, none for a bounded one.",
    ),
    "state.checkpoints.dir": (
        "clickstream-checkpoints",
        "Where checkpoints are kept (default: $CLICKSTREAM_CHECKPOINTS_DIR, else "
        "./clickstream-checkpoints): one directory per job, named by 'pipeline.name' (else by "
        "its sink tables).",
    ),
    "execution.checkpointing.num-retained": ("1", "How many complete checkpoints are kept."),
    "state.memory-limit": (
        "",
        "Most memory the job's state database (DuckDB) may use, as a Flink memory size ('512mb', "
        "'2gb'); state beyond it spills to 'io.tmp.dirs' instead of failing. Unset: DuckDB's "
        "default, 80% of the machine's memory.",
    ),
    "io.tmp.dirs": (
        "",
        "Directory where state that outgrows 'state.memory-limit' spills (one subdirectory per "
        "job, removed when the job ends). Unset: the system's temporary directory.",
    ),
    "dead-letter.dir": (
        "dead-letters",
        "Directory where malformed source records are written, one JSON Lines file per table.",
    ),
}


@dataclass
class Settings:
    """The options in force for one job; unknown keys are kept (Flink accepts them) but unused."""

    values: dict[str, str] = field(default_factory=dict)

    def set(self, key: str, value: str) -> None:
        if key == "table.exec.mini-batch.size":
            parse_positive_int(key, value, allow_minus_one=True)
        if key == "execution.runtime-mode" and value.lower() != "streaming":
            raise SqlValidationError(
                f"'execution.runtime-mode' = '{value}' is not supported; use 'streaming'"
            )
        if key == "state.memory-limit" and value.strip():
            parse_memory_size(key, value)
        self.values[key] = value

    def get(self, key: str) -> str:
        if key in self.values:
            return self.values[key]
        return OPTIONS[key][0]

    @property
    def mini_batch_size(self) -> int:
        size = parse_positive_int("table.exec.mini-batch.size", self.get("table.exec.mini-batch.size"), True)
        return size if size > 0 else 1 << 62

    @property
    def local_time_zone(self) -> str:
        return self.get("table.local-time-zone")

    @property
    def state_memory_limit(self) -> int | None:
        """Bytes the state database may use (None: DuckDB's default)."""
        value = self.get("state.memory-limit")
        return parse_memory_size("state.memory-limit", value) if value.strip() else None


def parse_positive_int(key: str, value: str, allow_minus_one: bool = False) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SqlValidationError(f"option '{key}' needs an integer, got '{value}'") from None
    if number <= 0 and not (allow_minus_one and number == -1):
        raise SqlValidationError(f"option '{key}' must be positive, got '{value}'")
    return number


# Flink's MemorySize units: binary multiples, any case, with or without a space.
_MEMORY_UNITS = {
    **dict.fromkeys(("b", "bytes"), 1),
    **dict.fromkeys(("k", "kb", "kibibytes"), 1 << 10),
    **dict.fromkeys(("m", "mb", "mebibytes"), 1 << 20),
    **dict.fromkeys(("g", "gb", "gibibytes"), 1 << 30),
    **dict.fromkeys(("t", "tb", "tebibytes"), 1 << 40),
}
_MIN_MEMORY = 16 << 20  # below this DuckDB cannot hold a micro-batch's working set


def parse_memory_size(key: str, value: str) -> int:
    """A Flink memory size ('512mb', '1 gb', '64m', a bare number is bytes) in bytes."""
    import re

    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", value)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _MEMORY_UNITS:
        raise SqlValidationError(
            f"option '{key}' needs a memory size such as '512mb' or '2gb', got '{value}'"
        )
    size = int(match.group(1)) * _MEMORY_UNITS[unit]
    if size < _MIN_MEMORY:
        raise SqlValidationError(f"option '{key}' must be at least 16mb, got '{value}'")
    return size


def parse_duration_ms(text: str) -> int:
    """Flink durations: '10min', '5 s', '200 ms', '1h', '3 days', a bare number is ms."""
    import re

    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not match:
        raise SqlValidationError(f"'{text}' is not a duration (e.g. '10 s', '10min', '1h')")
    amount, unit = int(match.group(1)), match.group(2).lower()
    units = {
        "": 1,
        "ms": 1,
        "milli": 1,
        "millis": 1,
        "millisecond": 1,
        "milliseconds": 1,
        "s": 1000,
        "sec": 1000,
        "secs": 1000,
        "second": 1000,
        "seconds": 1000,
        "min": 60_000,
        "mins": 60_000,
        "minute": 60_000,
        "minutes": 60_000,
        "m": 60_000,
        "h": 3_600_000,
        "hour": 3_600_000,
        "hours": 3_600_000,
        "d": 86_400_000,
        "day": 86_400_000,
        "days": 86_400_000,
    }
    if unit not in units:
        raise SqlValidationError(f"'{text}' has an unknown time unit '{unit}'")
    return amount * units[unit]
