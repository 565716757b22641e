"""Our matchers decide like Alertmanager's own: each case of the tables in
``test_matchers`` is routed by Debian's ``amtool config routes test``, which parses
the matcher text and matches labels with Alertmanager's code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sentinel.alerting.matchers import Matcher, parse_matcher
from tests.alerting_rules.test_matchers import PARSED, SEMANTICS
from tests.alertmanager_server import require_amtool

# Alertmanager 0.25's classic parser knows only Prometheus label names.
PROMETHEUS_NAMES = [case for case in PARSED if "." not in case[1]]


def routed_by_alertmanager(
    amtool: str, tmp_path: Path, matcher: str, labels: dict[str, str]
) -> bool:
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        json.dumps(
            {
                "route": {
                    "receiver": "miss",
                    "routes": [{"matchers": [matcher], "receiver": "hit"}],
                },
                "receivers": [{"name": "miss"}, {"name": "hit"}],
            }
        )
    )
    # Label values go in quoted text form, so quotes and newlines survive the CLI.
    args = [str(Matcher(k, "=", v)) for k, v in labels.items()] or ['unrelated="1"']
    done = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", *args],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip() == "hit"


@pytest.mark.parametrize(("matcher", "labels", "expected"), SEMANTICS)
def test_semantics_match_alertmanager(
    matcher: str, labels: dict[str, str], expected: bool, tmp_path: Path
) -> None:
    amtool = require_amtool()
    assert routed_by_alertmanager(amtool, tmp_path, matcher, labels) is expected
    assert parse_matcher(matcher).matches(labels) is expected


@pytest.mark.parametrize(("text", "name", "op", "value"), PROMETHEUS_NAMES)
def test_parsing_matches_alertmanager(
    text: str, name: str, op: str, value: str, tmp_path: Path
) -> None:
    """Alertmanager reads the same value out of the text: an alert carrying exactly
    that value (and one carrying another) is routed the way our matcher decides."""
    amtool = require_amtool()
    ours = parse_matcher(text)
    for labels in ({name: value}, {name: value + "x"}):
        assert routed_by_alertmanager(amtool, tmp_path, text, labels) is ours.matches(labels)
