"""Releases whose gate died (killed mid-canary, left as a zombie, machine
lost) are found and put right: the canary goes back to the previous version
and the release is recorded as aborted; a release killed while promoting
finishes its promotion, since the judge had already said yes. This runs on
the next ``deploy`` of the service and on ``release-gate recover``.

A release is abandoned when its owner's heartbeat (``release_gate.heartbeat``)
is older than ``stale_after_seconds`` by the database's clock, wherever the
owner ran. Taking one over is a conditional UPDATE on the owner, so two
recoverers never both act on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from common.db_clock import database_now
from common.logs import get_logger, log_context
from release_gate.deployers.base import DeployError
from release_gate.heartbeat import owner_is_alive
from release_gate.models import IN_FLIGHT, Release, ReleaseStatus
from release_gate.receipts import EXIT_INFRASTRUCTURE, EXIT_PROMOTED, Receipt

if TYPE_CHECKING:
    from release_gate.service import ReleaseGate

log = get_logger(__name__)


def abandoned_releases(gate: ReleaseGate, service: str | None = None) -> list[Release]:
    """Releases in flight whose owner stopped beating."""
    return [release for release, _ in silent_releases(gate, service)]


def silent_releases(
    gate: ReleaseGate, service: str | None = None
) -> list[tuple[Release, float | None]]:
    """Abandoned releases with how long their owner has been silent (seconds by the
    database's clock; None for one nobody owns, after a failed recovery)."""
    stmt = select(Release).where(Release.status.in_(IN_FLIGHT)).order_by(Release.id)
    if service is not None:
        stmt = stmt.where(Release.service == service)
    with gate.db.sessions() as session:
        now = database_now(session)
        rows = list(session.execute(stmt).scalars())
    silent = []
    for release in rows:
        # A row from before heartbeats existed has only its last write to go by.
        stamp = release.owner_heartbeat_at or release.heartbeat_at
        if release.owner is None:
            silent.append((release, None))
        elif not owner_is_alive(stamp, now, gate.stale_after_seconds):
            silent.append((release, (now - stamp).total_seconds()))
    return silent


def recover_abandoned(gate: ReleaseGate, service: str | None = None) -> list[Receipt]:
    receipts = []
    for release in abandoned_releases(gate, service):
        receipt = recover_release(gate, release)
        if receipt is not None:
            receipts.append(receipt)
    return receipts


def _take_over(gate: ReleaseGate, release: Release) -> bool:
    with gate.db.session() as session:
        result = session.execute(
            update(Release)
            .where(
                Release.id == release.id,
                Release.status.in_(IN_FLIGHT),
                Release.owner.is_(None)
                if release.owner is None
                else Release.owner == release.owner,
            )
            .values(
                owner=gate.owner,
                heartbeat_at=gate.clock.now(),
                owner_heartbeat_at=database_now(session),
            )
        )
        taken = bool(result.rowcount)  # type: ignore[attr-defined]
    if taken:
        gate.keep_beating()  # a slow rollback must not look abandoned in turn
    return taken


def recover_release(gate: ReleaseGate, release: Release) -> Receipt | None:
    """Put one abandoned release right; None if another recoverer took it first."""
    if not _take_over(gate, release):
        return None
    with log_context(release_id=release.id, service=release.service):
        log.warning("release.abandoned", status=release.status.value, owner=release.owner)
        gate._update(
            release.id, "recovery", {"dead_owner": release.owner, "found_in": release.status.value}
        )
        deployer = gate.deployer_for(release.service)
        try:
            if release.status == ReleaseStatus.promoting:
                deployer.promote(release.service, release.version)
                return gate._close(
                    release.id,
                    ReleaseStatus.promoted,
                    EXIT_PROMOTED,
                    "promoted",
                    f"The gate stopped while promoting; recovery finished the promotion of "
                    f"{release.version}.",
                    "info",
                )
            previous = release.previous_version
            if release.status == ReleaseStatus.started and previous is None:
                previous = deployer.current_version(release.service)  # production is untouched
            deployer.rollback_canary(release.service, previous)
        except DeployError as exc:
            # Ownerless again, so the next call (even from this process) retries.
            gate._update(
                release.id,
                "recovery_failed",
                {"error": str(exc)},
                owner=None,
                owner_heartbeat_at=None,
            )
            log.error("release.recovery_failed", error=str(exc))
            raise
        gate._update(
            release.id,
            "canary_reverted",
            {"to": previous},
            previous_version=previous,
            rolled_back_at=gate.clock.now(),
            decision="aborted",
        )
        why = (
            f"the gate running it ({release.owner}) stopped during {release.status.value}; "
            f"the canary was put back on {previous or 'the previous version'}"
        )
        return gate._close(
            release.id,
            ReleaseStatus.aborted,
            EXIT_INFRASTRUCTURE,
            "aborted",
            f"Aborted: {why}.",
            "warning",
            error=why,
        )
