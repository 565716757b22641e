"""A sentinel app on the test database for API tests: the pipeline's alerting
setup, one pushed signal, a token, channels without credentials (pages go to
the outbox file)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.clock import FakeClock
from common.yaml_config import parse_yaml_model
from sentinel.api import create_app
from sentinel.catalogue import Catalogue
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings
from tests.alerting_pipeline.conftest import CONFIG

PUSH_CATALOGUE = """
signals:
  - name: orders.placed
    description: orders pushed by the shop
    kind: count
    interval_seconds: 60
    labels: {service: shop, team: shop}
    source: {type: push}
"""


@pytest.fixture
def sentinel_app(sentinel_url: str, database_url: str, tmp_path: Path) -> Iterator[Any]:
    config = tmp_path / "alerting.yaml"
    config.write_text(CONFIG)
    settings = SentinelSettings(
        database_url=sentinel_url,
        translator_database_url=database_url,
        alerting=config,
        public_url="https://sentinel.example.com",
        outbox_file=tmp_path / "outbox.jsonl",
    )
    sentinel = build_sentinel(
        settings,
        clock=FakeClock(),
        catalogue=parse_yaml_model(PUSH_CATALOGUE, Catalogue),
        migrate=False,
    )
    yield create_app(sentinel, run_loop=False)
    sentinel.close()
