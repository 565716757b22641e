"""The deployer a service's configuration names."""

from __future__ import annotations

from pathlib import Path

from release_gate.config import GateConfig, HooksDeployerConfig
from release_gate.deployers.base import Deployer


def deployer_factory(config: GateConfig, state_dir: Path):  # type: ignore[no-untyped-def]
    """``service -> Deployer``; each deployer is built once and reused."""
    built: dict[str, Deployer] = {}

    def deployer_for(service: str) -> Deployer:
        if service not in built:
            section = config.service(service).deployer
            if isinstance(section, HooksDeployerConfig):
                from release_gate.deployers.hooks import HooksDeployer

                built[service] = HooksDeployer(service, section, state_dir)
            else:
                # Imported only when used: it brings nginx and process management.
                from release_gate.deployers.local_fleet import LocalFleet

                fleet_dir = state_dir / "local_fleet" / service  # one fleet per service
                built[service] = LocalFleet.from_config(section.model_dump(), fleet_dir)
        return built[service]

    return deployer_for
