"""Pydantic models of the catalogue file. Validation errors are turned into
``file:line: field: message`` by ``common.yaml_config``."""

from __future__ import annotations

import enum
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sentinel.detectors.spec import DetectorSpec, SignalKind
from sentinel.sources.config import SourceConfig

NAME = re.compile(r"^[a-z][a-z0-9_.]{0,127}$")


class Severity(enum.StrEnum):
    """Seed 002's priorities: P0 critical … P3 low."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class NoDataPolicy(enum.StrEnum):
    alert = "alert"  # no data for the absence window is itself an alert
    ok = "ok"  # silence counts as healthy (e.g. a rare event count)
    keep = "keep"  # keep the last state until data returns


class SignalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    kind: SignalKind
    source: SourceConfig
    interval_seconds: float = Field(default=30, ge=1, le=86400)
    unit: str = ""
    detector: DetectorSpec | None = None  # None: the product's default for the kind
    severity: Severity = Severity.P2
    labels: dict[str, str] = {}  # routing labels: team, service, ...
    runbook: str = ""
    no_data: NoDataPolicy = NoDataPolicy.alert
    no_data_after_seconds: float | None = Field(default=None, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("use lower-case letters, digits, '_' and '.', starting with a letter")
        return value

    @model_validator(mode="after")
    def _routing(self) -> SignalSpec:
        for key in ("team", "service"):
            if key not in self.labels:
                raise ValueError(f"labels.{key} is required for routing")
        return self

    @property
    def absence_seconds(self) -> float:
        """How long without data before it counts as an outage of the signal."""
        return self.no_data_after_seconds or max(3 * self.interval_seconds, 60.0)


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signals: list[SignalSpec]

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        seen: set[str] = set()
        for signal in self.signals:
            if signal.name in seen:
                raise ValueError(f"signal {signal.name!r} is defined twice")
            seen.add(signal.name)
        return self

    def get(self, name: str) -> SignalSpec:
        for signal in self.signals:
            if signal.name == name:
                return signal
        raise KeyError(
            f"no signal {name!r} in the catalogue; known: "
            + ", ".join(s.name for s in self.signals)
        )
