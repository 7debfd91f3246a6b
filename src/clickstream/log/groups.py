"""Committed offsets of consumer groups: `<topic>/groups/<group>.json`, one file per group.

The file maps each partition to the next offset the group will read, as Kafka's committed offsets
do. A commit replaces the file atomically and is fsynced: offsets are committed rarely, and a
commit that is lost would make a restarted reader process records twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

from clickstream.log.files import read_json, write_atomically


class GroupOffsets:
    def __init__(self, topic_dir: Path, group: str) -> None:
        self.group = group
        # quoted, so any group id is a safe file name
        self.path = topic_dir / "groups" / f"{quote(group, safe='')}.json"

    def load(self) -> dict[int, int]:
        content = read_json(self.path)
        if not content:
            return {}
        return {int(p): int(o) for p, o in content["offsets"].items()}

    def save(self, offsets: dict[int, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        content = {
            "group": self.group,
            "committed_at_ms": int(time.time() * 1000),
            "offsets": {str(p): o for p, o in sorted(offsets.items())},
        }
        write_atomically(self.path, content)
