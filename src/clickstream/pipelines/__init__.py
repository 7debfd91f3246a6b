"""The analyses, as Flink SQL files with `{placeholders}` for where data lives."""

from __future__ import annotations

from importlib import resources


def load(name: str, **paths: str) -> str:
    """The statements of pipeline `name` (e.g. 'seed_000') with placeholders filled in."""
    text = resources.files(__package__).joinpath(f"{name}.sql").read_text()
    return text.format(**paths)


def names() -> list[str]:
    return sorted(
        p.name.removesuffix(".sql") for p in resources.files(__package__).iterdir() if p.name.endswith(".sql")
    )


__all__ = ["load", "names"]
