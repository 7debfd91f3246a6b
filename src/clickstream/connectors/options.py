"""Connector options, declared once per connector and checked at `CREATE TABLE`, as Flink's
`ConfigOption` and `FactoryUtil` do.

Each connector module declares `OPTIONS`, a tuple of `Option`s: Flink's exact key, a type, the
default, whether it is required, the values allowed and one sentence saying what it does. A format
(`formats.FORMATS`) declares its own options without prefix; a connector option marked `format=True`
(`format`, `value.format`, `key.format`) brings in the chosen format's options under the prefix Flink
gives them (`json.`, `value.json.`, `key.json.`).

`check()` refuses, with Flink's messages, a key that nothing declares (and names the closest
supported key), a value of the wrong type or outside the allowed values, and a missing required
option. Options Flink accepts that change nothing here (`sink.parallelism`, ...) are declared and
accepted; options whose meaning we do not implement are not declared, so they are refused rather than
silently ignored.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from clickstream.config import parse_duration_ms
from clickstream.errors import ClickstreamError, ConnectorError, ConnectorOptionError, is_secret_option
from clickstream.schema import TableDef

OptionType = Literal["string", "int", "number", "bool", "duration", "enum"]

FIELD = "#"  # in a key, one column name of the table: 'fields.#.kind'
ANY = "*"  # at the end of a key, any suffix: 'properties.*'

_EXPECTED = {
    "int": "an integer",
    "number": "a number",
    "bool": "a boolean ('true' or 'false')",
    "duration": "a duration such as '10 s', '500 ms' or '1h'",
}


@dataclass(frozen=True)
class Option:
    """One `WITH` option of a connector or format (Flink's `ConfigOption`)."""

    key: str
    type: OptionType = "string"
    default: str | None = None
    required: bool = False
    values: tuple[str, ...] = ()  # for "enum": the values allowed (case-insensitive, as Flink)
    description: str = ""
    minimum: int | None = None  # for "int"
    format: bool = False  # its value names a format, whose options it brings in

    def keys(self, columns: Iterable[str]) -> list[str]:
        """The concrete keys this option stands for (one per column for 'fields.#.kind')."""
        if FIELD in self.key:
            return [self.key.replace(FIELD, c) for c in columns]
        return [self.key]

    def problem(self, value: str) -> str | None:
        """What is wrong with `value`, to follow "'key' = 'value' " (None: nothing)."""
        if self.type == "enum":
            if value.lower() not in (v.lower() for v in self.values):
                return f"is not supported; use one of {', '.join(self.values)}"
            return None
        try:
            if self.type == "int":
                number = int(value.strip())
                if self.minimum is not None and number < self.minimum:
                    return f"is not supported; use an integer >= {self.minimum}"
            elif self.type == "number":
                float(value.strip())
            elif self.type == "bool":
                if value.strip().lower() not in ("true", "false"):
                    raise ValueError(value)
            elif self.type == "duration":
                parse_duration_ms(value)
        except (ValueError, ClickstreamError):
            return f"is not {_EXPECTED[self.type]}"
        return None


def supported_keys(
    options: Iterable[Option], formats: Mapping[str, tuple[Option, ...]], given: Mapping[str, str], columns
) -> dict[str, Option]:
    """Every key the table may use, with its declaration: the connector's own options (fields
    expanded to the table's columns) and the options of the formats it chose."""
    options = list(options)
    columns = list(columns)
    supported: dict[str, Option] = {"connector": Option("connector", required=True)}
    for option in options:
        for key in option.keys(columns):
            supported[key] = option
    chosen = [o for o in options if o.format and o.key in given]
    if not chosen:  # a format option's default applies only when no other one is given
        chosen = [o for o in options if o.format and o.default is not None]
    for option in chosen:
        name = given.get(option.key, option.default or "").lower()
        prefix = option.key[: -len("format")]  # 'format' -> '', 'value.format' -> 'value.'
        for format_option in formats.get(name, ()):
            supported[f"{prefix}{name}.{format_option.key}"] = format_option
    return supported


def check(
    identifier: str,
    table_name: str,
    options: Iterable[Option],
    formats: Mapping[str, tuple[Option, ...]],
    given: Mapping[str, str],
    columns: Iterable[str] = (),
) -> None:
    """Refuse unknown keys, bad values and missing required options, with Flink's messages."""
    supported = supported_keys(options, formats, given, columns)
    prefixes = [k[: -len(ANY)] for k in supported if k.endswith(ANY)]
    unknown = sorted(k for k in given if k not in supported and not k.startswith(tuple(prefixes)))
    if unknown:
        listed = "\n".join(sorted(supported))
        close = difflib.get_close_matches(unknown[0], [k for k in supported if not k.endswith(ANY)], n=1)
        raise ConnectorOptionError(
            f"Unsupported options found for '{identifier}'.\n\n"
            f"Unsupported options:\n\n{chr(10).join(unknown)}\n\n"
            f"Supported options:\n\n{listed}",
            hint=f"Did you mean '{close[0]}'?" if close else None,
            key=unknown[0],
            table=table_name,
        )
    for key, value in given.items():
        option = supported.get(key)
        problem = option.problem(value) if option is not None else None
        if option is not None and problem:
            shown = "******" if is_secret_option(key) else value.replace("'", "''")
            raise ConnectorOptionError(
                f"Table '{table_name}': '{key}' = '{shown}' {problem}",
                hint=option.description or None,
                key=key,
                table=table_name,
            )
    missing = sorted(k for k, o in supported.items() if o.required and k not in given)
    if missing:
        wanted = [f"'{k}' ({_sentence(supported[k].description)})" for k in missing]
        raise ConnectorOptionError(
            "One or more required options are missing.\n\nMissing required options are:\n\n"
            + "\n".join(missing),
            hint=f"Table '{table_name}' (connector '{identifier}') needs " + " and ".join(wanted),
            table=table_name,
        )


def _sentence(description: str) -> str:
    """A description as a clause: 'The file to read.' -> 'the file to read'."""
    text = description.removesuffix(".")
    return text[:1].lower() + text[1:]


DELIVERY_GUARANTEE = Option(
    "sink.delivery-guarantee",
    "enum",
    "exactly-once",
    values=("exactly-once", "at-least-once", "none"),
    description="'exactly-once': an append sink commits its rows with each checkpoint, so a "
    "restored job adds nothing twice (rows appear at checkpoints); 'at-least-once' writes each "
    "batch at once.",
)


def exactly_once(options: Mapping[str, str]) -> bool:
    """Whether a sink's `sink.delivery-guarantee` asks for exactly-once."""
    return options.get("sink.delivery-guarantee", "exactly-once").lower() == "exactly-once"


_SPECIFIC = re.compile(r"^\s*partition\s*:\s*(\d+)\s*,\s*offset\s*:\s*(\d+)\s*$")


def parse_specific_offsets(table: TableDef, key: str) -> dict[int, int]:
    """`partition:0,offset:42;partition:1,offset:300`, as Flink writes specific offsets (the log
    and Kafka connectors' `scan.*.specific-offsets`)."""
    text = table.options.get(key)
    if not text:
        raise ConnectorError(f"Table '{table.name}': this mode needs '{key}'")
    offsets = {}
    for item in filter(str.strip, text.split(";")):
        match = _SPECIFIC.match(item)
        if not match:
            raise ConnectorError(
                f"Table '{table.name}': '{key}' has '{item}'; expected "
                "'partition:<n>,offset:<n>' items separated by ';'"
            )
        offsets[int(match.group(1))] = int(match.group(2))
    return offsets
