"""A SELECT's job is the engine's current job while it runs, as an INSERT's is: what stops a job on
SIGINT/SIGTERM (`clickstream run`) stops a SELECT on an unbounded source too, which then returns."""

from __future__ import annotations

import io

from clickstream.engine import Engine
from clickstream.simulate import generate


def test_a_select_on_an_unbounded_source_stops_as_its_current_job(tmp_path):
    generate("tianchi", "log:ub", events=100, log_dir=str(tmp_path))
    engine = Engine(out=io.StringIO())
    current = []

    def on_batch(job):
        current.append(engine.current_job is job)
        job.stop()

    engine.on_batch = on_batch
    engine.execute_script(
        f"CREATE TABLE ub (user_id BIGINT) WITH ('connector' = 'log', 'path' = '{tmp_path}',"
        " 'topic' = 'ub', 'format' = 'json');\n"
        "SELECT user_id FROM ub;\n"
    )
    assert current and all(current)
    assert engine.current_job is None
    assert engine.out.getvalue().count("+I[") == 100
