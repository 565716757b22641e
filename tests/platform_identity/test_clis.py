"""``vigil-admin`` makes accounts and tokens (each shown once) and revokes them;
``release-gate deploy`` releases as the account of VIGIL_TOKEN (the lock's
author exemption follows it: tests/release_gate/test_gate_api.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from common.identity import open_store
from common.identity.cli import main as vigil_admin
from release_gate.cli import main as release_gate
from release_gate.db import Database as GateDatabase

HOOKS_CONFIG = """
services:
  translator:
    deployer:
      type: hooks
      deploy_canary: "true"
      promote: "true"
      rollback: "true"
      canary: {name: preprod, metrics_url: "http://127.0.0.1:9/metrics"}
      production: [{name: prod-1, metrics_url: "http://127.0.0.1:9/metrics"}]
"""


@pytest.fixture(autouse=True)
def _drop_cli_log_handlers() -> Iterator[None]:
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_vigil", False):
            root.removeHandler(handler)


def admin(*args: str) -> Result:
    return CliRunner().invoke(vigil_admin, list(args), catch_exceptions=False)


def test_accounts_and_tokens_are_made_shown_once_and_revoked(database_url: str) -> None:
    made = admin("account", "create", "ci-translator", "--role", "release_manager", "--service")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("vgl_") and "created service account ci-translator" in made.stderr
    assert admin("account", "create", "ci-translator", "--role", "viewer").exit_code == 1

    listed = json.loads(admin("account", "list", "--json").stdout)
    assert {(a["name"], a["role"], a["kind"]) for a in listed} >= {
        ("ci-translator", "release_manager", "service")
    }
    tokens = admin("token", "list", "ci-translator").stdout
    assert token[:8] in tokens and token not in tokens  # only its first characters

    store = open_store()
    caller = store.authenticate(token)
    assert caller is not None and caller.name == "ci-translator"
    assert admin("token", "revoke", str(caller.token_id)).exit_code == 0
    assert store.authenticate(token) is None
    assert "revoked" in admin("token", "list", "ci-translator").stdout
    spare = admin("token", "create", "ci-translator", "--label", "spare").stdout.strip()
    assert store.authenticate(spare) is not None
    assert admin("account", "role", "ci-translator", "viewer").exit_code == 0
    assert store.authenticate(spare).role.value == "viewer"  # type: ignore[union-attr]
    assert admin("account", "disable", "ci-translator").exit_code == 0
    assert store.authenticate(spare) is None
    store.dispose()


@pytest.fixture
def gate_env(postgres_database: str | None, database_url: str, tmp_path: Path) -> dict[str, str]:
    url = database_url
    if postgres_database is None:
        url = f"sqlite:///{tmp_path / 'gate.db'}"
        db = GateDatabase(url)
        db.migrate()
        db.dispose()
    config = tmp_path / "gate.yaml"
    config.write_text(HOOKS_CONFIG)
    return {
        "GATE_DATABASE_URL": url,
        "GATE_CONFIG": str(config),
        "GATE_STATE_DIR": str(tmp_path / "state"),
    }


def gate(env: dict[str, str], token: str, *args: str) -> Result:
    return CliRunner().invoke(
        release_gate, list(args), env={**env, "VIGIL_TOKEN": token}, catch_exceptions=False
    )


def test_a_deploy_is_authored_by_the_tokens_account(gate_env: dict[str, str]) -> None:
    ci = admin("account", "create", "ci-translator", "--role", "release_manager", "--service")
    viewer = admin("account", "create", "vic", "--role", "viewer").stdout.strip()
    ci_token = ci.stdout.strip()
    deploy = ("deploy", "--service", "translator", "--version")

    refused = gate(gate_env, viewer, *deploy, "1.0.1")
    assert refused.exit_code == 4 and "vic is a viewer" in refused.stderr
    spoof = gate(gate_env, ci_token, *deploy, "1.0.1", "--author", "alice")
    assert spoof.exit_code == 4 and "not VIGIL_TOKEN's account (ci-translator)" in spoof.stderr
    unknown = gate(gate_env, "vgl_not-a-token-at-all-0000", *deploy, "1.0.1")
    assert unknown.exit_code == 4 and "not a live platform token" in unknown.stderr

    # A freeze refuses the release at once (exit 2), after taking its author from the token.
    spoofed = gate(gate_env, ci_token, "freeze", "--reason", "r", "--by", "ops", "--minutes", "5")
    assert spoofed.exit_code == 1 and "--by ops is not VIGIL_TOKEN's account" in spoofed.output
    frozen = gate(gate_env, ci_token, "freeze", "--reason", "r", "--minutes", "5")
    assert frozen.exit_code == 0, frozen.output
    assert json.loads(frozen.stdout)["created_by"] == "ci-translator"  # the token's account
    receipt = gate(gate_env, ci_token, *deploy, "1.0.1")
    assert receipt.exit_code == 2
    assert json.loads(receipt.stdout)["author"] == "ci-translator"
