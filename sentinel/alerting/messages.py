"""The words of a group notification: SMS-sized, most important first."""

from __future__ import annotations

from sentinel.alerting.models import AlertGroup, GroupState
from sentinel.models import Alert

MAX_TEXT = 900  # a few SMS segments; a phone call reads this aloud


def group_subject(group: AlertGroup, live: list[Alert]) -> str:
    where = ",".join(f"{k}={v}" for k, v in group.labels.items() if v)
    state = _state_word(group, live)
    return f"[{group.severity}] {group.route}{{{where}}} {state}"


def group_text(group: AlertGroup, live: list[Alert], muted: dict[int, str]) -> str:
    """``live``: the group's firing alerts that are not muted."""
    if group.state is GroupState.resolved:
        text = f"RESOLVED: {group_subject(group, live)}."
    elif not live:
        text = f"{group_subject(group, live)}: all alerts muted."
    elif len(live) == 1:
        text = live[0].summary
    else:
        others = ", ".join(_name(a) for a in live[1:6])
        more = f" and {len(live) - 6} more" if len(live) > 6 else ""
        text = f"{len(live)} alerts firing. {live[0].summary} Also: {others}{more}."
    if group.acked_by and group.state is not GroupState.resolved:
        text += f" Acknowledged by {group.acked_by}."
    if muted:
        reasons = sorted(set(muted.values()))
        text += f" {len(muted)} muted ({'; '.join(reasons[:2])})."
    if group.reopened and group.state is not GroupState.resolved:
        text += f" Re-fired {group.reopened}× after resolving (flapping)."
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def resolved_text(group: AlertGroup) -> str:
    return f"RESOLVED: {group_subject(group, [])}. No action needed."


def bundle_text(subjects: list[str]) -> str:
    head = f"{len(subjects)} more alert notifications: "
    body = "; ".join(subjects[:8])
    tail = f"; and {len(subjects) - 8} more" if len(subjects) > 8 else ""
    return (head + body + tail)[:MAX_TEXT]


def _name(alert: Alert) -> str:
    series = alert.series
    return f"{alert.signal}{{{series}}}" if series else alert.signal


def _state_word(group: AlertGroup, live: list[Alert]) -> str:
    if group.state is GroupState.resolved:
        return "RESOLVED"
    if group.state is GroupState.acknowledged:
        return "ACKNOWLEDGED"
    return "FIRING" if live else "MUTED"
