"""The words of a group notification, one form per medium:

- ``text``: one SMS line, most important first (severity, series, value,
  expected range, then the runbook's link), sized for one SMS segment;
- ``spoken``: the same facts for a phone call, written to be read aloud
  (no link, labels and numbers as words);
- ``detail``: the whole evidence for Slack: value and band, the detector and
  its reason, recent samples, since when, the runbook's first lines and link.

A notification's payload carries all three, so a page that falls back from
one channel to another (an undelivered SMS becomes a call) still speaks that
channel's words; ``text_for`` picks them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sentinel.alerting.gsm import septets, to_gsm
from sentinel.alerting.models import AlertGroup, GroupState
from sentinel.history import parse_series_key
from sentinel.models import Alert, AlertState
from sentinel.runbooks import runbook_url

# The SMS goal is one GSM-7 segment (160 septets); when long labels or a long
# runbook URL make that impossible the line is still cut at SMS_CAP characters
# (two segments), never more.
SMS_GOAL = 160
SMS_CAP = 300
DETAIL_CAP = 2900  # Slack renders at most 3000 characters in one section block
RUNBOOK_LINES = 12  # of the runbook quoted in Slack; the link has the rest
RUNBOOK_CHARS = 1200
OTHERS_LISTED = 10  # further alerts of a group named in Slack

# Which payload field each channel reads; the others read ``text``.
MEDIUM_FIELDS = {"voice": "spoken", "slack": "detail"}

_URL = re.compile(r"https?://\S+")
_SEVERITY = re.compile(r"^P(\d)$")


@dataclass(frozen=True)
class Words:
    text: str
    spoken: str
    detail: str

    def payload(self) -> dict[str, str]:
        return {"text": self.text, "spoken": self.spoken, "detail": self.detail}


def text_for(channel: str, payload: Mapping[str, Any]) -> str:
    """The words ``channel`` sends from a stored payload (older payloads and
    announcements have ``text`` only)."""
    field = MEDIUM_FIELDS.get(channel)
    return str((payload.get(field) if field else None) or payload.get("text", ""))


def group_subject(group: AlertGroup, live: list[Alert]) -> str:
    where = ",".join(f"{k}={v}" for k, v in group.labels.items() if v)
    state = _state_word(group, live)
    return f"[{group.severity}] {group.route}{{{where}}} {state}"


def group_words(
    group: AlertGroup,
    alerts: list[Alert],
    live: list[Alert],
    muted: dict[int, str],
    public_url: str | None,
) -> Words:
    """``alerts``: every member of the group; ``live``: its firing alerts
    that are not muted."""
    if group.state is GroupState.resolved:
        return resolved_words(group, alerts, public_url)
    if not live:
        text = f"{group_subject(group, live)}: all alerts muted."
        extra = _group_notes(group, muted)
        return Words(
            _cap_sms(to_gsm(text)),
            _say_sentence(text),
            _mrkdwn(text) + ("\n" + extra if extra else ""),
        )
    first = facts(live[0], public_url)
    more = len(live) - 1
    acked = group.acked_by if group.state is GroupState.acknowledged else None
    return Words(
        text=sms_line(first, more, acked),
        spoken=spoken_line(first, more, acked),
        detail=_detail(group, first, live[1:], muted),
    )


def resolved_words(group: AlertGroup, alerts: list[Alert], public_url: str | None) -> Words:
    if not alerts:
        subject = group_subject(group, [])
        text = f"RESOLVED: {subject}. No action needed."
        return Words(_cap_sms(to_gsm(text)), _say_sentence(text), _mrkdwn(text))
    first = facts(alerts[0], public_url)
    more = len(alerts) - 1
    tail = f" +{more} more" if more else ""
    text = _cap_sms(to_gsm(f"RESOLVED [{first.severity}] {first.series}{tail}. No action needed."))
    also = f" And {more} more alert{'s' if more > 1 else ''} of this group." if more else ""
    spoken = f"Resolved: {_say_severity(first.severity)} alert, {_say_series(first)}.{also}"
    lines = [f":white_check_mark: *Resolved*: `{_mrkdwn(first.series)}`" + _mrkdwn(tail)]
    if first.runbook_url:
        lines.append(f"Runbook: <{first.runbook_url}|{_mrkdwn(first.name)}>")
    return Words(text, spoken, "\n".join(lines))


def bundle_text(subjects: list[str]) -> str:
    head = f"{len(subjects)} more alert notifications: "
    body = "; ".join(subjects[:8])
    tail = f"; and {len(subjects) - 8} more" if len(subjects) > 8 else ""
    return _cap_sms(to_gsm(head + body + tail))


# ------------------------------------------------------------ one alert's facts


@dataclass(frozen=True)
class Facts:
    """What the words of one alert are made of, from its stored row."""

    severity: str
    name: str  # the signal, or Alertmanager's alertname
    labels: dict[str, str]  # the series' own labels
    state: AlertState
    value: float | None
    unit: str
    lower: float | None
    upper: float | None
    volume: float | None
    reason: str
    detector: str | None
    samples: list[float | None]
    started_at: datetime
    note: str  # Alertmanager's summary or description annotation
    source_url: str | None  # Alertmanager's generator URL
    provenance: dict[str, Any] | None
    runbook_text: str
    runbook_url: str | None

    @property
    def series(self) -> str:
        where = ",".join(f"{k}={v}" for k, v in self.labels.items())
        return f"{self.name}{{{where}}}" if where else self.name


def facts(alert: Alert, public_url: str | None) -> Facts:
    evidence = alert.evidence or {}
    labels = {k: v for k, v in parse_series_key(alert.series).items() if k != "severity"}
    detector = evidence.get("detector")
    annotations = evidence.get("annotations") or {}
    from_alertmanager = alert.source == "alertmanager"
    if from_alertmanager:
        # There the runbook is the rule's runbook_url annotation, a link already.
        link = alert.runbook if alert.runbook and _URL.fullmatch(alert.runbook) else None
        text = ""
    else:
        text = alert.runbook or ""
        link = runbook_url(public_url, alert.signal) if public_url and text else None
    value = evidence.get("value", alert.value)
    return Facts(
        severity=alert.severity,
        name=alert.signal,
        labels=labels,
        state=alert.state,
        value=value if isinstance(value, int | float) else None,
        unit=str(evidence.get("unit") or ""),
        lower=_number(evidence.get("lower")),
        upper=_number(evidence.get("upper")),
        volume=_number(evidence.get("volume")),
        reason=str(evidence.get("reason") or ""),
        detector=_detector_name(detector),
        samples=[_number(v) for v in evidence.get("samples") or []],
        started_at=alert.started_at,
        note=str(annotations.get("summary") or annotations.get("description") or ""),
        source_url=evidence.get("generator_url") or None,
        provenance=evidence.get("provenance") or None,
        runbook_text=text,
        runbook_url=link,
    )


# ------------------------------------------------------------------------- SMS


def sms_line(f: Facts, more: int = 0, acked_by: str | None = None) -> str:
    """One line: ``[P1] payments.failed_ratio{method=wallet} 0.71, expected <= 0.2
    +2 more https://…/runbooks/payments.failed_ratio``. What does not fit one
    segment is shortened, the least important first: the note, then the
    labels; the link is kept whole (a cut link opens nothing)."""
    # A link so long that it leaves no room for the facts is left to Slack.
    url = f.runbook_url if f.runbook_url and len(f.runbook_url) <= SMS_CAP - 80 else None
    fixed_tail = f" +{more} more" if more else ""
    fixed_tail += f" (acked by {acked_by})" if acked_by else ""
    head = to_gsm(f"[{f.severity}] {f.name}")
    labels = to_gsm(_braced(f.labels))
    state, note = _sms_state(f)
    state, note = to_gsm(state), to_gsm(note)
    tail = to_gsm(fixed_tail) + (f" {url}" if url else "")

    def line() -> str:
        return head + labels + " " + state + (f" {note}" if note else "") + tail

    if note and _cost(line()) > SMS_GOAL:
        note = _clip(note, len(note) - (_cost(line()) - SMS_GOAL), minimum=20)
    if labels and _cost(line()) > SMS_GOAL:
        inner = labels[1:-1]
        inner = _clip(inner, len(inner) - (_cost(line()) - SMS_GOAL), minimum=24)
        labels = "{" + inner + "}"
    text = line()
    if len(text) > SMS_CAP:
        keep = SMS_CAP - len(tail)
        text = _clip(text[: -len(tail)] if tail else text, keep, minimum=0) + tail
    return text


def _sms_state(f: Facts) -> tuple[str, str]:
    """The what-is-wrong part, and a note that may be shortened."""
    if f.state is AlertState.no_data:
        return f"NO DATA since {f.started_at:%H:%M} UTC", ""
    if f.value is None:  # Alertmanager: its own words instead of a value
        return "FIRING" + (":" if f.note else ""), _URL.sub("", f.note).strip()
    # GSM-7 has no "≤" or "–"; a negative lower bound reads better with "to".
    between = "{lo} to {hi}" if (f.lower or 0) < 0 else "{lo}-{hi}"
    band = _band(f, le="<=", ge=">=", between=between)
    value = _value(f)
    if band:
        return f"{value}, expected {band}", ""
    return value, f.reason


# ------------------------------------------------------------------- the call


def spoken_line(f: Facts, more: int = 0, acked_by: str | None = None) -> str:
    """The SMS line's facts as sentences a voice reads well."""
    parts = [f"{_say_severity(f.severity)} alert. {_say_series(f)}."]
    if f.state is AlertState.no_data:
        parts.append(f"No data since {f.started_at:%H:%M} UTC.")
    elif f.value is None:
        note = _say_sentence(f.note)
        if note:
            parts.append(note if note[-1] in ".!?" else note + ".")
    else:
        band = _spoken_band(f)
        parts.append(f"Value {_say_value(f, f.value)}" + (f", expected {band}." if band else "."))
    if more:
        parts.append(f"And {more} more alert{'s' if more > 1 else ''} in this group.")
    if acked_by:
        parts.append(f"Acknowledged by {_say(acked_by)}.")
    return " ".join(parts)


def _say_severity(severity: str) -> str:
    match = _SEVERITY.match(severity)
    return f"Priority {match.group(1)}" if match else _say(severity)


def _say_series(f: Facts) -> str:
    said = _say(f.name)
    if f.labels:
        said += ", " + ", ".join(f"{_say(k)} {_say(v)}" for k, v in f.labels.items())
    return said


def _say(word: str) -> str:
    """Identifiers as words: ``payments.failed_ratio`` → "payments failed ratio",
    ``/api/jobs`` → "api jobs"."""
    return " ".join(re.sub(r"[._/=:{}\[\]\"-]+", " ", word).split())


def _say_sentence(text: str) -> str:
    text = _URL.sub("", text)
    return " ".join(re.sub(r"[{}\[\]\"=_]+", " ", text).split())


def _say_value(f: Facts, value: float) -> str:
    if f.unit == "ratio" and 0 <= value <= 1:
        return f"{value * 100:.3g} percent"
    unit = {"s": "seconds", "ms": "milliseconds"}.get(f.unit, f.unit)
    return f"{_fmt(value)} {unit}".strip()


def _spoken_band(f: Facts) -> str:
    lo = _say_value(f, f.lower) if f.lower is not None else None
    hi = _say_value(f, f.upper) if f.upper is not None else None
    if lo and hi:
        return f"between {lo} and {hi}"
    if hi:
        return f"at most {hi}"
    if lo:
        return f"at least {lo}"
    return ""


# ---------------------------------------------------------------------- Slack


def _detail(group: AlertGroup, first: Facts, others: list[Alert], muted: dict[int, str]) -> str:
    """The first alert's evidence and runbook in full; the group's other alerts
    one line each, as many as the message has room for."""
    lines = [_headline(first), *_evidence_lines(first)]
    notes = _group_notes(group, muted)
    runbook = _runbook_lines(first)
    room = DETAIL_CAP - len("\n".join(lines)) - len(notes) - len(runbook) - 80
    if others:
        listed = [f"*{len(others)} more firing in this group:*"]
        for alert in others[:OTHERS_LISTED]:
            line = "• " + _mrkdwn(sms_line(facts(alert, None)))
            if len(line) + 1 > room:
                break
            listed.append(line)
            room -= len(line) + 1
        if len(listed) - 1 < len(others):
            listed.append(f"• and {len(others) - (len(listed) - 1)} more")
        lines.extend(listed)
    if notes:
        lines.append(notes)
    if runbook:
        lines.append(runbook)
    return _clip("\n".join(lines), DETAIL_CAP, minimum=0)


def _headline(f: Facts) -> str:
    state = "no data" if f.state is AlertState.no_data else f.state.value
    return (
        f"*{_mrkdwn(f.series)}* is *{state}* since {f.started_at:%Y-%m-%d %H:%M} UTC"
        f" ({f.severity})"
    )


def _evidence_lines(f: Facts) -> list[str]:
    lines: list[str] = []
    if f.value is not None:
        band = _band(f, le="≤", ge="≥", between="{lo}–{hi}")
        value = f"Value *{_mrkdwn(_value(f))}*" + (f", expected {_mrkdwn(band)}" if band else "")
        if f.volume is not None:
            value += f" (out of {_fmt(f.volume)})"
        lines.append(value)
    if f.reason:
        # The reason itself says which judged (the learned band or the prior guard).
        judge = f"Detector *{_mrkdwn(f.detector)}*" if f.detector else "Detector"
        lines.append(f"{judge}: {_mrkdwn(f.reason)}")
    if f.note:
        lines.append(_mrkdwn(_clip(f.note, 600, minimum=0)))
    if f.samples:
        shown = ", ".join("–" if s is None else _fmt(s) for s in f.samples)
        lines.append(f"Recent samples (oldest first): {_mrkdwn(shown)}")
    p = f.provenance
    if p:
        lines.append(
            f"Threshold tuned {str(p.get('tuned_at', '?'))[:10]} on {p.get('days', '?')} days:"
            f" ~{p.get('false_alerts_per_week', '?')} false alerts/week"
        )
    if f.source_url:
        lines.append(f"Source: <{f.source_url}|Prometheus>")
    return lines


def _runbook_lines(f: Facts) -> str:
    if not f.runbook_text and not f.runbook_url:
        return ""
    head = "*Runbook*"
    if f.runbook_url:
        head += f": <{f.runbook_url}|{_mrkdwn(f.name)}>"
    body = [line.rstrip() for line in f.runbook_text.strip().splitlines() if line.strip()]
    excerpt = body[:RUNBOOK_LINES]
    quoted = "\n".join("> " + _mrkdwn(line) for line in excerpt)
    if len(quoted) > RUNBOOK_CHARS:
        quoted = _clip(quoted, RUNBOOK_CHARS, minimum=0)
    if len(body) > len(excerpt) or len(quoted) >= RUNBOOK_CHARS:
        quoted += "\n> …" + (" (the rest at the link)" if f.runbook_url else "")
    return head + ("\n" + quoted if quoted else "")


def _group_notes(group: AlertGroup, muted: dict[int, str]) -> str:
    notes = []
    if group.acked_by and group.state is not GroupState.resolved:
        notes.append(f"Acknowledged by {_mrkdwn(group.acked_by)}.")
    if muted:
        reasons = sorted(set(muted.values()))
        notes.append(f"{len(muted)} muted ({_mrkdwn('; '.join(reasons[:2]))}).")
    if group.reopened and group.state is not GroupState.resolved:
        notes.append(f"Re-fired {group.reopened}× after resolving (flapping).")
    return " ".join(notes)


# ------------------------------------------------------------------- helpers


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _value(f: Facts) -> str:
    assert f.value is not None
    unit = f" {f.unit}" if f.unit and f.unit != "ratio" else ""
    return _fmt(f.value) + unit


def _band(f: Facts, *, le: str, ge: str, between: str) -> str:
    if f.lower is not None and f.upper is not None:
        return between.format(lo=_fmt(f.lower), hi=_fmt(f.upper))
    if f.upper is not None:
        return f"{le} {_fmt(f.upper)}"
    if f.lower is not None:
        return f"{ge} {_fmt(f.lower)}"
    return ""


def _braced(labels: Mapping[str, str]) -> str:
    where = ",".join(f"{k}={v}" for k, v in labels.items())
    return "{" + where + "}" if where else ""


def _detector_name(spec: Any) -> str | None:
    """``auto``, or ``auto + prior`` where a prior guards it (the evidence's
    detector is the spec the series runs)."""
    if not isinstance(spec, dict) or not spec.get("kind"):
        return None
    return str(spec["kind"]) + (" + prior" if spec.get("prior") else "")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _cost(text: str) -> int:
    """Septets in GSM-7; characters when the text needs UCS-2 anyway."""
    count = septets(text)
    return len(text) if count is None else count


def _clip(text: str, limit: int, minimum: int) -> str:
    limit = max(limit, minimum)
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)].rstrip() + "..."


def _cap_sms(text: str) -> str:
    return _clip(text, SMS_CAP, minimum=0)


def _mrkdwn(text: str) -> str:
    """Slack's three control characters in text that is not markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _state_word(group: AlertGroup, live: list[Alert]) -> str:
    if group.state is GroupState.resolved:
        return "RESOLVED"
    if group.state is GroupState.acknowledged:
        return "ACKNOWLEDGED"
    return "FIRING" if live else "MUTED"
