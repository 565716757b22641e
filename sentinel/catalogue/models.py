"""Pydantic models of the catalogue file. Validation errors are turned into
``file:line: field: message`` by ``common.yaml_config``."""

from __future__ import annotations

import enum
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sentinel.detectors.spec import FIXED_KINDS, DetectorSpec, SignalKind, default_spec
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
    # A fixed guard from the seeds' norms that judges while the detector is still learning
    # (a fresh install, a new series): no signal is blind from its first minute.
    prior: DetectorSpec | None = None
    severity: Severity = Severity.P2
    labels: dict[str, str] = {}  # routing labels: team, service, ...
    runbook: str = ""
    no_data: NoDataPolicy = NoDataPolicy.alert
    no_data_after_seconds: float | None = Field(default=None, gt=0)
    # The service-wide signal this one breaks down by a label (the 5xx ratio per
    # route is part of the overall 5xx ratio): one fault raises both, and their
    # alerts make one incident.
    part_of: str | None = None

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

    @field_validator("prior")
    @classmethod
    def _fixed_prior(cls, value: DetectorSpec | None) -> DetectorSpec | None:
        if value is not None:
            DetectorSpec(kind="auto", prior=value)  # the same checks as a detector's prior
        return value

    @property
    def effective_detector(self) -> DetectorSpec:
        """What the series of this signal run when no tuning is applied."""
        return self.guarded(self.detector or default_spec(self.kind))

    def guarded(self, detector: DetectorSpec) -> DetectorSpec:
        """``detector`` with this signal's prior, where it has something to learn."""
        if self.prior is None or detector.prior is not None or detector.kind in FIXED_KINDS:
            return detector
        return detector.model_copy(update={"prior": self.prior})

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
        for signal in self.signals:
            whole = signal.part_of
            if whole is None:
                continue
            if whole == signal.name or whole not in seen:
                raise ValueError(
                    f"signal {signal.name!r}: part_of names {whole!r}, not another signal "
                    "of the catalogue"
                )
            if self.get(whole).part_of is not None:
                raise ValueError(
                    f"signal {signal.name!r}: part_of names {whole!r}, itself part of "
                    f"{self.get(whole).part_of!r}; name the service-wide signal"
                )
        return self

    def family(self, name: str) -> frozenset[str]:
        """The signals that measure what ``name`` does, whole or broken down
        (``part_of``), ``name`` included; an unknown name is alone."""
        whole = {s.name: s.part_of or s.name for s in self.signals}
        root = whole.get(name)
        if root is None:
            return frozenset({name})
        return frozenset(n for n, r in whole.items() if r == root)

    def get(self, name: str) -> SignalSpec:
        for signal in self.signals:
            if signal.name == name:
                return signal
        raise KeyError(
            f"no signal {name!r} in the catalogue; known: "
            + ", ".join(s.name for s in self.signals)
        )
