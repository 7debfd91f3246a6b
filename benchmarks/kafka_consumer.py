"""The floor of reading a Kafka topic from Python: a bare confluent-kafka Consumer drains every
partition of a topic from its start to the end offsets it finds, and json-decodes each value
with orjson. ``python -m benchmarks.kafka_consumer BOOTSTRAP TOPIC OUT [--batch N] [--no-gc]
[--property KEY=VALUE ...]``

With ``--no-gc`` Python's cyclic garbage collector is off (a batch's hundreds of thousands of
Message objects otherwise set off full collections); ``--property`` sets a librdkafka property
(default: librdkafka's defaults). Nothing of clickstream is imported. ``OUT``
(JSON) gets the records and bytes read, the seconds spent importing and draining, and the number
of fields decoded (the caller checks the count).
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

_STARTED = time.monotonic()

import orjson  # noqa: E402
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition  # noqa: E402

# as many as the engine asks for by default (`table.exec.mini-batch.size`)
DEFAULT_BATCH = 250_000


def _end_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    """Each partition's end offset now: where draining stops."""
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions}


def drain(bootstrap: str, topic: str, batch: int, properties: dict[str, str]) -> dict[str, object]:
    """Read every partition up to its end offset; decode each value."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bare-consumer",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "log_level": 0,
            **properties,
        }
    )
    ends = _end_offsets(consumer, topic)
    left = {p for p, end in ends.items() if end > 0}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in left])
    records = size = fields = 0
    while left:
        for message in consumer.consume(batch, 0.1):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                left.discard(message.partition())
                continue
            value = message.value()
            fields += len(orjson.loads(value))
            records += 1
            size += len(value)
            if message.offset() + 1 >= ends[message.partition()]:
                left.discard(message.partition())
    consumer.close()
    return {"records": records, "bytes": size, "fields": fields, "batch": batch, "properties": properties}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kafka_consumer")
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="num_messages per consume()")
    parser.add_argument(
        "--no-gc", action="store_true", help="no cyclic GC, as the kafka source while it polls"
    )
    parser.add_argument("--property", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if args.no_gc:
        gc.disable()
    imported = time.monotonic()
    properties = dict(item.split("=", 1) for item in args.property)
    report = drain(args.bootstrap, args.topic, args.batch, properties)
    report_s = {"import_s": round(imported - _STARTED, 3), "run_s": round(time.monotonic() - imported, 3)}
    args.out.write_text(json.dumps({**report, **report_s}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
