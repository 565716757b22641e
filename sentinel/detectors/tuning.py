"""Choosing a threshold from the signal's own history (Citymobil's method, automated):
replay the past weeks, see what each candidate threshold would have done, and keep the
most sensitive one that would have paged no more than the budget outside the known
incidents while catching them as early as possible.

The detector's statistic (`strength`) is computed once; each candidate threshold is then
a comparison over the few steps that come near it, so hundreds of candidates cost less
than one evaluation. The figures reported are those of the chosen spec, evaluated
exactly (`evaluate`), not of the sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .base import BatchResult, Observation
from .spec import (
    KINDS,
    DetectorSpec,
    SignalKind,
    as_arrays,
    finish,
    raw_batch,
    rescore,
    spec_for,
)

WEEK = 7 * 86400.0
ENGINE_KINDS = {"auto", "seasonal", "level_shift"}
ENGINE_LADDER = (3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0)
PERSIST_CANDIDATES = (1, 2, 3)  # m consecutive anomalous steps


class Incident(BaseModel):
    start: float
    end: float


class IncidentOutcome(BaseModel):
    start: float
    end: float
    caught: bool
    first_alert: float | None = None  # first firing step inside the incident
    delay_seconds: float | None = None  # first_alert - start


class WouldBeAlert(BaseModel):
    start: float  # first firing step
    end: float  # last firing step
    peak_value: float | None
    peak_score: float
    inside_incident: bool


class Provenance(BaseModel):
    data_start: float
    data_end: float
    samples: int
    samples_with_data: int
    judged_from: float | None  # first step the detector gave a verdict (after warm-up)
    weeks_judged: float
    budget_per_week: float
    incidents: list[Incident]
    signal_kind: str | None
    detector: str
    sensitivity: str  # the parameter tuned
    candidates_tried: int
    tuned_at_data_end: str  # ISO time of the last sample: "as of" for the alert text


class BacktestCounts(BaseModel):
    alerts_total: int
    alerts_outside_incidents: int
    false_alerts_per_week: float
    incidents_caught: int
    incidents_missed: int
    median_delay_seconds: float | None
    within_budget: bool


class TuningResult(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: DetectorSpec
    provenance: Provenance
    backtest: BacktestCounts
    incidents: list[IncidentOutcome]
    alerts: list[WouldBeAlert]
    notes: list[str] = Field(default_factory=list)  # trade-offs, what had to be given up


# --- episodes and incidents ---------------------------------------------------------------


def episodes(firing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last row of each contiguous run of firing steps (an alert)."""
    f = firing.astype(np.int8)
    d = np.diff(f, prepend=0, append=0)
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1


def _merge(incidents: list[tuple[float, float]]) -> np.ndarray:
    if not incidents:
        return np.zeros((0, 2))
    iv = np.array(sorted((min(a, b), max(a, b)) for a, b in incidents), dtype=float)
    out = [iv[0].tolist()]
    for a, b in iv[1:]:
        if a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return np.array(out)


def _overlaps(iv: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """For each span [t0, t1], does it overlap any merged interval?"""
    if len(iv) == 0:
        return np.zeros(len(t0), bool)
    # the last interval starting at or before t1 is the only candidate
    k = np.searchsorted(iv[:, 0], t1, side="right") - 1
    ok = k >= 0
    kk = np.maximum(k, 0)
    return ok & (iv[kk, 1] >= t0)


def _first_in(t: np.ndarray, rows: np.ndarray, a: float, b: float) -> float | None:
    """Time of the first of `rows` (sorted row indices) with a <= t <= b."""
    i = np.searchsorted(t[rows], a, side="left")
    if i < len(rows) and t[rows[i]] <= b:
        return float(t[rows[i]])
    return None


def outcome(
    t: np.ndarray, v: np.ndarray, result: BatchResult, incidents: list[tuple[float, float]]
) -> tuple[list[WouldBeAlert], list[IncidentOutcome]]:
    """The would-be alerts of a batch result and what they did for each incident."""
    iv = _merge(incidents)
    s, e = episodes(result.firing)
    inside = _overlaps(iv, t[s], t[e])
    alerts = []
    score = result.score
    for a, b, ins in zip(s.tolist(), e.tolist(), inside.tolist(), strict=True):
        seg = score[a : b + 1]
        j = a + int(np.argmax(seg))
        val = v[j]
        alerts.append(
            WouldBeAlert(
                start=float(t[a]),
                end=float(t[b]),
                peak_value=None if val != val else float(val),
                peak_score=float(score[j]),
                inside_incident=bool(ins),
            )
        )
    rows = np.flatnonzero(result.firing)
    outs = []
    for a, b in sorted((min(x, y), max(x, y)) for x, y in incidents):
        first = _first_in(t, rows, a, b)
        outs.append(
            IncidentOutcome(
                start=a,
                end=b,
                caught=first is not None,
                first_alert=first,
                delay_seconds=None if first is None else first - a,
            )
        )
    return alerts, outs


# --- the sweep ------------------------------------------------------------------------------


class _Sweep:
    """Candidate thresholds evaluated on the steps whose strength reaches the lowest one."""

    def __init__(
        self,
        t: np.ndarray,
        strength: np.ndarray,
        iv: np.ndarray,
        incidents: list[tuple[float, float]],
        tau_min: float,
    ) -> None:
        s = np.where(np.isnan(strength), -np.inf, strength)
        self.rows = np.flatnonzero(s >= tau_min)
        self.s = s[self.rows]
        self.t = t
        self.iv = iv
        self.incidents = sorted((min(a, b), max(a, b)) for a, b in incidents)

    def run(self, tau: float, m: int) -> tuple[int, int, float]:
        """(false alerts, incidents caught, total delay of caught ones) for m consecutive
        steps at or above tau."""
        a = self.rows[self.s >= tau]
        if len(a) == 0:
            return 0, 0, 0.0
        brk = np.flatnonzero(np.diff(a) > 1)
        rs = np.concatenate([[a[0]], a[brk + 1]])
        re = np.concatenate([a[brk], [a[-1]]])
        keep = (re - rs + 1) >= m
        fs = rs[keep] + (m - 1)  # first firing row of each alert
        fe = re[keep]
        t = self.t
        inside = _overlaps(self.iv, t[fs], t[fe])
        false = int(np.count_nonzero(~inside))
        caught, delay = 0, 0.0
        for lo, hi in self.incidents:
            # alerts overlapping the incident; the first firing step at or after its start
            k = np.flatnonzero((t[fs] <= hi) & (t[fe] >= lo))
            if len(k) == 0:
                continue
            first = math.inf
            for j in k.tolist():
                if t[fs[j]] >= lo:
                    first = min(first, float(t[fs[j]]))
                else:
                    r = int(np.searchsorted(t, lo, side="left"))
                    first = min(first, float(t[max(r, fs[j])]))
            caught += 1
            delay += first - lo
        return false, caught, delay


def _candidates(
    kind: str, default_tau: float, strength: np.ndarray, peaks: list[float]
) -> list[float]:
    s = strength[np.isfinite(strength)]
    cands = {default_tau}
    if kind in ENGINE_KINDS:
        cands.update(ENGINE_LADDER)
    if len(s):
        # high quantiles (nearest rank) from the top tenth only: no full sort
        qs = 1.0 - np.geomspace(0.1, 1e-5, 12)
        k0 = int(0.9 * (len(s) - 1))
        top = np.sort(np.partition(s, k0)[k0:])
        cands.update(top[np.floor(qs * (len(s) - 1)).astype(np.int64) - k0].tolist())
        cands.add(float(top[-1]) * 1.0001 + 1e-12)
    cands.update(peaks)
    out = sorted(c for c in cands if math.isfinite(c))
    if kind in ENGINE_KINDS:
        out = [c for c in out if c >= ENGINE_LADDER[0]]
    if kind in ("time_to_breach", "burn_rate", "absence"):
        out = [c for c in out if c > 0]
    return out


def _base_spec(kind: Any, detector: str | DetectorSpec | None, v: np.ndarray) -> DetectorSpec:
    """The spec to tune. A threshold the tuning is about to choose need not be given:
    a provisional one (a high or low percentile of the values) stands in for it."""
    if isinstance(detector, DetectorSpec):
        return detector
    if detector is not None:
        name = detector.partition(":")[0].strip()
        info = KINDS.get(name)
        sens = info.sensitivity if info else None
        given = (
            {
                k.strip()
                for k, _, _ in (x.partition("=") for x in detector.split(":", 1)[1:][0].split(","))
            }
            if ":" in detector
            else set()
        )
        if info and sens not in given and info.params.model_fields[sens].is_required():
            x = v[np.isfinite(v)]
            below = "direction=below" in detector.replace(" ", "")
            guess = float(np.quantile(x, 0.01 if below else 0.99)) if len(x) else 0.0
            sep = "," if ":" in detector else ":"
            detector = f"{detector}{sep}{sens}={guess!r}"
    return spec_for(kind, detector)


def _to_arrays(data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if isinstance(data, tuple):
        return as_arrays(*data)
    obs: Sequence[Observation] = data
    t = [o.t for o in obs]
    v = [o.value for o in obs]
    vol = [o.volume for o in obs] if any(o.volume is not None for o in obs) else None
    return as_arrays(t, v, vol)


def tune(
    data: Sequence[Observation] | tuple[Any, ...],
    kind: SignalKind | str | None,
    incidents: list[tuple[float, float]],
    budget_per_week: float,
    detector: str | DetectorSpec | None = None,
) -> TuningResult:
    """Replay the history and choose the detector's sensitivity (its threshold parameter
    and how many consecutive anomalous steps make an alert).

    data: observations, or (t, v) / (t, v, volume) arrays. incidents: known (start, end)
    unix seconds. budget_per_week: alerts outside incidents per week allowed. detector:
    a DetectorSpec to start from (its other parameters are kept), a detector name or
    'name:key=value,...' (default: the product's default for `kind`).

    Choice, in order: within the budget; most incidents caught; earliest (least total
    delay); closest to the detector's default threshold; fewest steps of persistence.
    So without incidents the default stays if the history says it keeps to the budget,
    and moves only as far as it must to keep to it. If no candidate is within the budget,
    the quietest one is taken and the notes say so; if the chosen one misses incidents,
    the notes say what catching them would cost."""
    if budget_per_week < 0:
        raise ValueError("budget_per_week must be >= 0")
    t, v, vol = _to_arrays(data)
    if len(t) == 0:
        raise ValueError("no data to tune on")
    base = _base_spec(kind, detector, v)
    info = KINDS[base.kind]
    raw = raw_batch(base, t, v, vol)
    iv = _merge(incidents)
    judged_rows = np.flatnonzero(raw.judged)
    t_judged = float(t[judged_rows[0]]) if len(judged_rows) else None
    span = (float(t[-1]) - t_judged) if t_judged is not None else 0.0
    weeks = max(span, 86400.0) / WEEK

    strength = raw.strength
    peaks = []
    for a, b in iv.tolist():
        lo, hi = np.searchsorted(t, a, side="left"), np.searchsorted(t, b, side="right")
        seg = strength[lo:hi]
        seg = seg[np.isfinite(seg)]
        if len(seg):
            peaks.append(float(seg.max()))
    default_tau = info.tau(base.params)
    cands = _candidates(base.kind, default_tau, strength, peaks)
    sweep = _Sweep(t, strength, iv, incidents, min(cands) if cands else default_tau)
    n_inc = len(incidents)

    results = []  # (tau, m, false, caught, delay)
    for m in PERSIST_CANDIDATES:
        if m > 1 and any(
            r[1] == 1 and r[0] <= default_tau and r[3] == n_inc and r[2] / weeks <= budget_per_week
            for r in results
        ):
            break  # one step already does it: waiting for more only delays
        # from the most sensitive up to the default, then on to the first threshold
        # within the budget: higher ones catch no more, and no sooner
        for tau in cands:
            false, caught, delay = sweep.run(tau, m)
            results.append((tau, m, false, caught, delay))
            if false / weeks <= budget_per_week + 1e-12 and tau >= default_tau:
                break
    fpw = {(r[0], r[1]): r[2] / weeks for r in results}
    within = [r for r in results if fpw[(r[0], r[1])] <= budget_per_week + 1e-12]
    notes: list[str] = []
    rank = {c: i for i, c in enumerate(cands)}
    home = rank[default_tau]
    if within:
        # most incidents, earliest; then as close to the default as that allows (a
        # threshold no history has tested is a guess, in either direction)
        best = min(within, key=lambda r: (-r[3], r[4], abs(rank[r[0]] - home), r[1]))
    else:
        best = min(results, key=lambda r: (r[2], -r[3], r[4], -r[0], r[1]))
        notes.append(
            f"no candidate stays within {budget_per_week:g} alerts/week outside incidents; "
            f"the quietest fires {fpw[(best[0], best[1])]:.2g}/week"
        )
    tau, m = best[0], best[1]
    if best[3] < n_inc:
        full = [r for r in results if r[3] == n_inc]
        if full:
            cost = min(full, key=lambda r: (r[2], r[4], -r[0]))
            notes.append(
                f"to stay within the budget it misses {n_inc - best[3]} of {n_inc} incidents; "
                f"catching all would cost {fpw[(cost[0], cost[1])]:.2g} false alerts/week "
                f"({info.sensitivity}={_fmt(info.with_tau(base.params, cost[0]))}, "
                f"{cost[1]} consecutive steps)"
            )
        else:
            notes.append(
                f"{n_inc - best[3]} of {n_inc} incidents leave no trace this detector can "
                f"see at any threshold tried"
            )

    params = dict(base.params)
    params[info.sensitivity] = info.with_tau(base.params, tau)
    spec = base.model_copy(
        update={
            "params": DetectorSpec(kind=base.kind, params=params).params,
            "for_samples": m,
            "of_samples": None,
        }
    )
    # the figures of the chosen spec, exactly: same statistic, its own rule and persistence
    exact = info.sensitivity != "alpha"  # the count rule is a p-value, the sweep approximates it
    if exact:
        anomalous = raw.judged & (strength >= info.tau(spec.params))
        raw.score = rescore(spec, raw)
        result = finish(spec, t, v, raw, anomalous)
    else:
        result = finish(spec, t, v, raw_batch(spec, t, v, vol))
    alerts, outs = outcome(t, v, result, incidents)
    false = sum(1 for a in alerts if not a.inside_incident)
    caught = [o for o in outs if o.caught]
    delays = [o.delay_seconds for o in caught if o.delay_seconds is not None]
    backtest = BacktestCounts(
        alerts_total=len(alerts),
        alerts_outside_incidents=false,
        false_alerts_per_week=false / weeks,
        incidents_caught=len(caught),
        incidents_missed=len(outs) - len(caught),
        median_delay_seconds=float(np.median(delays)) if delays else None,
        within_budget=false / weeks <= budget_per_week + 1e-12,
    )
    prov = Provenance(
        data_start=float(t[0]),
        data_end=float(t[-1]),
        samples=len(t),
        samples_with_data=int(np.count_nonzero(np.isfinite(v))),
        judged_from=t_judged,
        weeks_judged=span / WEEK,
        budget_per_week=budget_per_week,
        incidents=[Incident(start=a, end=b) for a, b in incidents],
        signal_kind=None if kind is None else str(SignalKind(kind)),
        detector=base.kind,
        sensitivity=info.sensitivity,
        candidates_tried=len(results),
        tuned_at_data_end=datetime.fromtimestamp(float(t[-1]), UTC).isoformat(),
    )
    spec = spec.model_copy(
        update={
            "provenance": {
                "tuned_on": f"{_iso(t[0])} .. {_iso(t[-1])}",
                "budget_per_week": budget_per_week,
                "false_alerts_per_week": round(backtest.false_alerts_per_week, 3),
                "incidents_caught": f"{backtest.incidents_caught}/{len(outs)}",
            }
        }
    )
    return TuningResult(
        spec=spec, provenance=prov, backtest=backtest, incidents=outs, alerts=alerts, notes=notes
    )


def _iso(x: float) -> str:
    return datetime.fromtimestamp(float(x), UTC).strftime("%Y-%m-%d %H:%M")


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


# --- the chart ----------------------------------------------------------------------------


def plot_tuning(
    t: Any, v: Any, batch_result: BatchResult, tuning_result: TuningResult, path: Any
) -> None:
    """PNG of the history: values, the expected band, incidents shaded, would-be alerts
    marked (red: outside incidents, green: inside). `path` is a file path or a binary
    stream."""
    # the object API with the Agg canvas: no pyplot global state, safe in a server
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ta = np.asarray(t, dtype=float)
    va = np.asarray(v, dtype=float)
    x = (ta * 1000).astype("int64").astype("datetime64[ms]")
    fig = Figure(figsize=(14, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(x, va, lw=0.6, color="#1f4e79", label="value")
    lo, hi = batch_result.lower, batch_result.upper
    if np.isfinite(lo).any() or np.isfinite(hi).any():
        ax.fill_between(
            x,
            np.where(np.isfinite(lo), lo, np.nan),
            np.where(np.isfinite(hi), hi, np.nan),
            color="#f2b134",
            alpha=0.3,
            lw=0,
            label="expected band",
        )
    if np.isfinite(batch_result.expected).any():
        ax.plot(x, batch_result.expected, lw=0.5, color="#b07d12", alpha=0.8, label="expected")
    for inc in tuning_result.provenance.incidents:
        ax.axvspan(
            np.datetime64(int(inc.start), "s"),
            np.datetime64(int(inc.end), "s"),
            color="grey",
            alpha=0.25,
            lw=0,
        )
    for a in tuning_result.alerts:
        color = "#2e7d32" if a.inside_incident else "#c62828"
        ax.axvspan(
            np.datetime64(int(a.start), "s"),
            np.datetime64(int(max(a.end, a.start + 60)), "s"),
            color=color,
            alpha=0.35,
            lw=0,
        )
        if a.peak_value is not None:
            ax.plot([np.datetime64(int(a.start), "s")], [a.peak_value], "v", color=color, ms=6)
    b = tuning_result.backtest
    ax.set_title(
        f"{tuning_result.spec.describe()}\n"
        f"{b.alerts_total} alerts, {b.alerts_outside_incidents} outside incidents "
        f"({b.false_alerts_per_week:.2g}/week, budget "
        f"{tuning_result.provenance.budget_per_week:g}); incidents caught "
        f"{b.incidents_caught}/{b.incidents_caught + b.incidents_missed}",
        fontsize=9,
    )
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.2)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png")
