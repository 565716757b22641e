"""Release gate configuration, from ``GATE_*`` environment variables. What is
deployed and how (services, deployers, seniors, judge) lives in the YAML file
named by ``GATE_CONFIG``."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class GateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATE_", extra="ignore")

    # Releases, steps, locks, freezes and overrides.
    database_url: str = "sqlite:///var/release_gate.db"
    config: Path = Path("release_gate.yaml")
    # Deployers keep what they need between calls here (e.g. the promoted version).
    state_dir: Path = Path("var/release_gate")

    # Peers over HTTP. Unset: the check is skipped and the receipt says so. The tokens
    # are platform tokens (vigil-admin): a release manager's opens incidents and announces.
    sentinel_url: str | None = None
    sentinel_token: str | None = None
    postmortems_url: str | None = None
    postmortems_token: str | None = None
    peer_timeout_seconds: float = 5.0

    # A running gate stamps its releases in flight every heartbeat_seconds (the
    # database's clock); one whose stamp is stale_after_seconds old is abandoned.
    heartbeat_seconds: float = 5.0
    stale_after_seconds: float = 30.0
    log_level: str = "INFO"
