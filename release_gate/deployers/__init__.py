"""Deployers: how a release reaches the canary node, production, and back."""

from release_gate.deployers.base import Deployer, DeployError, Node

__all__ = ["DeployError", "Deployer", "Node"]
