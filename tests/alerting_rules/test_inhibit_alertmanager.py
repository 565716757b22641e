"""Our inhibition decides like a real Alertmanager (Debian's package) given the same
rules and firing alerts: which alerts are muted, and by which source."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from sentinel.alerting.inhibit import InhibitRule, inhibited_by
from tests.alertmanager_server import alertmanager_server

RULES = [
    {
        "source_matchers": ['signal="database.down"'],
        "target_matchers": ['signal!="database.down"'],
        "equal": ["service"],
    },
    # Missing on both sides counts as equal.
    {
        "source_matchers": ['severity="P0"'],
        "target_matchers": ['severity="P3"'],
        "equal": ["cluster"],
    },
    # Two-sided: a P0/P1 never mutes another P0/P1, only P2s.
    {
        "source_matchers": ['severity=~"P0|P1"'],
        "target_matchers": ['severity=~"P0|P1|P2"'],
        "equal": ["team"],
    },
]
ALERTS = [
    {"signal": "database.down", "service": "payments", "severity": "P0"},
    {"signal": "payments.failed", "service": "payments", "severity": "P1"},
    {"signal": "payments.failed", "service": "billing", "severity": "P1"},
    {"signal": "disk.full", "severity": "P3"},
    {"signal": "disk.full", "severity": "P3", "cluster": "eu"},
    {"signal": "queue.lag", "team": "core", "severity": "P1"},
    {"signal": "http.500", "team": "core", "severity": "P0"},
    {"signal": "empty.lists", "team": "core", "severity": "P2"},
    {"signal": "empty.lists", "team": "web", "severity": "P2"},
    {"signal": "slow.pages", "severity": "P2"},  # no team, like the P0 and P1s above
]


def test_inhibition_agrees_with_alertmanager() -> None:
    config = {
        "route": {"receiver": "null", "group_by": ["signal"]},
        "receivers": [{"name": "null"}],
        "inhibit_rules": RULES,
    }
    rules = [InhibitRule.model_validate(r) for r in RULES]
    ours: dict[str, str | None] = {}
    for labels in ALERTS:
        found = inhibited_by(labels, ALERTS, rules)
        ours[json.dumps(labels, sort_keys=True)] = (
            None if found is None else json.dumps(dict(found[1]), sort_keys=True)
        )
    assert sum(v is not None for v in ours.values()) == 4  # the table is not trivial

    with alertmanager_server(json.dumps(config)) as am:
        now = datetime.now(UTC)
        am.post_alerts(
            [{"labels": labels, "startsAt": now - timedelta(minutes=1)} for labels in ALERTS]
        )

        def theirs() -> dict[str, str | None]:
            listed = am.alerts()
            by_fingerprint = {
                a["fingerprint"]: json.dumps(a["labels"], sort_keys=True) for a in listed
            }
            out: dict[str, str | None] = {}
            for a in listed:
                muted_by = a["status"]["inhibitedBy"]
                # Several sources may mute one alert; ours names the first, so compare
                # "muted or not" and that ours is among Alertmanager's.
                out[json.dumps(a["labels"], sort_keys=True)] = (
                    None
                    if not muted_by
                    else json.dumps(sorted(by_fingerprint[f] for f in muted_by))
                )
            return out

        # The inhibitor learns of new alerts asynchronously: poll, boundedly.
        deadline = time.monotonic() + 10
        while True:
            current = theirs()
            agree = set(current) == set(ours) and all(
                (current[k] is None) == (ours[k] is None)
                and (ours[k] is None or ours[k] in json.loads(current[k]))  # type: ignore[arg-type]
                for k in ours
            )
            if agree or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert agree, {"ours": ours, "alertmanager": current}
