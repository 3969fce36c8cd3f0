#!/usr/bin/env bash
# ruff + the whole pytest suite; "no tests collected" (exit 5) counts as failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
.venv/bin/ruff check ffpt tests benchmarks || exit 1
# tests/test_kokkos.py uses the cached KOKKOS LAMMPS of scripts/build_lammps_kokkos.sh (or
# FFPT_LMP_KOKKOS) and skips without one; FFPT_BUILD_KOKKOS=1 builds it first (30-60 min cold)
if [ "${FFPT_BUILD_KOKKOS:-0}" = 1 ]; then bash scripts/build_lammps_kokkos.sh >/dev/null || exit 1; fi
.venv/bin/python -m pytest -ra "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi
exit $rc
