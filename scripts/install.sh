#!/usr/bin/env bash
# Install what the platform and its tests need: a virtualenv in .venv with the
# project, and the Debian packages the tests drive (PostgreSQL client tools,
# Prometheus, Alertmanager, the node exporter, nginx, Chromium; none is started
# here, the tests and the demo start what they need).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v pg_dump >/dev/null 2>&1 || need_apt+=(postgresql-client)
[ -x /usr/bin/prometheus ] || need_apt+=(prometheus)
[ -x /usr/bin/prometheus-alertmanager ] || need_apt+=(prometheus-alertmanager)
[ -x /usr/bin/prometheus-node-exporter ] || need_apt+=(prometheus-node-exporter)
[ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if ((${#need_apt[@]})); then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${need_apt[@]}"
    else
        echo "missing Debian packages: ${need_apt[*]} (install them with apt-get)" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
