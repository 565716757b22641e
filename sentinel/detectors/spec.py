"""Detector specifications: what to run on a signal, validated per kind, buildable into a
stepping detector or evaluated in batch over a whole history."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .base import (
    BatchResult,
    Detector,
    OrderError,
    Persisted,
    Persistence,
    Raw,
    margin_score_array,
    persist_batch,
    ratio_score_array,
)
from .burn import SRE_WINDOWS, BurnRate, burn_batch
from .count import Count, count_batch
from .engine import BandEngine, EngineParams, engine_batch
from .prior import Guarded, guarded_batch
from .threshold import (
    Absence,
    Ratio,
    Share,
    Static,
    absence_batch,
    ratio_batch,
    share_batch,
    static_batch,
)
from .trend import TimeToBreach, ttb_batch


class SignalKind(StrEnum):
    LEVEL = "level"  # any gauge
    COUNT = "count"  # events per interval, e.g. failed payments
    RATIO = "ratio"  # value in [0, 1] with a volume, e.g. failure share, empty job lists
    ERROR_RATIO = "error_ratio"  # errors / requests against an SLO (burn rates)
    QUEUE = "queue"  # age of the oldest job, queue depth


# --- parameters per kind -----------------------------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StaticParams(_Params):
    threshold: float
    direction: Literal["above", "below"] = "above"


class RatioParams(_Params):
    threshold: float = Field(ge=0, le=1)
    direction: Literal["above", "below"] = "above"
    min_volume: float = Field(20.0, ge=0)
    window_seconds: float = Field(0.0, ge=0)
    volume_is_rate: bool = False  # pooled volume counts requests (rate × seconds)


class ShareParams(_Params):
    threshold: float = Field(ge=0, le=1)
    direction: Literal["above", "below"] = "above"
    min_volume: float = Field(5.0, ge=0)


class CountParams(_Params):
    alpha: float = Field(1e-4, gt=0, lt=0.5)
    min_count: float = Field(5.0, ge=0)
    baseline_hours: int = Field(168, ge=3, le=24 * 90)
    dispersion: Literal["auto", "poisson"] = "auto"


class AbsenceParams(_Params):
    after_seconds: float = Field(600.0, gt=0)


class BurnRateParams(_Params):
    slo: float = Field(0.999, gt=0, lt=1)
    windows: list[tuple[float, float, float]] = Field(default_factory=lambda: list(SRE_WINDOWS))
    min_volume: float = Field(0.0, ge=0)
    factor_scale: float = Field(1.0, gt=0)

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
        if not v:
            raise ValueError("at least one (long_seconds, short_seconds, factor) window pair")
        for long_w, short_w, f in v:
            if not (long_w > short_w > 0 and f > 0):
                raise ValueError(
                    f"window ({long_w}, {short_w}, {f}): need long > short > 0 and factor > 0"
                )
        return v


class TimeToBreachParams(_Params):
    limit: float
    horizon_seconds: float = Field(900.0, gt=0)
    fit_samples: int = Field(10, ge=3, le=1000)


class BandParams(_Params):
    k: float = Field(5.0, gt=0)
    direction: Literal["both", "up", "down"] = "both"
    seasonality: Literal["auto", "weekly", "daily", "none"] = "auto"
    weeks: int = Field(4, ge=1, le=8)
    min_volume: float = Field(0.0, ge=0)
    shares: bool = False  # the values are shares of the volume (a ratio signal)
    warmup_hours: float = Field(24.0, ge=1, le=24 * 30)


class AutoParams(BandParams):
    k: float = Field(5.5, gt=0)  # chosen on bench/sentinel_detection.py (see its report)
    absence: bool = True


# --- the registry --------------------------------------------------------------------------

Batch = Callable[[dict[str, Any], np.ndarray, np.ndarray, "np.ndarray | None"], Raw]


def _engine(name: str, point: bool, windows: bool) -> tuple[Callable, Batch]:
    def params(p: dict[str, Any]) -> EngineParams:
        return EngineParams(
            k=p["k"],
            direction=p["direction"],
            seasonality=p["seasonality"],
            weeks=p["weeks"],
            min_volume=p["min_volume"],
            shares=p.get("shares", False),
            point=point,
            windows=windows,
            absence=p.get("absence", False),
            warmup_hours=p["warmup_hours"],
        )

    def build(p: dict[str, Any]) -> BandEngine:
        return BandEngine(name, params(p))

    def batch(p: dict[str, Any], t: np.ndarray, v: np.ndarray, vol: np.ndarray | None) -> Raw:
        return engine_batch(params(p), t, v, vol)

    return build, batch


@dataclass(frozen=True)
class KindInfo:
    params: type[_Params]
    build: Callable[[dict[str, Any]], Any]
    batch: Batch
    sensitivity: str  # the parameter tuning moves
    tau: Callable[[dict[str, Any]], float]  # threshold on `strength` for these params
    with_tau: Callable[[dict[str, Any], float], Any]  # the parameter's value for a threshold
    summary: str


def _sign(p: dict[str, Any]) -> float:
    return 1.0 if p.get("direction", "above") == "above" else -1.0


_auto_build, _auto_batch = _engine("auto", True, True)
_seas_build, _seas_batch = _engine("seasonal", True, False)
_shift_build, _shift_batch = _engine("level_shift", False, True)

KINDS: dict[str, KindInfo] = {
    "static": KindInfo(
        StaticParams,
        lambda p: Static(p["threshold"], p["direction"]),
        static_batch,
        "threshold",
        lambda p: _sign(p) * p["threshold"],
        lambda p, tau: _sign(p) * tau,
        "value above/below a fixed threshold",
    ),
    "ratio": KindInfo(
        RatioParams,
        lambda p: Ratio(
            p["threshold"],
            p["direction"],
            p["min_volume"],
            p["window_seconds"],
            p["volume_is_rate"],
        ),
        ratio_batch,
        "threshold",
        lambda p: _sign(p) * p["threshold"],
        lambda p, tau: min(max(_sign(p) * tau, 0.0), 1.0),
        "ratio against a threshold, no verdict under a minimum volume",
    ),
    "share": KindInfo(
        ShareParams,
        lambda p: Share(p["threshold"], p["direction"], p["min_volume"]),
        share_batch,
        "threshold",
        lambda p: _sign(p) * p["threshold"],
        lambda p, tau: min(max(_sign(p) * tau, 0.0), 1.0),
        "a count's share of its volume (failures of attempts) against a threshold",
    ),
    "count": KindInfo(
        CountParams,
        lambda p: Count(p["alpha"], p["min_count"], p["baseline_hours"], p["dispersion"]),
        count_batch,
        "alpha",
        lambda p: -math.log10(p["alpha"]),
        lambda p, tau: min(10.0**-tau, 0.49),
        "Poisson / negative binomial upper tail over a learned baseline, with a minimum count",
    ),
    "absence": KindInfo(
        AbsenceParams,
        lambda p: Absence(p["after_seconds"]),
        absence_batch,
        "after_seconds",
        lambda p: p["after_seconds"],
        lambda p, tau: tau,
        "no data for too long",
    ),
    "burn_rate": KindInfo(
        BurnRateParams,
        lambda p: BurnRate(p["slo"], tuple(p["windows"]), p["min_volume"], p["factor_scale"]),
        burn_batch,
        "factor_scale",
        lambda p: p["factor_scale"],
        lambda p, tau: tau,
        "multi-window error-budget burn rate against an SLO",
    ),
    "time_to_breach": KindInfo(
        TimeToBreachParams,
        lambda p: TimeToBreach(p["limit"], p["horizon_seconds"], p["fit_samples"]),
        ttb_batch,
        "horizon_seconds",
        lambda p: 1.0 / p["horizon_seconds"],
        lambda p, tau: 1.0 / tau,
        "linear trend reaching a limit within a horizon (queues)",
    ),
    "seasonal": KindInfo(
        BandParams,
        _seas_build,
        _seas_batch,
        "k",
        lambda p: p["k"],
        lambda p, tau: tau,
        "robust seasonal band (median and MAD per hour of week/day), point test",
    ),
    "level_shift": KindInfo(
        BandParams,
        _shift_build,
        _shift_batch,
        "k",
        lambda p: p["k"],
        lambda p, tau: tau,
        "shift of the mean of standardised residuals over 5..360 samples",
    ),
    "auto": KindInfo(
        AutoParams,
        _auto_build,
        _auto_batch,
        "k",
        lambda p: p["k"],
        lambda p, tau: tau,
        "learns everything from the series: seasonal band, spikes, shifts, drops, absence",
    ),
}


def _param_errors(kind: str, err: ValidationError) -> str:
    known = ", ".join(KINDS[kind].params.model_fields)
    parts = []
    for e in err.errors():
        field = ".".join(str(x) for x in e["loc"]) or "params"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown parameter '{field}' (known: {known})")
        elif e["type"] == "missing":
            parts.append(f"parameter '{field}' is required")
        else:
            parts.append(f"parameter '{field}': {e['msg']} (got {e.get('input')!r})")
    return f"detector '{kind}': " + "; ".join(parts)


class DetectorSpec(BaseModel):
    """What to run on a signal. `params` are validated and completed with defaults per
    kind; the persistence fields say when anomalous steps become an alert."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    params: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    for_samples: int = Field(1, ge=1)  # m anomalous steps ...
    of_samples: int | None = Field(None, ge=1)  # ... of the last n (default n = m)
    for_seconds: float = Field(0.0, ge=0)  # condition held this long (Prometheus `for`)
    keep_firing_for_seconds: float = Field(0.0, ge=0)  # Prometheus `keep_firing_for`
    provenance: dict[str, Any] | None = None  # how it was chosen (tuning), for alert text
    # A fixed guard that judges the steps this detector cannot judge yet (prior.py).
    prior: DetectorSpec | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in KINDS:
            raise ValueError(f"unknown detector kind '{v}' (known: {', '.join(sorted(KINDS))})")
        return v

    @field_validator("params")
    @classmethod
    def _params(cls, v: dict[str, Any], info: Any) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:
            return v  # the kind error is reported already
        try:
            return KINDS[kind].params.model_validate(v).model_dump()
        except ValidationError as err:
            raise ValueError(_param_errors(kind, err)) from None

    @model_validator(mode="after")
    def _persistence(self) -> DetectorSpec:
        if self.of_samples is not None and self.of_samples < self.for_samples:
            raise ValueError(
                f"of_samples ({self.of_samples}) must be at least for_samples ({self.for_samples})"
            )
        return self

    @model_validator(mode="after")
    def _prior(self) -> DetectorSpec:
        prior = self.prior
        if prior is None:
            return self
        if prior.kind not in FIXED_KINDS:
            raise ValueError(
                f"prior: a fixed detector ({', '.join(sorted(FIXED_KINDS))}), not '{prior.kind}'"
            )
        if prior.prior is not None or not prior.persistence.trivial:
            raise ValueError("prior: no prior or persistence of its own (the detector's apply)")
        return self

    @property
    def persistence(self) -> Persistence:
        return Persistence(
            self.for_samples, self.of_samples, self.for_seconds, self.keep_firing_for_seconds
        )

    @property
    def sensitivity(self) -> tuple[str, Any]:
        name = KINDS[self.kind].sensitivity
        return name, self.params[name]

    def describe(self) -> str:
        """One line: kind, parameters, persistence."""
        ps = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())
        extras = [self.persistence.text()]
        if self.prior is not None:
            extras.append(f"until learned: {self.prior.describe()}")
        extra = ", ".join(filter(None, extras))
        return f"{self.kind}({ps})" + (f" [{extra}]" if extra else "")

    @classmethod
    def parse(cls, text: str) -> DetectorSpec:
        """'NAME' or 'NAME:key=value,key=value' (as given on a command line)."""
        name, _, rest = text.strip().partition(":")
        params: dict[str, Any] = {}
        top: dict[str, Any] = {}
        for item in filter(None, (x.strip() for x in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"detector option '{item}' is not key=value")
            key = key.strip()
            target = top if key in _PERSISTENCE_FIELDS else params
            target[key] = _literal(value.strip())
        return cls(kind=name.strip(), params=params, **top)


_PERSISTENCE_FIELDS = {"for_samples", "of_samples", "for_seconds", "keep_firing_for_seconds"}
# Detectors that judge from the first sample, with nothing to learn: what a prior may be.
FIXED_KINDS = {"static", "ratio", "share", "absence"}


def _literal(s: str) -> Any:
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def build_detector(spec: DetectorSpec) -> Detector:
    """A fresh stepping detector for the spec (state starts empty)."""
    inner = KINDS[spec.kind].build(spec.params)
    if spec.prior is not None:
        inner = Guarded(inner, KINDS[spec.prior.kind].build(spec.prior.params))
    return Persisted(inner, spec.persistence)


def default_spec(kind: SignalKind | str | None) -> DetectorSpec:
    """What the product runs on a signal when the user names no detector."""
    k = SignalKind(kind) if kind is not None else None
    if k is SignalKind.ERROR_RATIO:
        return DetectorSpec(kind="burn_rate", params={"slo": 0.999})
    direction = {
        None: "both",
        SignalKind.LEVEL: "both",
        SignalKind.COUNT: "up",  # more failures is the problem; fewer is good news
        SignalKind.RATIO: "up",
        SignalKind.QUEUE: "up",
    }[k]
    params: dict[str, Any] = {"direction": direction}
    if k is SignalKind.RATIO:
        params["min_volume"] = 20.0
        params["shares"] = True
    return DetectorSpec(kind="auto", params=params, **DEFAULT_PERSISTENCE)


# one alert per incident, not one per flap: keep firing through 15 min of calm
DEFAULT_PERSISTENCE: dict[str, Any] = {"keep_firing_for_seconds": 900.0}


def spec_for(kind: SignalKind | str | None, detector: str | None) -> DetectorSpec:
    """The spec for a signal kind and an optional detector text (see DetectorSpec.parse);
    a named detector with a direction parameter takes the signal kind's direction unless
    the text sets one."""
    base = default_spec(kind)
    if detector is None:
        return base
    spec = DetectorSpec.parse(detector)
    if spec.kind == base.kind:
        merged = {**base.params, **_given(detector)}
        return spec.model_copy(
            update={"params": DetectorSpec(kind=spec.kind, params=merged).params}
        )
    direction = base.params.get("direction")
    fields = KINDS[spec.kind].params.model_fields
    if direction and "direction" in fields and "direction" not in _given(detector):
        choices = fields["direction"].annotation.__args__  # type: ignore[union-attr]
        if direction in choices:
            params = {**_given(detector), "direction": direction}
            return spec.model_copy(
                update={"params": DetectorSpec(kind=spec.kind, params=params).params}
            )
    return spec


def _given(detector: str) -> dict[str, Any]:
    _, _, rest = detector.partition(":")
    out = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, _, value = item.partition("=")
        if key.strip() not in _PERSISTENCE_FIELDS:
            out[key.strip()] = _literal(value.strip())
    return out


def as_arrays(
    t: Any, v: Any, volume: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    ta = np.asarray(t, dtype=float)
    va = np.asarray(
        [math.nan if x is None else x for x in v] if isinstance(v, list) else v, dtype=float
    )
    if ta.ndim != 1 or va.shape != ta.shape:
        raise ValueError(
            f"t and v must be 1-d arrays of the same length ({ta.shape} vs {va.shape})"
        )
    vol = None
    if volume is not None:
        vol = np.asarray(
            [math.nan if x is None else x for x in volume] if isinstance(volume, list) else volume,
            dtype=float,
        )
        if vol.shape != ta.shape:
            raise ValueError(f"volume must have the shape of t ({vol.shape} vs {ta.shape})")
        if not np.isfinite(vol).any():
            vol = None
    if len(ta):
        if not np.isfinite(ta).all():
            raise ValueError("timestamps must be finite")
        back = np.flatnonzero(np.diff(ta) < 0)
        if len(back):
            i = int(back[0]) + 1
            raise OrderError(f"timestamp at index {i} ({ta[i]!r}) is older than the one before it")
    return ta, va, vol


def rescore(spec: DetectorSpec, raw: Raw) -> np.ndarray:
    """Scores of a kernel's statistic under this spec's threshold (what the kernel would
    have scored), without running the kernel again."""
    info = KINDS[spec.kind]
    tau = info.tau(spec.params)
    strength = raw.strength
    if spec.kind in ("static", "ratio"):
        thr = float(spec.params["threshold"])
        scale = abs(thr) / 4 if thr != 0 else 1.0
        with np.errstate(invalid="ignore"):
            score = margin_score_array(np.where(raw.judged, strength, np.nan), tau, scale)
    else:
        score = ratio_score_array(strength, tau)
    return np.where(raw.judged, score, 0.0)


def raw_batch(spec: DetectorSpec, t: np.ndarray, v: np.ndarray, volume: np.ndarray | None) -> Raw:
    raw = KINDS[spec.kind].batch(spec.params, t, v, volume)
    if spec.prior is not None:
        raw = guarded_batch(raw, KINDS[spec.prior.kind].batch(spec.prior.params, t, v, volume))
    return raw


def evaluate(spec: DetectorSpec, t: Any, v: Any, volume: Any = None) -> BatchResult:
    """The verdicts `run(build_detector(spec), observations)` would give, as arrays, in one
    vectorised pass. v: NaN (or None in a list) = no data; volume optional."""
    ta, va, vol = as_arrays(t, v, volume)
    raw = raw_batch(spec, ta, va, vol)
    return finish(spec, ta, va, raw)


def finish(
    spec: DetectorSpec, t: np.ndarray, v: np.ndarray, raw: Raw, anomalous: np.ndarray | None = None
) -> BatchResult:
    anom = raw.anomalous if anomalous is None else anomalous
    firing = persist_batch(spec.persistence, t, anom)
    return BatchResult(
        t=t,
        value=v,
        score=raw.score,
        anomalous=anom,
        firing=firing,
        no_data=raw.no_data,
        expected=raw.expected,
        lower=raw.lower,
        upper=raw.upper,
        strength=raw.strength,
        judged=raw.judged,
    )
