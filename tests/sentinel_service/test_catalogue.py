"""The signal catalogue: the default one is valid, bad ones are refused with
the file, the line and the field."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from common.yaml_config import ConfigError
from sentinel.catalogue import load_catalogue
from sentinel.cli import main
from sentinel.settings import DEFAULT_CATALOGUE

GOOD = """\
signals:
  - name: payments.failed
    description: failed payments
    kind: count
    labels: {team: payments, service: translator}
    source:
      type: sql
      window_seconds: 600
      query: SELECT COUNT(*) AS value FROM payments WHERE created_at >= :start
"""


def test_default_catalogue_has_the_four_business_signals():
    names = {s.name for s in load_catalogue(DEFAULT_CATALOGUE).signals}
    assert {
        "payments.failed",
        "payments.failed_ratio",
        "jobs.empty_list_share",
        "queue.lag_seconds",
        "queue.depth",
        "http.error_ratio_by_route",
        "http.error_ratio",
    } <= names
    for spec in load_catalogue(DEFAULT_CATALOGUE).signals:
        assert spec.runbook.strip(), spec.name


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (("kind: count", "kind: gauge"), ":4: signals.0.kind"),
        (
            (
                "SELECT COUNT(*) AS value FROM payments WHERE created_at >= :start",
                "DELETE FROM payments",
            ),
            ":9: signals.0.source.query",
        ),
        (
            (
                "SELECT COUNT(*) AS value FROM payments WHERE created_at >= :start",
                "SELECT 1 AS value; DROP TABLE payments",
            ),
            ":9: signals.0.source.query",
        ),
        (("window_seconds: 600", "window_seconds: -5"), ":8: signals.0.source.window_seconds"),
        (("{team: payments, service: translator}", "{team: payments}"), ":2: signals.0"),
        (("type: sql", "type: carrier-pigeon"), ":7: signals.0.source"),
    ],
)
def test_bad_catalogue_names_file_line_and_field(tmp_path, edit, where):
    path = tmp_path / "signals.yaml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(ConfigError) as err:
        load_catalogue(path)
    assert f"{path}{where}" in str(err.value)


def test_part_of_names_the_service_wide_signal(tmp_path):
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    errors = {"http.error_ratio", "http.error_ratio_by_route"}
    assert catalogue.family("http.error_ratio") == errors
    assert catalogue.family("http.error_ratio_by_route") == errors
    assert catalogue.family("queue.depth") == {"queue.depth"}
    assert catalogue.family("no.such.signal") == {"no.such.signal"}

    path = tmp_path / "signals.yaml"
    path.write_text(GOOD.replace("kind: count", "kind: count\n    part_of: payments.lost"))
    with pytest.raises(ConfigError) as err:
        load_catalogue(path)
    assert "part_of names 'payments.lost', not another signal" in str(err.value)


def test_check_command(tmp_path):
    path = tmp_path / "signals.yaml"
    path.write_text(GOOD)
    ok = CliRunner().invoke(main, ["check", str(path)])
    assert ok.exit_code == 0 and "1 signals, valid" in ok.output
    path.write_text(GOOD.replace("kind: count", "kind: gauge"))
    bad = CliRunner().invoke(main, ["check", str(path)])
    assert bad.exit_code == 1 and "signals.0.kind" in bad.output
