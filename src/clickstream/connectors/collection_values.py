"""ARRAY, MAP and ROW values as sinks write them: JSON values, and Flink's text (print).

Arrow hands a MAP to Python as a list of (key, value) pairs, so an empty MAP and an empty ARRAY
look alike: the column's Arrow type tells them apart, and is followed down nested values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa


def is_collection(arrow_type: pa.DataType) -> bool:
    return bool(pa.types.is_list(arrow_type) or pa.types.is_map(arrow_type) or pa.types.is_struct(arrow_type))


def to_json(value: Any, arrow_type: pa.DataType) -> Any:
    """A JSON-ready value: a MAP becomes an object (keys as text), a ROW an object of its fields."""
    if value is None:
        return None
    if pa.types.is_map(arrow_type):
        return {str(k): to_json(v, arrow_type.item_type) for k, v in value}
    if pa.types.is_list(arrow_type):
        return [to_json(v, arrow_type.value_type) for v in value]
    if pa.types.is_struct(arrow_type):
        return {f.name: to_json(value[f.name], f.type) for f in arrow_type}
    return value


def to_text(value: Any, arrow_type: pa.DataType, scalar: Callable[[Any], str]) -> str:
    """Flink's string form of a value (its print connector's): `[1, 2]`, `{k=1}`, `+I[1, b]`;
    other values as `scalar` writes them."""
    if value is None or not is_collection(arrow_type):
        return scalar(value)
    if pa.types.is_map(arrow_type):
        pairs = ", ".join(
            f"{to_text(k, arrow_type.key_type, scalar)}={to_text(v, arrow_type.item_type, scalar)}"
            for k, v in value
        )
        return "{" + pairs + "}"
    if pa.types.is_list(arrow_type):
        return "[" + ", ".join(to_text(v, arrow_type.value_type, scalar) for v in value) + "]"
    return "+I[" + ", ".join(to_text(value[f.name], f.type, scalar) for f in arrow_type) + "]"
