from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from common.db import UTCDateTime
from translator.db import Base


class UserRole(enum.StrEnum):
    user = "user"
    admin = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[UserRole] = mapped_column(
        Enum(UserRole, native_enum=False, length=16), default=UserRole.user
    )
    # sha256 of the API token; the token itself is shown once, at creation.
    api_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    subscriptions: Mapped[list[UserSubscription]] = relationship(back_populates="user")


class SubscriptionPlan(Base):
    __tablename__ = "subscription_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    period_days: Mapped[int] = mapped_column(Integer, default=30)
    # Seed 000 §3.2: per-file and total upload limits; NULL means unlimited.
    max_file_size_mb: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_total_upload_size_mb: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SubscriptionStatus(enum.StrEnum):
    active = "active"
    past_due = "past_due"
    cancelled = "cancelled"


class UserSubscription(Base):
    __tablename__ = "user_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("subscription_plans.id"))
    status: Mapped[SubscriptionStatus] = mapped_column(
        Enum(SubscriptionStatus, native_enum=False, length=16), default=SubscriptionStatus.active
    )
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True)
    payment_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    payment_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    current_period_end: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    failed_renewals: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="subscriptions")
    plan: Mapped[SubscriptionPlan] = relationship()
