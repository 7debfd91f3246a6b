#!/usr/bin/env bash
# Pathway's own environment for the benchmark's `Pathway` row (benchmarks/pathway_job.py), as
# PyFlink has .ci/flink-venv: never the project's venv. Usage: bash benchmarks/pathway-venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .ci/pathway-venv/bin/python ] || ! .ci/pathway-venv/bin/python -c 'import pathway' 2>/dev/null; then
  python3 -m venv .ci/pathway-venv
  .ci/pathway-venv/bin/pip install --quiet 'pathway==0.33.*'
fi
.ci/pathway-venv/bin/python -c 'import pathway; print("pathway", pathway.__version__)'
