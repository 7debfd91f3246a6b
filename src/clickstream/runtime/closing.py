"""Closing everything a job holds, even when some of it fails to close.

A sink whose database is gone raises from its final flush; the job must still stop its source
read-ahead threads and close its connections, or the process aborts at exit (a DuckDB thread
still running while the interpreter tears down). The first error is raised once all is closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def close_all(closers: Iterable[Callable[[], None]]) -> None:
    """Call every closer; then raise the first error one of them raised, if any."""
    first: BaseException | None = None
    for close in closers:
        try:
            close()
        except BaseException as error:  # the others must still run
            first = first or error
    if first is not None:
        raise first
