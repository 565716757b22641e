"""The command-hook deployer: placeholders, the version it remembers,
non-zero exits and timeouts as DeployError with the command's stderr."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.yaml_config import ConfigError
from release_gate.config import HooksDeployerConfig, parse_config
from release_gate.deployers.base import DeployError
from release_gate.deployers.hooks import HooksDeployer


def _deployer(tmp_path: Path, **hooks: object) -> tuple[HooksDeployer, Path]:
    log = tmp_path / "hooks.log"
    config = HooksDeployerConfig.model_validate(
        {
            "type": "hooks",
            "deploy_canary": f"echo deploy {{service}} {{version}} {{node}} >> {log}",
            "promote": f"echo promote {{service}} {{version}} {{node}} >> {log}",
            "rollback": f"echo rollback {{service}} {{version}} {{node}} >> {log}",
            "canary": {"name": "preprod", "metrics_url": "http://127.0.0.1:1/metrics"},
            "production": [
                {"name": "prod-1", "metrics_url": "http://127.0.0.1:2/metrics"},
                {"name": "prod-2", "metrics_url": "http://127.0.0.1:3/metrics"},
            ],
            **hooks,
        }
    )
    return HooksDeployer("translator", config, tmp_path / "state"), log


def test_hooks_run_with_their_placeholders_and_the_promoted_version_is_remembered(
    tmp_path: Path,
) -> None:
    deployer, log = _deployer(tmp_path)
    assert deployer.current_version("translator") is None

    node = deployer.deploy_canary("translator", "1.4.2")
    assert (node.name, node.role, node.metrics_url) == (
        "preprod",
        "canary",
        "http://127.0.0.1:1/metrics",
    )
    assert [n.name for n in deployer.control_nodes("translator")] == ["prod-1", "prod-2"]
    deployer.promote("translator", "1.4.2")
    deployer.rollback_canary("translator", "1.4.1")
    assert log.read_text().splitlines() == [
        "deploy translator 1.4.2 preprod",
        "promote translator 1.4.2 prod-1",
        "promote translator 1.4.2 prod-2",
        "rollback translator 1.4.1 preprod",
    ]
    # A new deployer (another gate process) knows what production runs.
    again, _ = _deployer(tmp_path)
    assert again.current_version("translator") == "1.4.2"


def test_values_are_shell_quoted(tmp_path: Path) -> None:
    deployer, log = _deployer(tmp_path)
    deployer.deploy_canary("translator", "1.0; touch pwned")
    assert log.read_text().strip() == "deploy translator 1.0; touch pwned preprod"
    assert not (tmp_path / "pwned").exists()


def test_a_current_version_command_wins_over_the_remembered_one(tmp_path: Path) -> None:
    deployer, _ = _deployer(tmp_path, current_version="echo building...; echo 9.9.9")
    assert deployer.current_version("translator") == "9.9.9"


def test_a_failing_hook_is_a_deploy_error_with_its_stderr_tail(tmp_path: Path) -> None:
    deployer, _ = _deployer(
        tmp_path, deploy_canary="echo pulling image >&2; echo 'no space left on device' >&2; exit 3"
    )
    with pytest.raises(DeployError) as caught:
        deployer.deploy_canary("translator", "1.4.2")
    message = str(caught.value)
    assert "deploy_canary hook exited 3" in message
    assert "no space left on device" in message


def test_a_failing_health_check_fails_the_deploy(tmp_path: Path) -> None:
    deployer, _ = _deployer(tmp_path, health_check="echo 'canary not healthy' >&2; false")
    with pytest.raises(DeployError, match="health_check hook exited 1.*canary not healthy"):
        deployer.deploy_canary("translator", "1.4.2")


def test_a_hook_that_outlives_its_timeout_is_killed(tmp_path: Path) -> None:
    deployer, _ = _deployer(tmp_path, rollback="echo stuck >&2; sleep 30", timeout_seconds=0.5)
    with pytest.raises(DeployError, match="rollback hook timed out after 0.5s"):
        deployer.rollback_canary("translator", "1.4.1")


def test_an_unknown_placeholder_is_a_configuration_error_with_its_line() -> None:
    text = """
services:
  translator:
    deployer:
      type: hooks
      deploy_canary: "deploy.sh {service} {verison}"
      promote: "true"
      rollback: "true"
      canary: {name: c, metrics_url: "http://c/metrics"}
      production: [{name: p, metrics_url: "http://p/metrics"}]
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gate.yaml")
    message = str(caught.value)
    assert "gate.yaml:6:" in message
    assert "unknown placeholder {verison}" in message
