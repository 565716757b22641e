#!/usr/bin/env bash
# Install, then run the demo on SQLite (var/) and tell its story as it happens:
# a bad release rolled back by the gate and its incident written up and closed,
# then faults whose alerts page the on-call person, who acknowledges them.
# `--short` compresses it for CI; Ctrl-C ends it with a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m demo "$@"
