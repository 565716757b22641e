"""What the console shows of the release gate: its releases and each one's receipt, and
the canary-against-control series the judge read, as chart columns."""

from __future__ import annotations

from typing import Any

from release_gate.db import Database
from release_gate.history import ReleaseSummary, recent_releases
from release_gate.models import Release
from release_gate.receipts import Receipt


class ReleaseReader:
    def __init__(self, db: Database) -> None:
        self.db = db

    def recent(self, limit: int = 20) -> list[ReleaseSummary]:
        return recent_releases(self.db, limit=limit)

    def receipt(self, release_id: int) -> Receipt | None:
        with self.db.sessions() as s:
            release = s.get(Release, release_id)
            return Receipt.of(release) if release is not None else None


def canary_chart(receipt: Receipt) -> dict[str, Any] | None:
    """Error rate per interval between readings, canary against control, over the seconds
    of the canary's life (each reading is cumulative); p95 latency where it was read.
    None when the judge read nothing."""
    samples = receipt.samples or {}
    canary, control = samples.get("canary") or [], samples.get("control") or []
    if not canary:
        return None
    times = [float(s["t"]) for s in canary]
    columns: list[list[float | None]] = [times, _rates(canary), _rates(control, len(times))]
    labels = ["canary error rate", "control error rate"]
    if any(s.get("latency_p95_ms") is not None for s in canary):
        columns += [
            [s.get("latency_p95_ms") for s in canary],
            [s.get("latency_p95_ms") for s in control[: len(times)]]
            + [None] * (len(times) - len(control)),
        ]
        labels += ["canary p95 ms", "control p95 ms"]
    verdict = receipt.verdict or {}
    return {
        "columns": columns,
        "labels": labels,
        "decided_at": verdict.get("decided_at"),
        "decision": receipt.decision,
    }


def _rates(rows: list[dict[str, Any]], length: int | None = None) -> list[float | None]:
    """Errors / requests over each interval between two cumulative readings."""
    out: list[float | None] = []
    prev_req = prev_err = 0
    for row in rows:
        req, err = int(row["requests"]), int(row["errors"])
        d_req, d_err = req - prev_req, err - prev_err
        out.append(d_err / d_req if d_req > 0 else None)
        prev_req, prev_err = req, err
    if length is not None:
        out = (out + [None] * length)[:length]
    return out
