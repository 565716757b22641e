from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import UTCDateTime
from translator.db import Base


class PaymentMethod(enum.StrEnum):
    card = "card"
    wallet = "wallet"  # an Apple Pay-like wallet
    promo = "promo"  # fully paid by a promo code


class PaymentStatus(enum.StrEnum):
    succeeded = "succeeded"
    failed = "failed"


class PaymentKind(enum.StrEnum):
    checkout = "checkout"
    renewal = "renewal"


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_subscriptions.id", ondelete="SET NULL"), nullable=True
    )
    plan_id: Mapped[int] = mapped_column(ForeignKey("subscription_plans.id"))
    kind: Mapped[PaymentKind] = mapped_column(Enum(PaymentKind, native_enum=False, length=16))
    method: Mapped[PaymentMethod] = mapped_column(
        Enum(PaymentMethod, native_enum=False, length=16), index=True
    )
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    promo_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[PaymentStatus] = mapped_column(
        Enum(PaymentStatus, native_enum=False, length=16), index=True
    )
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    gateway_reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A renewal is charged once per subscription period, even if two schedulers race.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class PromoCode(Base):
    __tablename__ = "promo_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    percent_off: Mapped[int] = mapped_column(Integer)
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    used_count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
