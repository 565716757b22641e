"""Each signed callback is acted on once.

A signature proves who sent a request, not that it is new: a captured Twilio
keypress or Slack button press replays with a valid signature. So every
accepted callback is remembered (a digest of what was signed, in the database
so every replica sees it) for as long as its signature could still be
accepted, and a second arrival is refused.

Twilio's signature carries no time, so its lifetime is ours to set: a keypress
is accepted only while the call it belongs to could still be up
(``KEYPRESS_LIFETIME`` after the page went out) and remembered that long; a
delivery receipt is remembered for ``RECEIPT_LIFETIME``. Slack's signature
lives within its five-minute timestamp window."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from sentinel.alerting.models import SeenCallback
from sentinel.db import Database

KEYPRESS_LIFETIME = timedelta(hours=4)  # Twilio's default longest call
RECEIPT_LIFETIME = timedelta(days=2)  # receipts of an unreachable phone come late
SLACK_WINDOW = timedelta(minutes=5)  # what the Slack SDK's verifier accepts either side


def digest(via: str, *parts: str) -> str:
    return hashlib.sha256("\x1f".join((via, *parts)).encode()).hexdigest()


def first_arrival(db: Database, via: str, key: str, now: datetime, keep_until: datetime) -> bool:
    """Record ``key`` (a ``digest``) as seen; False if it already was and has not expired."""
    with db.session() as s:
        s.execute(delete(SeenCallback).where(SeenCallback.expires_at < now))
    try:
        with db.session() as s:
            s.add(SeenCallback(digest=key, via=via, seen_at=now, expires_at=keep_until))
    except IntegrityError:
        return False
    return True
