"""The `WITH` options of the `kafka` and `upsert-kafka` connectors (Flink's keys), and what they
say: the topics, the confluent-kafka client's configuration, start and stop offsets.

`properties.*` go to the client as they are (librdkafka takes the Java client's names for the
common settings: `security.protocol`, `sasl.mechanism`, `ssl.*`, ...), except two Java-only ones
that Flink users write: `sasl.jaas.config` (its username and password become librdkafka's
`sasl.username` / `sasl.password`) and `default.api.timeout.ms` (how long the connector waits for
the broker at start, as the Java client bounds its blocking calls with it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clickstream.connectors.formats import FORMATS
from clickstream.connectors.options import ANY, Option
from clickstream.errors import ConnectorError
from clickstream.schema import TableDef

STARTUP_MODES = ("earliest-offset", "latest-offset", "group-offsets", "timestamp", "specific-offsets")
BOUNDED_MODES = ("unbounded", "latest-offset", "group-offsets", "timestamp", "specific-offsets")
PARTITIONERS = ("default", "fixed", "round-robin")
FIELDS_INCLUDE = ("ALL", "EXCEPT_KEY")
DEFAULT_TIMEOUT_MS = 30_000
_COMPATIBILITY = "Accepted for Flink compatibility."
_JAAS = re.compile(r"""(username|password)\s*=\s*"((?:[^"\\]|\\.)*)\"""")

_FORMATS = tuple(FORMATS)
_CLIENT = (
    Option(
        "properties.bootstrap.servers",
        required=True,
        description="The Kafka brokers to connect to, 'host:port,host:port'.",
    ),
    Option(
        "properties.group.id",
        description="The consumer group whose offsets the source starts from ('group-offsets') "
        "and commits after each checkpoint.",
    ),
    Option(
        "properties.auto.offset.reset",
        "enum",
        "earliest",
        values=("earliest", "latest", "none"),
        description="Where 'group-offsets' starts in a partition the group has no offset for "
        "('none': the job fails).",
    ),
    Option(
        "properties.default.api.timeout.ms",
        "int",
        str(DEFAULT_TIMEOUT_MS),
        minimum=1,
        description="How long the connector waits for the broker at start.",
    ),
    Option(f"properties.{ANY}", description="Passed to the confluent-kafka client (SASL, SSL, ...)."),
)
_FORMAT_OPTIONS = (
    Option("value.format", "enum", values=_FORMATS, format=True, description="The format of record values."),
    Option("key.format", "enum", values=_FORMATS, format=True, description="The format of record keys."),
    Option(
        "key.fields-prefix",
        description="A prefix of the key columns' names that the key's field names do not have.",
    ),
    Option(
        "value.fields-include",
        "enum",
        "ALL",
        values=FIELDS_INCLUDE,
        description="'ALL': the value holds every column; 'EXCEPT_KEY': all but the key's.",
    ),
)
_SINK = (
    Option(
        "sink.transactional-id-prefix",
        description="The prefix of the producer's transactional.id: required for 'exactly-once'.",
    ),
    Option("sink.parallelism", "int", minimum=1, description=_COMPATIBILITY),
)
_IDLE = Option(
    "scan.watermark.idle-timeout",
    "duration",
    description="A partition quiet this long stops holding the watermark back "
    "(default: table.exec.source.idle-timeout).",
)
_DISCOVERY = Option(
    "scan.topic-partition-discovery.interval",
    "duration",
    "5 min",
    description="How often an unbounded source looks for new partitions (and topics of a pattern); "
    "'0' never.",
)
_BOUNDED = (
    Option(
        "scan.bounded.mode",
        "enum",
        "unbounded",
        values=BOUNDED_MODES,
        description="Where reading stops, which makes the source bounded.",
    ),
    Option(
        "scan.bounded.specific-offsets",
        description="Stop offsets for 'specific-offsets': 'partition:0,offset:42;partition:1,offset:300'.",
    ),
    Option("scan.bounded.timestamp-millis", "int", description="Stop at this record time ('timestamp')."),
)


def _delivery(default: str) -> Option:
    return Option(
        "sink.delivery-guarantee",
        "enum",
        default,
        values=("exactly-once", "at-least-once", "none"),
        description="'at-least-once': each batch is produced and flushed, failures fail the job; "
        "'exactly-once': each checkpoint's rows go in one Kafka transaction.",
    )


KAFKA_OPTIONS = (
    Option("topic", description="The topic, or topics separated by ';'."),
    Option("topic-pattern", description="A regular expression: every matching topic is read."),
    *_CLIENT,
    Option("format", "enum", values=_FORMATS, format=True, description="The format of record values."),
    *_FORMAT_OPTIONS,
    Option("key.fields", description="The columns in the record key, 'a;b'."),
    Option(
        "scan.startup.mode",
        "enum",
        "group-offsets",
        values=STARTUP_MODES,
        description="Where reading starts.",
    ),
    Option(
        "scan.startup.specific-offsets",
        description="Start offsets for 'specific-offsets': 'partition:0,offset:42;partition:1,offset:300'.",
    ),
    Option("scan.startup.timestamp-millis", "int", description="Start at this record time ('timestamp')."),
    *_BOUNDED,
    _DISCOVERY,
    _IDLE,
    Option(
        "sink.partitioner",
        "enum",
        "default",
        values=PARTITIONERS,
        description="By key (murmur2, as Kafka's), all to partition 0, or one by one.",
    ),
    _delivery("at-least-once"),
    *_SINK,
    Option("scan.parallelism", "int", minimum=1, description=_COMPATIBILITY),
)

UPSERT_KAFKA_OPTIONS = (
    Option("topic", required=True, description="The topic, or topics separated by ';' (source only)."),
    *_CLIENT,
    *_FORMAT_OPTIONS,
    *_BOUNDED,
    _DISCOVERY,
    _IDLE,
    _delivery("at-least-once"),
    *_SINK,
    Option("sink.buffer-flush.max-rows", "int", minimum=0, description=_COMPATIBILITY),
    Option("sink.buffer-flush.interval", "duration", description=_COMPATIBILITY),
)


@dataclass(frozen=True)
class Topics:
    """What a table reads: named topics, or a pattern."""

    names: tuple[str, ...] = ()
    pattern: re.Pattern | None = None

    def describe(self) -> str:
        return f"pattern '{self.pattern.pattern}'" if self.pattern else f"topic '{';'.join(self.names)}'"


def topics(table: TableDef) -> Topics:
    """`topic` ('a;b') or `topic-pattern`, exactly one of them (as Flink)."""
    name, pattern = table.options.get("topic"), table.options.get("topic-pattern")
    if bool(name) == bool(pattern):
        raise ConnectorError(
            f"Table '{table.name}': the kafka connector needs either 'topic' or 'topic-pattern' (one of them)"
        )
    if pattern:
        try:
            return Topics(pattern=re.compile(pattern))
        except re.error as e:
            raise ConnectorError(
                f"Table '{table.name}': 'topic-pattern' = '{pattern}' is not valid: {e}"
            ) from None
    return Topics(names=tuple(t.strip() for t in name.split(";") if t.strip()))  # type: ignore[union-attr]


def choice(table: TableDef, key: str, default: str) -> str:
    return table.options.get(key, default).lower()


def bootstrap(table: TableDef) -> str:
    return table.options.get("properties.bootstrap.servers", "")


def timeout_ms(table: TableDef) -> int:
    """How long to wait for the broker at start (`properties.default.api.timeout.ms`)."""
    return int(table.options.get("properties.default.api.timeout.ms", DEFAULT_TIMEOUT_MS))


def client_config(table: TableDef) -> dict[str, str]:
    """The `properties.*` options as confluent-kafka configuration."""
    config = {
        k.removeprefix("properties."): v for k, v in table.options.items() if k.startswith("properties.")
    }
    config.pop("default.api.timeout.ms", None)
    jaas = config.pop("sasl.jaas.config", None)
    if jaas is not None:
        found = dict(_JAAS.findall(jaas))
        if "username" not in found or "password" not in found:
            raise ConnectorError(
                f"Table '{table.name}': 'properties.sasl.jaas.config' needs username=\"...\" and "
                'password="..." (PLAIN or SCRAM login modules)'
            )
        config.setdefault("sasl.username", found["username"])
        config.setdefault("sasl.password", found["password"])
    return config


def required_int(table: TableDef, key: str) -> int:
    value = table.options.get(key)
    if value is None:
        raise ConnectorError(f"Table '{table.name}': this mode needs '{key}'")
    return int(value)
