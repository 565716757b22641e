"""What the gate asks of any infrastructure: put a version on the canary node,
promote it to production, or put the canary back. The gate itself only
orchestrates and judges; a deployer does the work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


class DeployError(RuntimeError):
    """The infrastructure failed (a hook exited non-zero, a node never became
    healthy...). The gate answers exit code 4 and leaves the old version."""


@dataclass(frozen=True)
class Node:
    """One instance of a service, and where its Prometheus metrics are read."""

    name: str
    role: Literal["canary", "production"]
    metrics_url: str


class Deployer(Protocol):
    def current_version(self, service: str) -> str | None:
        """The version production runs now (None: never deployed)."""
        ...

    def deploy_canary(self, service: str, version: str) -> Node:
        """Install ``version`` on the preprod (canary) node and wait until it is healthy."""
        ...

    def control_nodes(self, service: str) -> list[Node]:
        """The production nodes the canary is compared with."""
        ...

    def promote(self, service: str, version: str) -> None:
        """Move every production node to ``version``."""
        ...

    def rollback_canary(self, service: str, previous_version: str | None) -> None:
        """Put the canary node back on ``previous_version`` (a switch, not a rebuild)."""
        ...
