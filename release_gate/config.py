"""The gate's YAML configuration: which services it releases, through which
deployer, who the senior engineers are, how long the lock lasts and how the
canary is judged. Errors name the file, the line and the field.

    seniors: [carol]
    lock_minutes: 5
    sampling_interval_seconds: 10
    canary_deadline_seconds: 600
    judge: {}                       # JudgeConfig fields; defaults when absent
    services:
      translator:
        deployer:
          type: hooks
          deploy_canary: "deploy.sh {service} {version} {node}"
          promote: "promote.sh {service} {version} {node}"
          rollback: "rollback.sh {service} {version} {node}"
          canary: {name: preprod, metrics_url: "http://127.0.0.1:8001/metrics"}
          production:
            - {name: prod-1, metrics_url: "http://127.0.0.1:8002/metrics"}
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from common.yaml_config import load_yaml_model, parse_yaml_model
from release_gate.judge import JudgeConfig

PLACEHOLDERS = {"service", "version", "node", "previous_version"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeConfig(_Strict):
    name: str = Field(min_length=1)
    metrics_url: str = Field(min_length=1)


class HooksDeployerConfig(_Strict):
    """Shell commands for any infrastructure. Placeholders: ``{service}``,
    ``{version}``, ``{node}`` (and ``{previous_version}`` for rollback)."""

    type: Literal["hooks"]
    deploy_canary: str = Field(min_length=1)
    promote: str = Field(min_length=1)
    rollback: str = Field(min_length=1)
    # Prints the version production runs; without it the gate remembers the
    # version it last promoted.
    current_version: str | None = None
    # Waits until the canary answers; the deploy fails if it exits non-zero.
    health_check: str | None = None
    timeout_seconds: float = Field(default=300.0, gt=0)
    canary: NodeConfig
    production: list[NodeConfig] = Field(min_length=1)
    # Working directory and extra environment for the commands.
    cwd: Path | None = None
    env: dict[str, str] = {}

    @field_validator("deploy_canary", "promote", "rollback", "current_version", "health_check")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"bad placeholder syntax: {exc}") from exc
        unknown = names - PLACEHOLDERS
        if unknown:
            allowed = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}} (allowed: {allowed})")
        return value


class LocalFleetDeployerConfig(BaseModel):
    """Translator nodes as local processes behind nginx; the section goes as it
    is to ``LocalFleet.from_config``, which validates it."""

    model_config = ConfigDict(extra="allow")
    type: Literal["local_fleet"]


DeployerConfig = Annotated[
    HooksDeployerConfig | LocalFleetDeployerConfig, Field(discriminator="type")
]


class PromqlSamplingConfig(_Strict):
    """Read the counts from a Prometheus server instead of the nodes' /metrics.
    ``canary`` and ``control`` are label matchers that select each side's
    series, e.g. ``instance="127.0.0.1:8001"``."""

    url: str
    canary: str
    control: str


class ServiceConfig(_Strict):
    deployer: DeployerConfig
    promql: PromqlSamplingConfig | None = None
    # Per-service overrides of the gate-wide values.
    lock_minutes: float | None = Field(default=None, ge=0)
    seniors: list[str] = []


class GateConfig(_Strict):
    services: dict[str, ServiceConfig] = Field(min_length=1)
    seniors: list[str] = []
    lock_minutes: float = Field(default=5.0, ge=0)
    sampling_interval_seconds: float = Field(default=10.0, gt=0)
    canary_deadline_seconds: float = Field(default=600.0, gt=0)
    # JudgeConfig fields; max_duration_s defaults to canary_deadline_seconds.
    judge: dict[str, Any] = Field(default_factory=dict, validate_default=True)

    @field_validator("judge")
    @classmethod
    def _judge_fits(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        deadline = info.data.get("canary_deadline_seconds", 600.0)
        try:
            JudgeConfig.model_validate({"max_duration_s": deadline, **value})
        except ValidationError as exc:
            problems = "; ".join(
                ".".join(str(p) for p in e["loc"]) + ": " + e["msg"].removeprefix("Value error, ")
                if e["loc"]
                else e["msg"].removeprefix("Value error, ")
                for e in exc.errors()
            )
            raise ValueError(f"{problems} (canary_deadline_seconds is {deadline:g})") from None
        return value

    def judge_config(self) -> JudgeConfig:
        return JudgeConfig.model_validate(
            {"max_duration_s": self.canary_deadline_seconds, **self.judge}
        )

    @field_validator("services")
    @classmethod
    def _names(cls, value: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        for name in value:
            if not name or any(c.isspace() for c in name):
                raise ValueError(f"service name {name!r} must be a non-empty word")
        return value

    def service(self, name: str) -> ServiceConfig:
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services))
            raise UnknownService(f"unknown service {name!r} (configured: {known})") from None

    def lock_minutes_for(self, service: str) -> float:
        own = self.service(service).lock_minutes
        return self.lock_minutes if own is None else own

    def seniors_for(self, service: str) -> set[str]:
        return set(self.seniors) | set(self.service(service).seniors)


class UnknownService(ValueError):
    pass


def load_config(path: str | Path) -> GateConfig:
    return load_yaml_model(path, GateConfig)


def parse_config(text: str, source: str = "<string>") -> GateConfig:
    return parse_yaml_model(text, GateConfig, source=source)
