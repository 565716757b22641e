#!/usr/bin/env bash
# Install, lint, then run the suite twice: on SQLite and on PostgreSQL (the slow
# journeys once, in the SQLite pass, except those marked postgres_journey).
# PostgreSQL comes from TEST_POSTGRES_URL (default: the local server, database
# "test"); without a server the PostgreSQL run skips, and under CI it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export TEST_POSTGRES_URL="${TEST_POSTGRES_URL:-postgresql://127.0.0.1:5432/test}"

.venv/bin/ruff check .
# The slowest tests of each pass are listed at its end: where CI time goes.
SLOWEST=(--durations=15 --durations-min=5)
echo "== tests on SQLite"
TEST_DATABASE=sqlite .venv/bin/python -m pytest -q "${SLOWEST[@]}" "$@"
echo "== tests on PostgreSQL ($TEST_POSTGRES_URL)"
# the slow journeys ran in the SQLite pass; here only those that are about PostgreSQL
TEST_DATABASE=postgres .venv/bin/python -m pytest -q -m "not slow or postgres_journey" "${SLOWEST[@]}" "$@"
