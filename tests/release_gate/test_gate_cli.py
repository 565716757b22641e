"""The ``release-gate`` commands CI and operators script against: a refused
deploy (exit 2, the receipt as JSON, the summary on stderr), freezes, locks,
history, and configuration errors (exit 4 naming file and line)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from release_gate.cli import main


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands install a stderr log handler on CliRunner's stream; drop it."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_vigil", False):
            root.removeHandler(handler)


@pytest.fixture
def env(gate_db_url: str, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "gate.yaml"
    config.write_text(
        """
services:
  translator:
    deployer:
      type: hooks
      deploy_canary: "echo deployed >> hooks.log"
      promote: "true"
      rollback: "true"
      canary: {name: preprod, metrics_url: "http://127.0.0.1:9/metrics"}
      production: [{name: prod-1, metrics_url: "http://127.0.0.1:9/metrics"}]
      cwd: "."
"""
    )
    return {
        "GATE_DATABASE_URL": gate_db_url,
        "GATE_CONFIG": str(config),
        "GATE_STATE_DIR": str(tmp_path / "state"),
        "GATE_SENTINEL_URL": "",
        "GATE_POSTMORTEMS_URL": "",
    }


def _run(env: dict[str, str], *args: str) -> Result:
    clean = {k: (v or None) for k, v in env.items()}
    return CliRunner().invoke(main, list(args), env=clean, catch_exceptions=False)


def test_a_frozen_service_refuses_a_deploy_with_exit_2_and_a_receipt(
    env: dict[str, str], tmp_path: Path
) -> None:
    frozen = _run(
        env,
        "freeze",
        "--service",
        "translator",
        "--reason",
        "db migration",
        "--minutes",
        "30",
    )
    assert frozen.exit_code == 0, frozen.output
    freeze_id = json.loads(frozen.stdout)["id"]

    locks = _run(env, "locks", "--json")
    assert [f["id"] for f in json.loads(locks.stdout)["freezes"]] == [freeze_id]

    receipt_file = tmp_path / "receipt.json"
    refused = _run(
        env,
        "deploy",
        "--service",
        "translator",
        "--version",
        "2.0.0",
        "--receipt",
        str(receipt_file),
    )
    assert refused.exit_code == 2
    assert refused.stdout == ""  # the receipt went to the file
    assert "REFUSED, nothing deployed" in refused.stderr
    assert "db migration" in refused.stderr
    receipt = json.loads(receipt_file.read_text())
    assert receipt["status"] == "refused" and receipt["exit_code"] == 2
    assert receipt["refusal"]["blockers"][0]["kind"] == "freeze"
    assert not (tmp_path / "hooks.log").exists()

    lifted = _run(env, "unfreeze", str(freeze_id))
    assert lifted.exit_code == 0
    assert json.loads(_run(env, "locks", "--json").stdout)["freezes"] == []

    history = json.loads(_run(env, "history", "--json").stdout)
    assert [(r["version"], r["status"]) for r in history["releases"]] == [("2.0.0", "refused")]
    assert history["change_failure_rate"] == {"releases": 0, "failed": 0, "rate": None}


def test_a_deploy_of_an_unknown_service_is_exit_4(env: dict[str, str]) -> None:
    result = _run(env, "deploy", "--service", "payments", "--version", "1")
    assert result.exit_code == 4
    assert "unknown service 'payments' (configured: translator)" in result.stderr


def test_a_bad_configuration_is_exit_4_naming_file_and_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  translator:\n    deployer:\n      type: kubernetes\n")
    result = _run(
        {**env, "GATE_CONFIG": str(bad)},
        "deploy",
        "--service",
        "translator",
        "--version",
        "1",
    )
    assert result.exit_code == 4
    assert f"{bad}:4: services.translator.deployer" in result.stderr


def test_freeze_wants_exactly_one_expiry(env: dict[str, str]) -> None:
    result = _run(env, "freeze", "--reason", "r")
    assert result.exit_code == 2
    assert "exactly one of --minutes and --until" in result.output


def test_the_example_configuration_is_valid() -> None:
    from release_gate.config import load_config

    config = load_config(Path(__file__).parents[2] / "release_gate/examples/gate.yaml")
    assert config.seniors_for("translator") == {"carol", "dmitri"}
    assert config.judge_config().max_duration_s == 600
    assert config.service("translator").deployer.type == "hooks"
