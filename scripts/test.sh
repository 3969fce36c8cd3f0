#!/usr/bin/env bash
# ruff + the whole pytest suite; "no tests collected" (exit 5) counts as failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
.venv/bin/ruff check ffpt tests benchmarks || exit 1
.venv/bin/python -m pytest -ra "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi
exit $rc
