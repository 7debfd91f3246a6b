"""Deterministic data for the demos (one generator per seed) and a replay of Tianchi's real file."""

from clickstream.simulate.base import Generator, GeneratorConfig, Injection, Record, Table
from clickstream.simulate.cli import KINDS, RunSummary, generate, make_generator, replay

__all__ = [
    "KINDS",
    "Generator",
    "GeneratorConfig",
    "Injection",
    "Record",
    "RunSummary",
    "Table",
    "generate",
    "make_generator",
    "replay",
]
