"""What the dashboards tests share: the built-in catalogue, an export of it, and
promtool from Debian's prometheus package."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dashboards.export import export
from sentinel.catalogue import Catalogue, load_catalogue
from sentinel.settings import DEFAULT_CATALOGUE
from tests.daemons import require_binary

SENTINEL = "https://sentinel.example.com"


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue(DEFAULT_CATALOGUE)


@pytest.fixture
def exported(catalogue: Catalogue, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    export(catalogue, out, sentinel_url=SENTINEL)
    return out


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = require_binary("/usr/bin/promtool", "promtool", hint="apt-get install -y prometheus")
    return subprocess.run(
        [binary, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )
