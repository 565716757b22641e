"""The identity store's tables: accounts (people and service accounts) with one
role each, their API tokens and calendar feed tokens (only hashes are kept), and
the platform's audit of every state change made through a service's API."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common.db import UTCDateTime, naming_metadata


class Base(DeclarativeBase):
    metadata = naming_metadata()


class Role(enum.StrEnum):
    """Ordered: each role may do everything the roles before it may."""

    viewer = "viewer"  # reads
    responder = "responder"  # acknowledges, silences, resolves; edits incidents
    release_manager = "release_manager"  # deploys, freezes
    admin = "admin"  # manages accounts and tokens

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class AccountKind(enum.StrEnum):
    person = "person"
    service = "service"  # a pipeline, a peer service, an Alertmanager


class Account(Base):
    __tablename__ = "identity_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[AccountKind] = mapped_column(Enum(AccountKind, native_enum=False, length=16))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="account")


class ApiToken(Base):
    __tablename__ = "identity_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_accounts.id"), index=True)
    # SHA-256 of the token: tokens are long random strings, so a fast hash is enough
    # and lets every request be checked with one indexed lookup.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, to tell tokens apart in listings without revealing them.
    hint: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    account: Mapped[Account] = relationship(back_populates="tokens")


class FeedToken(Base):
    """An account's calendar feed token: it reads on-call calendars (``?feed=``) and
    nothing else, for calendar apps that cannot send a header. One per account;
    making a new one replaces the old."""

    __tablename__ = "identity_feed_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_accounts.id"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256, as API tokens
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditRecord(Base):
    """One request the identity layer judged: a state change and who made it, or
    a refusal (401/403) and what was presented."""

    __tablename__ = "identity_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    service: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # done, failed, refused
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
