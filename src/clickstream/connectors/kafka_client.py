"""Opening confluent-kafka clients for a table, and the broker trouble they meet, as
`ConnectorError`s that name the table, the topic and the brokers (never a password).

librdkafka connects lazily and retries on its own: a broker that is down makes calls time out,
wrong credentials and unreachable brokers arrive through `error_cb`. So the connector asks for the
topics' metadata at start, waits at most `properties.default.api.timeout.ms`, and on failure says
what the client last reported. Once running, a broker that goes away is ridden out: librdkafka
reconnects, polls return nothing meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ClusterMetadata

from clickstream.connectors.kafka_options import Topics, bootstrap, client_config, timeout_ms
from clickstream.errors import ConnectorError
from clickstream.schema import TableDef

_LOG = logging.getLogger("clickstream.kafka")
_LASTING = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}
# errors a client reports while the brokers are away; it retries them itself
TRANSIENT = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
}


class ClientErrors:
    """The `error_cb` of a client: keeps the last error it reported, to explain a timeout, and
    the first that no retry mends (wrong credentials, a fatal client error)."""

    def __init__(self) -> None:
        self.last: KafkaError | None = None
        self.lasting: KafkaError | None = None

    def __call__(self, error: KafkaError) -> None:
        self.last = error
        if error.fatal() or error.code() in _LASTING:
            self.lasting = self.lasting or error

    def fatal(self) -> KafkaError | None:
        return self.lasting


def where(table: TableDef, topics: Topics | str) -> str:
    """'Table 't' (topic 'x' at bootstrap 'host:9092')' for messages."""
    described = topics.describe() if isinstance(topics, Topics) else f"topic '{topics}'"
    return f"Table '{table.name}' ({described} at bootstrap '{bootstrap(table)}')"


def _make(
    kind: Callable[[dict], Any], table: TableDef, config: dict[str, Any], defaults: dict[str, Any]
) -> tuple[Any, ClientErrors]:
    """A client with the table's properties over `defaults`, and `config` over both."""
    errors = ClientErrors()
    try:
        # the client's own log lines (connection refused while a broker restarts, ...) go to
        # Python logging, not to the job's stderr
        settings = {"logger": _LOG, **defaults, **client_config(table), **config, "error_cb": errors}
        return kind(settings), errors
    except KafkaException as e:
        raise ConnectorError(
            f"Table '{table.name}': the Kafka client refuses its properties: {e.args[0].str()}"
        ) from None


def consumer(
    table: TableDef, config: dict[str, Any], defaults: dict[str, Any] | None = None
) -> tuple[Consumer, ClientErrors]:
    return _make(Consumer, table, config, defaults or {})


def producer(
    table: TableDef, config: dict[str, Any], defaults: dict[str, Any]
) -> tuple[Producer, ClientErrors]:
    return _make(Producer, table, config, defaults)


def admin(table: TableDef) -> tuple[AdminClient, ClientErrors]:
    return _make(AdminClient, table, {}, {})


def metadata(
    client: Any,
    errors: ClientErrors,
    table: TableDef,
    topics: Topics | str,
    serve: bool = True,
    timeout_s: float | None = None,
) -> ClusterMetadata:
    """The cluster's metadata (all topics), waiting at most `timeout_s` (default: the table's
    timeout); a clear error when the brokers cannot be reached or refuse the credentials. `serve`:
    poll the client between tries, which runs `error_cb` (only where a poll returns no record:
    before any assignment)."""
    wait_s = timeout_ms(table) / 1000 if timeout_s is None else timeout_s
    deadline = time.monotonic() + wait_s
    while True:
        if serve:
            client.poll(0)
        fatal = errors.fatal()
        if fatal is not None:
            raise ConnectorError(f"{where(table, topics)}: the broker refuses the client: {fatal.str()}")
        left = deadline - time.monotonic()
        try:
            return client.list_topics(timeout=max(min(left, 1.0), 0.1))
        except KafkaException as e:
            if left <= 0:
                seen = errors.last.str() if errors.last is not None else e.args[0].str()
                raise ConnectorError(
                    f"{where(table, topics)}: cannot reach Kafka within {wait_s:g} s: {seen}"
                ) from None


def ask(table: TableDef, topics: Topics | str, what: str, call: Callable[[float], Any]) -> Any:
    """`call(timeout_s)` to the brokers, tried again while it fails with an error that passes
    (a coordinator moving or loading, a broker away) until the table's timeout; then, or on a
    lasting error, a ConnectorError saying it could not `what`."""
    deadline = time.monotonic() + timeout_ms(table) / 1000
    while True:
        left = deadline - time.monotonic()
        try:
            return call(max(left, 0.1))
        except KafkaException as e:
            error = e.args[0]
            if left <= 0 or not (error.retriable() or error.code() in TRANSIENT):
                raise ConnectorError(f"{where(table, topics)}: cannot {what}: {error.str()}") from None
            time.sleep(0.1)


def partitions_of(meta: ClusterMetadata, table: TableDef, topics: Topics) -> dict[str, int]:
    """The partition count of each topic the table reads; an unknown named topic is refused."""
    found: dict[str, int] = {}
    for name, topic in meta.topics.items():
        wanted = topics.pattern.fullmatch(name) if topics.pattern else name in topics.names
        if wanted and topic.error is None and topic.partitions:
            found[name] = len(topic.partitions)
    missing = [t for t in topics.names if t not in found]
    if missing:
        raise ConnectorError(f"{where(table, topics)}: the topic '{missing[0]}' does not exist")
    return found
