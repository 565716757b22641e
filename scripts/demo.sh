#!/usr/bin/env bash
# Install, then run the demo on SQLite (var/): the translator with workers,
# scheduler, seeded users, two weeks of history and live traffic; the sentinel
# watching it; faults a minute in, and the alerts they raise.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m demo "$@"
