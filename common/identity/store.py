"""Accounts, tokens and the audit: the operations every service and the
``vigil-admin`` command use. A token is shown once, when it is made; the store
keeps its SHA-256 only."""

from __future__ import annotations

import hashlib
import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from common.identity.db import Database
from common.identity.models import Account, AccountKind, ApiToken, AuditRecord, Role
from common.identity.settings import IdentitySettings
from common.logs import get_logger
from common.secrets import register_secrets, url_password

log = get_logger("identity")

TOKEN_PREFIX = "vgl_"
# Calendar feed tokens (common.identity.feeds): their own prefix, so neither kind
# is ever taken for the other.
FEED_TOKEN_PREFIX = "vgf_"
MIN_TOKEN_LENGTH = 20
BOOTSTRAP_ADMIN = "admin"


class IdentityError(Exception):
    """A request the store refuses: an unknown account, a duplicate name, a weak token."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account a valid token belongs to."""

    account_id: int
    name: str
    role: Role
    kind: AccountKind
    token_id: int

    def may(self, needed: Role) -> bool:
        return self.role.allows(needed)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    account: str
    hint: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(UTC)


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- accounts ----------------------------------------------------------------

    def create_account(
        self, name: str, role: Role, kind: AccountKind = AccountKind.person
    ) -> Account:
        name = name.strip()
        if not name or len(name) > 128:
            raise IdentityError("an account name is 1 to 128 characters")
        try:
            with self.db.session() as s:
                account = Account(name=name, role=role, kind=kind, created_at=_now())
                s.add(account)
                s.flush()
                return account
        except IntegrityError:
            raise IdentityError(f"account {name!r} already exists") from None

    def accounts(self) -> list[Account]:
        with self.db.session() as s:
            return list(s.scalars(select(Account).order_by(Account.name)))

    def account(self, name: str) -> Account:
        with self.db.session() as s:
            found = s.scalar(select(Account).where(Account.name == name))
            if found is None:
                raise IdentityError(f"no account {name!r}")
            return found

    def set_role(self, name: str, role: Role) -> Account:
        with self.db.session() as s:
            account = s.scalar(select(Account).where(Account.name == name))
            if account is None:
                raise IdentityError(f"no account {name!r}")
            account.role = role
            return account

    def disable(self, name: str) -> Account:
        """The account's tokens stop working at once; its history stays."""
        with self.db.session() as s:
            account = s.scalar(select(Account).where(Account.name == name))
            if account is None:
                raise IdentityError(f"no account {name!r}")
            account.disabled_at = account.disabled_at or _now()
            return account

    # -- tokens ------------------------------------------------------------------

    def issue_token(self, name: str, label: str = "", token: str | None = None) -> str:
        """A new token for account ``name``; the only time it is seen in clear."""
        token = token or new_token()
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise IdentityError(f"a token is at least {MIN_TOKEN_LENGTH} characters without spaces")
        if token.startswith(FEED_TOKEN_PREFIX):
            raise IdentityError(f"{FEED_TOKEN_PREFIX} starts calendar feed tokens, not API tokens")
        try:
            with self.db.session() as s:
                account = s.scalar(select(Account).where(Account.name == name))
                if account is None:
                    raise IdentityError(f"no account {name!r}")
                s.add(
                    ApiToken(
                        account_id=account.id,
                        token_hash=hash_token(token),
                        hint=token[: len(TOKEN_PREFIX) + 4],
                        label=label,
                        created_at=_now(),
                    )
                )
        except IntegrityError:
            raise IdentityError("that token is already in use") from None
        return token

    def tokens(self, name: str | None = None) -> list[TokenInfo]:
        query = select(ApiToken, Account.name).join(Account).order_by(ApiToken.id)
        if name is not None:
            query = query.where(Account.name == name)
        with self.db.session() as s:
            return [
                TokenInfo(t.id, account, t.hint, t.label, t.created_at, t.revoked_at)
                for t, account in s.execute(query)
            ]

    def revoke(self, token_id: int) -> TokenInfo:
        with self.db.session() as s:
            row = s.get(ApiToken, token_id)
            if row is None:
                raise IdentityError(f"no token {token_id}")
            row.revoked_at = row.revoked_at or _now()
            return TokenInfo(
                row.id, row.account.name, row.hint, row.label, row.created_at, row.revoked_at
            )

    def authenticate(self, token: str) -> Principal | None:
        """The account behind a live token of an enabled account, else None."""
        with self.db.sessions() as s:
            row = s.execute(
                select(ApiToken, Account)
                .join(Account)
                .where(
                    ApiToken.token_hash == hash_token(token),
                    ApiToken.revoked_at.is_(None),
                    Account.disabled_at.is_(None),
                )
            ).first()
        if row is None:
            return None
        t, account = row
        return Principal(account.id, account.name, account.role, account.kind, t.id)

    # -- first start -------------------------------------------------------------

    def bootstrap(self, admin_token: str | None) -> str | None:
        """On an empty store, create the ``admin`` account with ``admin_token`` (or
        a random one). Returns the token when this call made a random one, for the
        caller to show once; None when the store already had accounts or the token
        came from the environment. Safe when several services start at once."""
        if admin_token is not None and len(admin_token) < MIN_TOKEN_LENGTH:
            raise IdentityError(f"VIGIL_ADMIN_TOKEN is shorter than {MIN_TOKEN_LENGTH} characters")
        with self.db.sessions() as s:
            if s.scalar(select(func.count()).select_from(Account)):
                return None
        try:
            self.create_account(BOOTSTRAP_ADMIN, Role.admin)
        except IdentityError:
            return None  # another service made it first
        token = self.issue_token(BOOTSTRAP_ADMIN, "first start", admin_token)
        log.info("identity.bootstrap", account=BOOTSTRAP_ADMIN, from_environment=bool(admin_token))
        return None if admin_token else token

    # -- audit ---------------------------------------------------------------------

    def audit(
        self,
        *,
        service: str,
        actor: Principal | None,
        method: str,
        path: str,
        status: int,
        detail: dict[str, Any] | None = None,
    ) -> None:
        outcome = "refused" if status in (401, 403) else "failed" if status >= 400 else "done"
        with self.db.session() as s:
            s.add(
                AuditRecord(
                    at=_now(),
                    service=service,
                    actor=actor.name if actor else None,
                    role=actor.role.value if actor else None,
                    method=method,
                    path=path[:512],
                    status=status,
                    outcome=outcome,
                    detail=detail or {},
                )
            )

    def audit_trail(self, limit: int = 100, actor: str | None = None) -> list[AuditRecord]:
        query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
        if actor is not None:
            query = query.where(AuditRecord.actor == actor)
        with self.db.sessions() as s:
            return list(s.scalars(query))

    def dispose(self) -> None:
        self.db.dispose()


_migrated: set[str] = set()


def open_store(
    settings: IdentitySettings | None = None, *, announce: bool = False
) -> IdentityStore:
    """The platform's store, migrated (once per process and URL) and, on its first
    start, given an admin: with ``VIGIL_ADMIN_TOKEN``'s token, else a random one
    that ``announce`` prints once on stderr (a service's ``serve``)."""
    settings = settings or IdentitySettings()
    given = settings.admin_token.get_secret_value() if settings.admin_token else None
    register_secrets([given, url_password(settings.identity_database_url)])
    db = Database(settings.identity_database_url)
    if db.url not in _migrated:
        db.migrate()
        _migrated.add(db.url)
    store = IdentityStore(db)
    if given is not None or announce:
        made = store.bootstrap(given)
        if made is not None:
            sys.stderr.write(
                f"\nFirst start: created the platform admin account {BOOTSTRAP_ADMIN!r}.\n"
                f"Its API token, shown only this once:\n\n    {made}\n\n"
                "Use it as 'Authorization: Bearer <token>'; make more with vigil-admin.\n\n"
            )
            sys.stderr.flush()
    return store
