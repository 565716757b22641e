"""The history the fault matrix starts from has the rhythms a detector must learn
before it can tell a fault from a quiet night: busy afternoons, quiet nights,
and weekends at about half a weekday's activity."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from statistics import mean

from sqlalchemy import select

from common.clock import ensure_utc
from translator.demo import seed_history, seed_users
from translator.payments.models import Payment


def test_two_weeks_of_history_have_a_daily_and_a_weekly_rhythm(svc):
    # The clock stands on Monday 2026-01-05 12:00 UTC: two whole weekends behind it.
    seed_users(svc)
    assert seed_history(svc, 14, random.Random(1)) > 1000
    with svc.db.session() as s:
        times = [ensure_utc(t) for t in s.scalars(select(Payment.created_at))]
    assert min(times) >= svc.clock.now() - timedelta(days=14)
    per_day = Counter(t.date() for t in times)
    weekdays = [n for d, n in per_day.items() if d.weekday() < 5]
    weekends = [n for d, n in per_day.items() if d.weekday() >= 5]
    assert len(weekends) == 4
    assert mean(weekends) < 0.7 * mean(weekdays)
    per_hour = Counter(t.hour for t in times)
    afternoon = mean(per_hour[h] for h in (12, 13, 14, 15, 16))
    night = mean(per_hour[h] for h in (0, 1, 2, 3, 4))
    assert afternoon > 2 * night
    # Seeding is once per database: a restarted demo does not double the history.
    assert seed_history(svc, 14, random.Random(1)) == 0
