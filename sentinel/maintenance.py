"""The leader's timed jobs: history retention, and the weekly re-tune that
proposes new thresholds for a person to accept, never applying them itself."""

from __future__ import annotations

from common.logs import get_logger
from sentinel import tunings
from sentinel.operations import tune_signal
from sentinel.service import Sentinel

log = get_logger(__name__)

RETUNE_DAYS = 30


def apply_retention(sentinel: Sentinel) -> dict[str, int]:
    s = sentinel.settings
    now = sentinel.clock.now()
    deleted = sentinel.history.apply_retention(now, s.raw_retention_days, s.rollup_retention_days)
    return {**deleted, "pushed": sentinel.push.prune(now)}


def propose_retunes(sentinel: Sentinel) -> int:
    """Re-tune every tuned signal on its latest month; record a proposal where
    the chosen parameters differ from the applied ones."""
    proposals = 0
    current = tunings.applied(sentinel.db)
    for signal in sorted({name for name, _ in current}):
        budget = next(
            t.provenance.get("budget_per_week", 1.0)
            for (name, _), t in current.items()
            if name == signal
        )
        try:
            tuned = tune_signal(sentinel, signal, RETUNE_DAYS, budget, apply=False, by="retune")
        except (KeyError, LookupError, ValueError) as exc:
            log.warning("retune.skipped", signal=signal, reason=str(exc))
            continue
        for item in tuned:
            applied = current.get((signal, item.series))
            if applied is not None and applied.spec == item.result.spec.model_dump(mode="json"):
                tunings.decide(
                    sentinel.db, item.tuning_id, accept=False, by="retune", now=sentinel.clock.now()
                )  # unchanged: nothing to propose
                continue
            proposals += 1
            log.warning(
                "retune.proposed", signal=signal, series=item.series, tuning_id=item.tuning_id
            )
    return proposals
