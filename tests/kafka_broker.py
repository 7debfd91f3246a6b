"""A real Apache Kafka broker for tests and for a local try: one KRaft node, broker and controller in one
JVM, on free 127.0.0.1 ports, its data in a folder of its own.

The jars come from Maven Central through `scripts/kafka.sh` (cached). Listeners:
  PLAINTEXT       `bootstrap`        no authentication;
  SASL_PLAINTEXT  `sasl_bootstrap`   SASL/PLAIN, user SASL_USER with password SASL_PASSWORD;
  CONTROLLER      the KRaft quorum's own port, for the broker alone.
Topics are not created on first use (`auto.create.topics.enable=false`), as on a careful production
cluster: a job that names an unknown topic must say so, and tests create their topics (`create_topic`).
Replication factors and ISR sizes are 1 and the internal topics have one partition, so the first
consumer group or transaction does not wait for fifty partitions to be created.

Run one until Ctrl-C: `bash scripts/kafka.sh start` (or `python -m tests.kafka_broker --help`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

KAFKA_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "kafka.sh"
SASL_USER, SASL_PASSWORD = "clickstream", "clickstream-secret"
HOST = "127.0.0.1"
HEAP = "256m"
START_TIMEOUT_S = 90.0  # a cold JVM on a busy 2-core machine; an idle one answers in about 5 s
STOP_TIMEOUT_S = 20.0
_names = itertools.count()

# Log4j2 settings: warnings only, to the process's stdout (kept in `broker.log`); the broker's INFO
# lines would be most of a test run's output and say nothing a failure needs.
LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
"""


class BrokerError(RuntimeError):
    """The broker could not be fetched, formatted or started; the message says why."""


def fetch_libs() -> Path:
    """The folder of the broker's jars, fetched from Maven Central on the first call (scripts/kafka.sh)."""
    try:
        done = subprocess.run(
            ["bash", str(KAFKA_SCRIPT), "fetch"], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise BrokerError(f"{KAFKA_SCRIPT} failed: {e}") from e
    if done.returncode != 0:
        raise BrokerError(f"{KAFKA_SCRIPT} failed: {done.stderr.strip()[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on now, all different (held open together until each is known)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerError("no `java` on PATH: the broker needs Java 17 or newer")
    return found


def cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as `kafka-storage
    random-uuid` prints; Kafka refuses ids that begin with '-' (they read as command-line options)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


class KafkaBroker:
    """One broker; `start`, `stop`, `kill` and `restart` keep its ports and data, so a restarted broker
    is the same broker to its clients (topics, offsets and committed data survive)."""

    def __init__(
        self, libs: Path, directory: Path, port: int | None = None, quick_start: bool = True
    ) -> None:
        """`quick_start`: only the JVM's first compiler, which halves the start on a busy 2-core
        machine; a benchmark that measures the broker's own throughput passes False."""
        self.libs = libs
        self.directory = directory
        self.quick_start = quick_start
        self.port, self.sasl_port, self.controller_port = free_ports(3)
        if port is not None:
            self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"{HOST}:{self.sasl_port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "broker.log"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """confluent-kafka settings for the plaintext listener, librdkafka's own logging off (its
        connection-refused lines while a broker restarts would flood the test output)."""
        return {"bootstrap.servers": self.bootstrap, "log_level": 0, **extra}

    def sasl_config(self, password: str = SASL_PASSWORD, **extra: Any) -> dict[str, Any]:
        """confluent-kafka settings that log in on the SASL/PLAIN listener."""
        return {
            "bootstrap.servers": self.sasl_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": SASL_USER,
            "sasl.password": password,
            "log_level": 0,
            **extra,
        }

    def server_properties(self) -> str:
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{SASL_USER}="{SASL_PASSWORD}";'
        )
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{HOST}:{self.port},SASL_PLAINTEXT://{HOST}:{self.sasl_port},"
                f"CONTROLLER://{HOST}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port},SASL_PLAINTEXT://{HOST}:{self.sasl_port}",
            "listener.security.protocol.map": (
                "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
            ),
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
            "log.dirs": str(self.data_dir),
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # a killed broker's registration must lapse before its restart is let in: 3 s, not 9
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "500",
            # few threads: the machine has 2 cores shared with the job under test
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            java_binary(),
            f"-Xmx{HEAP}",
            "-Xms64m",
            "-XX:+UseSerialGC",  # one GC thread, small pauses at this heap size
            *(["-XX:TieredStopAtLevel=1"] if self.quick_start else []),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
            main_class,
            *args,
        ]

    def _configure(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "log4j2.properties").write_text(LOG4J2)
        config = self.directory / "server.properties"
        config.write_text(self.server_properties())
        return config

    def _format(self, config: Path) -> None:
        """`kafka-storage format` once: a restart finds the formatted log dir and keeps it."""
        if (self.data_dir / "meta.properties").exists():
            return
        command = self._java("kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(config))
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise BrokerError(f"kafka-storage format failed: {(done.stdout + done.stderr).strip()[-2000:]}")

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        if self.process is not None:
            raise BrokerError("the broker is already running")
        config = self._configure()
        self._format(config)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(config)),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_ended_with_this_process(),
        )
        try:
            self._wait_ready(timeout)
        except BaseException:  # Ctrl-C too: never leave a JVM behind
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        """Until the broker answers a metadata request on the plaintext listener."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise BrokerError(f"the broker exited with {self.process.returncode}: {self.log_tail()}")
            if _port_open(self.port):
                with contextlib.suppress(Exception):  # not ready yet: ask again
                    metadata = AdminClient(self.client_config()).list_topics(timeout=2)
                    if metadata.brokers:
                        return
            if time.monotonic() > deadline:
                raise BrokerError(f"the broker did not answer within {timeout:.0f} s: {self.log_tail()}")
            time.sleep(0.2)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """A clean shutdown (SIGTERM), or SIGKILL when it takes longer than `timeout`."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed or handed over."""
        self._end(signal.SIGKILL, STOP_TIMEOUT_S)

    def _end(self, how: signal.Signals, timeout: float) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(how)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, timeout: float = START_TIMEOUT_S) -> None:
        self.stop()
        self.start(timeout)

    def create_topic(self, name: str, partitions: int = 1, **config: str) -> str:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(self.client_config())
        futures = admin.create_topics([NewTopic(name, partitions, 1, config=config)], operation_timeout=30)
        futures[name].result(timeout=60)
        return name

    def new_topic(self, partitions: int = 1, prefix: str = "test") -> str:
        """A topic of a name no test used before, created."""
        return self.create_topic(f"{prefix}-{os.getpid()}-{next(_names)}", partitions)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no broker log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty broker log)"

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def produce(config: dict[str, Any], topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    """Write `records` (key, value) to `topic`; raise the first delivery error."""
    from confluent_kafka import KafkaException, Producer

    errors: list[Any] = []
    producer = Producer(config)
    for key, value in records:
        producer.produce(topic, value, key, on_delivery=lambda error, _: error and errors.append(error))
    if producer.flush(60) != 0:
        raise BrokerError(f"records to {topic} left undelivered after 60 s")
    if errors:
        raise KafkaException(errors[0])


def consume(config: dict[str, Any], topic: str, count: int, timeout: float = 60.0) -> list[Any]:
    """The first `count` messages of `topic` (confluent_kafka Messages), read from the beginning by a
    consumer group of its own; fewer if `timeout` passes first."""
    from confluent_kafka import Consumer, KafkaException

    consumer = Consumer({**config, "group.id": f"reader-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            found.append(message)
    finally:
        consumer.close()
    return found


def _ended_with_this_process() -> Callable[[], None] | None:
    """For the child: a SIGTERM when this process dies, so a test run killed outright (no fixture
    teardown) leaves no JVM behind. Linux ties it to the thread that started the child, so only a
    start from the main thread gets it: one from a helper thread would end when that thread does."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None).prctl  # looked up here: the child, between fork and exec, only calls it
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)
    return lambda: prctl(pr_set_pdeathsig, sigterm)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.kafka_broker", description="Run one Kafka broker on 127.0.0.1 until Ctrl-C."
    )
    parser.add_argument("--port", type=int, default=9092, help="plaintext port (default 9092; 0: a free one)")
    parser.add_argument("--dir", type=Path, help="data folder, kept after exit (default: a temporary one)")
    parser.add_argument("--libs", type=Path, help="the jars' folder (default: fetched by scripts/kafka.sh)")
    parser.add_argument(
        "--quick-start", action="store_true", help="the JVM's first compiler only: starts faster, runs slower"
    )
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        directory = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kafka-")))
        libs = args.libs or fetch_libs()
        broker = KafkaBroker(libs, directory.resolve(), port=args.port or None, quick_start=args.quick_start)
        try:
            stack.enter_context(broker)
        except BrokerError as e:
            sys.exit(f"kafka: {e}")
        print(f"Kafka on {broker.bootstrap}")
        print(f"SASL/PLAIN on {broker.sasl_bootstrap}: user {SASL_USER}, password {SASL_PASSWORD}")
        print(f"data in {directory}; Ctrl-C stops it", flush=True)
        _wait_for_stop_signal()


def _wait_for_stop_signal() -> None:
    """Until Ctrl-C or SIGTERM. Handlers are set explicitly: a shell starting this in the background
    ignores SIGINT for it, and Python's default SIGTERM would exit without stopping the JVM."""
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    while not stop.wait(1):  # a timed wait: Python runs signal handlers between waits
        pass


if __name__ == "__main__":
    main()
