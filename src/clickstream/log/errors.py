"""Errors of the embedded topic log."""

from __future__ import annotations

from clickstream.errors import ClickstreamError


class LogError(ClickstreamError):
    """The topic log was used wrongly (bad topic name, unknown option) or its directory failed."""


class LogCorruptionError(LogError):
    """A complete frame in a sealed segment does not check out (bad magic or CRC).

    Torn tails left by a killed appender are not corruption: they are never shown and the next
    appender cuts them off. This error means the file was damaged some other way; move the
    partition's damaged segment aside and restart the reader.
    """
