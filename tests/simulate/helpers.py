"""Reading generated records back: event times per kind, parsed lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from clickstream.simulate.base import BAD_TIME, Record

# (kind, topic) -> the field holding event time
TIME_FIELDS = {
    ("tianchi", "clickstream-feed"): "ts",
    ("ecommerce", "ecommerce_events"): "timestamp",
    ("ecommerce", "ecommerce_inventory"): "timestamp",
    ("ksql-clickstream", "clickstream"): "event_time",
    ("users-clicks", "clicks"): "event_time",
    ("users-clicks", "users"): "updated_at",
    ("checkouts", "clicks"): "datetime_occured",
    ("checkouts", "checkouts"): "datetime_occured",
}
EVENT_TOPIC = {
    "tianchi": "clickstream-feed",
    "ecommerce": "ecommerce_events",
    "ksql-clickstream": "clickstream",
    "users-clicks": "clicks",
    "checkouts": "clicks",
}


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def event_ms(kind: str, record: Record) -> int | None:
    """The record's event time, or None if it is malformed or has none (a table row)."""
    field = TIME_FIELDS.get((kind, record.topic))
    value = record.value
    if field is None or isinstance(value, str) or value.get(field) in (None, BAD_TIME):
        return None
    return ms(value[field])


def is_malformed(record: Record) -> bool:
    if isinstance(record.value, str):
        try:
            orjson.loads(record.value)
        except orjson.JSONDecodeError:
            return True
        return False
    return BAD_TIME in record.value.values()


def by_topic(records: list[Record], topic: str) -> list[dict[str, Any]]:
    return [r.value for r in records if r.topic == topic and isinstance(r.value, dict)]
