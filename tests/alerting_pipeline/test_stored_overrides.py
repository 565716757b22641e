"""An override added while the sentinel runs (the console's form) pages like one written
in the schedule's file: from its start to its end, above the rotation, audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sentinel.alerting.models import AuditEvent
from sentinel.alerting.overrides import OverrideError, add_override


def _paged(rig):  # type: ignore[no-untyped-def]
    return [who for channel, who, _ in rig.pages() if channel == "voice"]


def test_a_stored_override_pages_its_person_instead_of_the_rotation(rig):
    now = rig.clock.now()  # alice's week
    with rig.db.session() as s:
        add_override(
            s, rig.notifier.config, "primary", "bob", now - timedelta(minutes=5),
            now + timedelta(hours=2), by="alice", via="console", now=now, reason="dentist",
        )  # fmt: skip
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    assert _paged(rig) == ["bob"]
    with rig.db.session() as s:
        (event,) = s.scalars(select(AuditEvent)).all()
    assert (event.kind, event.actor, event.via) == ("override", "alice", "console")
    assert event.detail["person"] == "bob" and event.detail["schedule"] == "primary"


def test_after_the_override_ends_the_rotation_pages_again(rig):
    now = rig.clock.now()
    with rig.db.session() as s:
        add_override(s, rig.notifier.config, "primary", "bob", now, now + timedelta(hours=1),
                     by="alice", via="console", now=now)  # fmt: skip
    rig.clock.advance(hours=2)
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    assert _paged(rig) == ["alice"]


@pytest.mark.parametrize(
    ("schedule", "person", "start", "end", "words"),
    [
        ("nope", "bob", 0, 1, "no schedule 'nope'"),
        ("primary", "mallory", 0, 1, "'mallory' is not among the people"),
        ("primary", "bob", 2, 1, "is not after the start"),
        ("primary", "bob", -3, -1, "ends in the past"),
        ("primary", "bob", 0, 24 * 40, "at most 31 days"),
    ],
)
def test_an_override_that_cannot_be_is_refused_saying_why(rig, schedule, person, start, end, words):
    now = rig.clock.now()
    with pytest.raises(OverrideError, match=words), rig.db.session() as s:
        add_override(s, rig.notifier.config, schedule, person, now + timedelta(hours=start),
                     now + timedelta(hours=end), by="alice", via="console", now=now)  # fmt: skip
