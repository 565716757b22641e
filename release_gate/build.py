"""Wiring the gate from its settings and configuration file."""

from __future__ import annotations

from common.clock import Clock, SystemClock
from release_gate.announce import Announcer
from release_gate.config import load_config
from release_gate.db import Database
from release_gate.deployers.factory import deployer_factory
from release_gate.guards import Guards
from release_gate.incidents import IncidentReporter
from release_gate.service import ReleaseGate
from release_gate.settings import GateSettings


def build_gate(
    settings: GateSettings, *, clock: Clock | None = None, migrate: bool = True
) -> ReleaseGate:
    config = load_config(settings.config)
    db = Database(settings.database_url)
    if migrate:
        db.migrate()
    clock = clock or SystemClock()
    timeout = settings.peer_timeout_seconds
    return ReleaseGate(
        db,
        config,
        clock=clock,
        deployer_for=deployer_factory(config, settings.state_dir),
        guards=Guards(
            sentinel_url=settings.sentinel_url,
            postmortems_url=settings.postmortems_url,
            sentinel_token=settings.sentinel_token,
            postmortems_token=settings.postmortems_token,
            timeout=timeout,
        ),
        announcer=Announcer(
            clock,
            sentinel_url=settings.sentinel_url,
            token=settings.sentinel_token,
            timeout=timeout,
        ),
        incidents=IncidentReporter(
            postmortems_url=settings.postmortems_url,
            token=settings.postmortems_token,
            timeout=timeout,
        ),
        stale_after_seconds=settings.stale_after_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
    )
