#!/usr/bin/env bash
# Install, then run the demo: the translator on SQLite (var/) with workers,
# scheduler, seeded users, two weeks of history and live traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/translator demo "$@"
