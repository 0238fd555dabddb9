#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): one command, <= 8 min on one H100/H200, writing
# gpu_check.json and gpu_check.md to $OUT (default bench/out/gpu_check).
#   bench/gpu_check.sh            on the lent GPU machine (device tool: carry .whl)
#   bench/gpu_check.sh --smoke    the same sections at toy sizes on the CPU (~1 min; the tests run it)
# Nothing downloads: Python packages missing there (jsonschema and its needs) travel as
# wheels in .whl/, made here by bench/gpu_wheels.sh, and install into a folder of their own.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi
if compgen -G ".whl/*.whl" >/dev/null && ! "$PY" -c "import jsonschema" 2>/dev/null; then
  site=$(mktemp -d)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT_DIR=${OUT:-bench/out/gpu_check}
limit=480
if [ "${1:-}" = "--smoke" ]; then limit=300; fi
exec timeout "$limit" "$PY" bench/gpu_check.py --out "$OUT_DIR" "$@"
