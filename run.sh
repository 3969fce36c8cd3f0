#!/usr/bin/env bash
# The two entry points of README:  ./run.sh demo   and   ./run.sh test
# Both set up .venv first (idempotent; see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")"
what=${1:-}
shift || true
case "$what" in
    demo) bash scripts/setup.sh && exec .venv/bin/ffpt demo "$@" ;;
    test) bash scripts/setup.sh && exec bash scripts/test.sh "$@" ;;
    setup) exec bash scripts/setup.sh ;;
    *) echo "usage: ./run.sh demo|test|setup [args]" >&2; exit 2 ;;
esac
