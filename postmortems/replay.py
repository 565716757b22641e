"""The detector rule (issue 6, seed 003 §6): would the signal an action item links to
have caught this incident, and how much earlier than it was detected?

The signal's detector (its applied tuning, else the catalogue's detector, else the
product's default for its kind: what the sentinel itself would run) is replayed over
the signal's stored samples with the same causal batch evaluation `sentinel backtest`
uses, starting a warm-up period before the incident window so the detector has learnt
the series' normal first. A verdict at any sample depends only on that sample and the
ones before it, so what the replay says is what the live sentinel would have done."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from common.clock import ensure_utc
from common.logs import get_logger
from sentinel.catalogue.models import Catalogue, SignalSpec
from sentinel.db import Database
from sentinel.detectors.spec import DetectorSpec, evaluate
from sentinel.engine import detector_spec_for
from sentinel.history import HistoryStore, Row, parse_series_key, series_key
from sentinel.models import Resolution, Tuning
from sentinel.tunings import applied

log = get_logger(__name__)


class ReplayError(ValueError):
    """The replay cannot run: unknown signal, bad window, unreadable catalogue."""


class ReplayResult(BaseModel):
    signal: str
    series: str | None  # the series that fired first (or the one asked for)
    would_have_fired: bool
    first_alert_at: datetime | None  # when the replayed alert would have started firing
    lead_seconds: float | None  # detected_at - first_alert_at: positive = earlier
    detector: str  # what ran, e.g. "count(alpha=0.0001, ...) from tuning #3"
    note: str  # one sentence for the incident page
    window_start: datetime | None = None
    window_end: datetime | None = None
    detected_at: datetime | None = None
    samples: int = 0  # samples replayed inside the window (all series)
    warmup_samples: int = 0  # samples before the window the detector learnt from
    series_replayed: int = 0
    peak_score: float | None = None  # the highest score inside the window
    resolution: str = "raw"  # "1h": replayed on hourly means, the raw samples had expired


def load_replay_catalogue() -> Catalogue:
    """The sentinel's configured catalogue, read once by callers that replay often."""
    return _catalogue(None)


def _catalogue(catalogue: Catalogue | str | Path | None) -> Catalogue:
    if isinstance(catalogue, Catalogue):
        return catalogue
    from sentinel.catalogue.loader import load_catalogue

    if catalogue is None:
        from sentinel.settings import SentinelSettings

        catalogue = SentinelSettings().catalogue
    try:
        return load_catalogue(catalogue)
    except Exception as exc:  # the loader names the file, line and field
        raise ReplayError(f"cannot read the signal catalogue: {exc}") from exc


def detector_for(
    spec: SignalSpec, series: str | None, tunings: dict[tuple[str, str], Tuning]
) -> tuple[DetectorSpec, str]:
    """The detector the sentinel runs on the series, and where it comes from."""
    detector, tuning = detector_spec_for(spec, series or "", tunings)
    if tuning is not None:
        return detector, f"tuning #{tuning.id}"
    if spec.detector is not None:
        return detector, "the catalogue"
    return detector, f"the default for {spec.kind.value} signals"


def replay_detector(
    sentinel_db: Database,
    signal: str,
    *,
    window_start: datetime,
    window_end: datetime,
    detected_at: datetime,
    series: str | None = None,
    catalogue: Catalogue | str | Path | None = None,
    warmup: timedelta | None = None,
) -> ReplayResult:
    """Replay ``signal`` over ``[window_start, window_end]``. ``series`` picks one series
    (``method="wallet"``, ``method=wallet`` or ``{method=wallet}``); None replays every
    series of the signal and reports the first to fire. ``warmup`` (default: the
    sentinel's ``history_warmup_days``) is how much history before the window the
    detector learns from. An alert already firing when the window opens counts from the
    start of that firing. Raises ReplayError for an unknown signal or an empty window."""
    window_start, window_end = ensure_utc(window_start), ensure_utc(window_end)
    detected_at = ensure_utc(detected_at)
    if window_end <= window_start:
        raise ReplayError(
            f"the window ends ({window_end.isoformat()}) before it starts "
            f"({window_start.isoformat()})"
        )
    try:
        spec = _catalogue(catalogue).get(signal)
    except KeyError as exc:
        raise ReplayError(exc.args[0]) from None
    if warmup is None:
        from sentinel.settings import SentinelSettings

        warmup = timedelta(days=SentinelSettings().history_warmup_days)
    key = None if series is None else canonical_series(series)

    history = HistoryStore(sentinel_db)
    span = {"since": window_start - warmup, "until": window_end + _EPSILON}
    resolution = Resolution.raw
    rows = history.load(signal, series=key, **span)
    if not any(r.t >= window_start for r in rows):
        # Raw samples expire (SENTINEL_RAW_RETENTION_DAYS): an old incident is replayed on
        # the hourly means kept after them, and the note says so.
        hourly = history.load(signal, series=key, resolution=Resolution.hour, **span)
        if any(r.t >= window_start for r in hourly):
            rows, resolution = hourly, Resolution.hour
    by_series: dict[str, list[Row]] = {}
    for row in rows:
        by_series.setdefault(row.series, []).append(row)
    tunings = applied(sentinel_db)
    replays: list[_SeriesReplay] = []
    for name, series_rows in sorted(by_series.items()):
        detector, source = detector_for(spec, name, tunings)
        replays.append(
            _replay_series(detector, source, name, series_rows, window_start, window_end)
        )
    if not replays:
        detector, source = detector_for(spec, key, tunings)
        detector_text = f"{detector.describe()} from {source}"
    else:
        detector_text = replays[0].detector
    fired = sorted((r for r in replays if r.first_alert_at is not None), key=_fired)
    scores = [r.peak_score for r in replays if r.peak_score is not None]
    result = ReplayResult(
        signal=signal,
        series=fired[0].series if fired else (key if len(replays) != 1 else replays[0].series),
        would_have_fired=bool(fired),
        first_alert_at=_fired(fired[0]) if fired else None,
        lead_seconds=(detected_at - _fired(fired[0])).total_seconds() if fired else None,
        detector=fired[0].detector if fired else detector_text,
        note="",
        window_start=window_start,
        window_end=window_end,
        detected_at=detected_at,
        samples=sum(r.samples for r in replays),
        warmup_samples=sum(r.warmup_samples for r in replays),
        series_replayed=len(replays),
        peak_score=max(scores) if scores else None,
        resolution=resolution.value,
    )
    result.note = _note(result, replays, warmup)
    log.info(
        "postmortem.replay",
        signal=signal,
        series=result.series,
        would_have_fired=result.would_have_fired,
        lead_seconds=result.lead_seconds,
        samples=result.samples,
        detector=result.detector,
    )
    return result


def _note(result: ReplayResult, replays: list[_SeriesReplay], warmup: timedelta) -> str:
    assert result.window_start is not None and result.window_end is not None
    span = f"between {_hm(result.window_start)} and {_hm(result.window_end)}"
    if result.samples == 0:
        what = f"{result.signal}{{{_labels(result.series)}}}" if result.series else result.signal
        return f"no stored samples of {what} {span}: nothing to replay"
    learning = _warmup_note(replays, warmup)
    if result.resolution != Resolution.raw.value:
        learning += " (on hourly means: the raw samples of that time have expired)"
    if result.first_alert_at is None or result.lead_seconds is None:
        many = f" (none of {len(replays)} series)" if len(replays) > 1 else ""
        score = f"; its highest score was {result.peak_score:.2f}" if result.peak_score else ""
        return f"{result.signal} would not have fired{many} {span}{score}{learning}"
    assert result.detected_at is not None
    lead = result.lead_seconds
    when = "before" if lead >= 0 else "after"
    already = (
        " (already firing when the window opened)"
        if result.first_alert_at < result.window_start
        else ""
    )
    where = f"{{{_labels(result.series)}}}" if result.series else ""
    return (
        f"{result.signal}{where} would have fired at {_hm(result.first_alert_at)}{already}, "
        f"{_duration(abs(lead))} {when} detection at {_hm(result.detected_at)}{learning}"
    )


def canonical_series(text: str) -> str:
    """The stored series key for ``method="wallet"``, ``method=wallet`` or
    ``{method=wallet,route=/x}`` ("" for none)."""
    inner = text.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    if not inner:
        return ""
    if '="' in inner:
        return series_key(parse_series_key(inner))
    labels: dict[str, str] = {}
    for part in inner.split(","):
        name, eq, value = part.partition("=")
        if not eq or not name.strip():
            raise ReplayError(f"series {text!r}: use label=value pairs, e.g. method=wallet")
        labels[name.strip()] = value.strip()
    return series_key(labels)


_EPSILON = timedelta(microseconds=1)  # HistoryStore.load's end is exclusive


class _SeriesReplay(BaseModel):
    series: str
    detector: str
    first_alert_at: datetime | None
    samples: int
    warmup_samples: int
    warmup_covered: timedelta
    peak_score: float | None


def _replay_series(
    detector: DetectorSpec,
    source: str,
    series: str,
    rows: list[Row],
    window_start: datetime,
    window_end: datetime,
) -> _SeriesReplay:
    t = np.array([r.t.timestamp() for r in rows], dtype=float)
    v = np.array([np.nan if r.value is None else r.value for r in rows], dtype=float)
    vol = np.array([np.nan if r.volume is None else r.volume for r in rows], dtype=float)
    result = evaluate(detector, t, v, vol)
    inside = (t >= window_start.timestamp()) & (t <= window_end.timestamp())
    firing = np.asarray(result.firing, dtype=bool)
    first_alert_at = None
    hits = np.flatnonzero(inside & firing)
    if len(hits):
        i = int(hits[0])
        while i > 0 and firing[i - 1]:  # an alert already firing: count from its start
            i -= 1
        first_alert_at = rows[i].t
    window_scores = np.asarray(result.score, dtype=float)[inside]
    finite = window_scores[np.isfinite(window_scores)]
    warmup_rows = [r for r in rows if r.t < window_start]
    return _SeriesReplay(
        series=series,
        detector=f"{detector.describe()} from {source}",
        first_alert_at=first_alert_at,
        samples=int(inside.sum()),
        warmup_samples=len(warmup_rows),
        warmup_covered=(window_start - warmup_rows[0].t) if warmup_rows else timedelta(0),
        peak_score=float(finite.max()) if len(finite) else None,
    )


def _fired(replay: _SeriesReplay) -> datetime:
    assert replay.first_alert_at is not None
    return replay.first_alert_at


def _warmup_note(replays: list[_SeriesReplay], asked: timedelta) -> str:
    covered = min((r.warmup_covered for r in replays), default=timedelta(0))
    if covered >= asked * 0.9:
        return ""
    return (
        f" (only {_duration(covered.total_seconds())} of history before the window, "
        f"{_duration(asked.total_seconds())} asked: the detector may still have been learning)"
    )


def _labels(series: str) -> str:
    return ",".join(f"{k}={v}" for k, v in parse_series_key(series).items())


def _hm(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
