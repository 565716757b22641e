"""Calendar feed tokens: one per account, for calendar apps (Google Calendar,
Outlook) that subscribe to an on-call schedule's ``.ics`` by URL and cannot send
an ``Authorization`` header. A feed token reads calendars and nothing else: it
lives in its own table, so bearer authentication never finds it, and only the
calendar route asks this module. Like API tokens, it is shown once and only its
SHA-256 is kept; making a new one replaces (and so stops) the old."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common.identity.models import Account, FeedToken
from common.identity.store import (
    FEED_TOKEN_PREFIX,
    IdentityError,
    IdentityStore,
    Principal,
    hash_token,
)


def new_feed_token() -> str:
    return FEED_TOKEN_PREFIX + secrets.token_urlsafe(32)


def replace_feed_token(store: IdentityStore, name: str) -> str:
    """A new feed token for account ``name``, in place of any it had; the only
    time it is seen in clear."""
    try:
        return _replace(store, name)
    except IntegrityError:  # another request made this account's first one meanwhile
        return _replace(store, name)


def _replace(store: IdentityStore, name: str) -> str:
    token = new_feed_token()
    with store.db.session() as s:
        account = s.scalar(select(Account).where(Account.name == name))
        if account is None:
            raise IdentityError(f"no account {name!r}")
        row = s.scalar(select(FeedToken).where(FeedToken.account_id == account.id))
        if row is None:
            row = FeedToken(account_id=account.id)
            s.add(row)
        row.token_hash = hash_token(token)
        row.hint = token[: len(FEED_TOKEN_PREFIX) + 4]
        row.created_at = datetime.now(UTC)
    return token


def feed_reader(store: IdentityStore, token: str) -> Principal | None:
    """The account behind a current feed token of an enabled account, else None.
    The principal's ``token_id`` is the feed token's row."""
    if not token.startswith(FEED_TOKEN_PREFIX):
        return None  # an API token is no feed token, even of the same account
    with store.db.sessions() as s:
        row = s.execute(
            select(FeedToken, Account)
            .join(Account)
            .where(FeedToken.token_hash == hash_token(token), Account.disabled_at.is_(None))
        ).first()
    if row is None:
        return None
    feed, account = row
    return Principal(account.id, account.name, account.role, account.kind, feed.id)
