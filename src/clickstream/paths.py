"""Where clickstream keeps things when no path is given, in one place: the embedded log's directory
is the same for the `log` connector (its `path` option), `clickstream generate -o log:...` and
`clickstream replay -o log:...`, so a job without `path` reads what the simulators wrote."""

from __future__ import annotations

import os

LOG_DIR_VARIABLE = "CLICKSTREAM_LOG_DIR"
DEFAULT_LOG_DIR = "clickstream-log"  # relative to the working directory


def default_log_dir() -> str:
    """`$CLICKSTREAM_LOG_DIR`, else `clickstream-log` in the working directory."""
    return os.environ.get(LOG_DIR_VARIABLE) or DEFAULT_LOG_DIR
