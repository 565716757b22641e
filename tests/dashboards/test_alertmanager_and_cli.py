"""The generated Alertmanager configuration passes ``amtool check-config`` and, run
by a real Alertmanager, delivers Prometheus' alerts to a real sentinel's webhook
with its bearer token; ``dashboards export`` writes every file and names what it
could not express."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from click.testing import CliRunner

from dashboards.alertmanager import alertmanager_config
from dashboards.cli import main
from tests.alertmanager_server import alertmanager_server, require_alertmanager, require_amtool
from tests.identity import ADMIN_HEADERS
from tests.sentinel_service.test_alertmanager_real import TOKEN, serve_sentinel


def _amtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_amtool(), "check-config", str(path)], capture_output=True, text=True, timeout=60
    )


def test_the_generated_configuration_passes_amtool(exported: Path, tmp_path: Path) -> None:
    path = exported / "alertmanager" / "alertmanager.yml"
    checked = _amtool_check(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(path.read_text())
    (receiver,) = config["receivers"]
    (webhook,) = receiver["webhook_configs"]
    assert webhook["url"] == "https://sentinel.example.com/api/alertmanager/webhook"
    assert webhook["send_resolved"] is True
    assert config["route"]["receiver"] == receiver["name"]

    with_token = tmp_path / "with-token.yml"
    token_file = tmp_path / "sentinel-token"
    token_file.write_text(TOKEN)
    with_token.write_text(
        yaml.safe_dump(alertmanager_config("http://127.0.0.1:8100", str(token_file)))
    )
    checked = _amtool_check(with_token)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_real_alertmanager_delivers_to_the_sentinel_with_the_generated_receiver(
    sentinel_url: str, database_url: str, clock: Any, tmp_path: Path
) -> None:
    require_alertmanager()
    token_file = tmp_path / "sentinel-token"
    token_file.write_text(TOKEN + "\n")
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    alert = {
        "labels": {
            "alertname": "HttpErrorRatioByRoute",
            "route": "/api/jobs",
            "severity": "P1",
            "signal": "http.error_ratio_by_route",
            "service": "translator",
            "source": "vigil",
        },
        "annotations": {"summary": "[P1] http.error_ratio_by_route route=/api/jobs: above"},
        "startsAt": started,
    }
    with serve_sentinel(sentinel_url, database_url, clock) as sentinel:
        config = alertmanager_config(sentinel, str(token_file))
        with alertmanager_server(json.dumps(config)) as am:
            am.post_alerts([alert])

            def recorded() -> list[dict[str, Any]]:
                listed = httpx.get(
                    f"{sentinel}/api/alerts", headers=ADMIN_HEADERS, timeout=5, trust_env=False
                ).json()
                return [a for a in listed if a["source"] == "alertmanager"]

            (found,) = am.wait_for(recorded, what="the sentinel to record the alert")
    assert found["signal"] == "HttpErrorRatioByRoute"
    assert found["state"] == "firing" and found["severity"] == "P1"
    assert found["labels"]["route"] == "/api/jobs"


def test_the_command_writes_every_file_and_says_what_has_no_rule(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["export", "--out", str(out), "--sentinel-url", "https://s.example.com/", "--no-tunings"],
    )
    assert result.exit_code == 0, result.output
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert written == {
        "grafana/vigil-translator.json",
        "grafana/vigil-host.json",
        "prometheus/vigil-rules.yml",
        "prometheus/vigil-rules.test.yml",
        "alertmanager/alertmanager.yml",
    }
    assert "no Prometheus rule for payments.failed: its sql source" in result.output
    board = json.loads((out / "grafana" / "vigil-translator.json").read_text())
    assert board["panels"][0]["links"][0]["url"].startswith("https://s.example.com/runbooks/")

    only_rules = tmp_path / "rules-only"
    result = CliRunner().invoke(main, ["export", "rules", "--out", str(only_rules), "--no-tunings"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in only_rules.rglob("*") if p.is_file()) == [
        "vigil-rules.test.yml",
        "vigil-rules.yml",
    ]


def test_tunings_come_from_the_sentinels_database(sentinel_url: str, tmp_path: Path) -> None:
    from sentinel import tunings
    from sentinel.db import Database

    db = Database(sentinel_url)
    try:
        tunings.record(
            db,
            "llm.breaker_open",
            {"kind": "static", "params": {"threshold": 0.5}},
            {"method": "test"},
            datetime(2026, 3, 2, tzinfo=UTC),
            apply=True,
            by="alice",
        )
    finally:
        db.dispose()
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["export", "--out", str(out), "--sentinel-database-url", sentinel_url]
    )
    assert result.exit_code == 0, result.output
    assert "1 applied tunings" in result.output
    rules = yaml.safe_load((out / "prometheus" / "vigil-rules.yml").read_text())
    (breaker,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "LlmBreakerOpen"]
    assert breaker["expr"].rstrip().endswith(">= 0.5")


def test_a_bad_catalogue_is_refused_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "signals.yaml"
    bad.write_text("signals:\n  - name: Bad Name\n    description: x\n")
    result = CliRunner().invoke(main, ["export", "--out", str(tmp_path), "--catalogue", str(bad)])
    assert result.exit_code == 1
    assert "signals.yaml:2" in result.output
