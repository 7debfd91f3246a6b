#!/usr/bin/env bash
# Generate a day of Tianchi-style events and the category table, run the seed's three analyses,
# and show the results. Run from the repository root with `clickstream` on PATH.
set -euo pipefail
rm -f data/results.db
clickstream generate tianchi --events "${EVENTS:-200000}" --late-ratio 0.001 \
    --malformed-ratio 0.0001 --out data/user_behavior.jsonl --dimension data/dim.db
clickstream run examples/seed_000.sql
python3 - <<'PY'
import sqlite3
db = sqlite3.connect("data/results.db")
print("hourly trading volume:", db.execute("SELECT * FROM buy_cnt_per_hour ORDER BY 1").fetchall())
print("cumulative UV, last points:",
      db.execute("SELECT * FROM cumulative_uv ORDER BY 1, 2 DESC LIMIT 3").fetchall())
print("top categories:", db.execute("SELECT * FROM top_category ORDER BY 2 DESC").fetchall())
PY
