"""Checkout, promo codes and the recurring renewal job (seed 000 §2.1, 03:00 UTC)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from common.logs import get_logger
from translator.accounts.models import (
    SubscriptionPlan,
    SubscriptionStatus,
    User,
    UserSubscription,
)
from translator.accounts.service import active_subscription, get_plan
from translator.errors import InvalidInput, PromoCodeError
from translator.payments.gateway import ChargeRequest, PaymentGateway
from translator.payments.models import (
    Payment,
    PaymentKind,
    PaymentMethod,
    PaymentStatus,
    PromoCode,
)

log = get_logger(__name__)

MAX_FAILED_RENEWALS = 3


# Told about every payment outcome: (method, outcome). The metrics hook.
PaymentObserver = Callable[[str, str], None]


def _apply_promo(
    session: Session, code: str | None, price: int, now: datetime
) -> tuple[int, str | None]:
    if not code:
        return price, None
    promo = session.scalar(
        select(PromoCode).where(PromoCode.code == code.strip().upper()).with_for_update()
    )
    if promo is None:
        raise PromoCodeError(f"promo code {code!r} does not exist")
    if promo.expires_at is not None and promo.expires_at <= now:
        raise PromoCodeError(f"promo code {promo.code} expired on {promo.expires_at:%Y-%m-%d}")
    if promo.max_uses is not None and promo.used_count >= promo.max_uses:
        raise PromoCodeError(f"promo code {promo.code} has been used up")
    promo.used_count += 1
    return price * (100 - promo.percent_off) // 100, promo.code


def checkout(
    session: Session,
    gateway: PaymentGateway,
    user: User,
    plan_code: str,
    method: str,
    token: str,
    now: datetime,
    promo_code: str | None = None,
    observe: PaymentObserver | None = None,
) -> Payment:
    """Charge for a plan and, on success, start or replace the subscription.

    A declined payment is recorded too (status ``failed`` with the reason); the
    caller commits either way and reports the failure to the user."""
    plan = get_plan(session, plan_code)
    if plan.price_cents <= 0:
        raise InvalidInput(f"the {plan.name} plan is free; nothing to pay")
    try:
        pay_method = PaymentMethod(method)
    except ValueError:
        raise InvalidInput(f"unknown payment method {method!r}; use card or wallet") from None
    amount, promo = _apply_promo(session, promo_code, plan.price_cents, now)
    if amount == 0:
        pay_method = PaymentMethod.promo
    if pay_method is PaymentMethod.promo and amount > 0:
        raise InvalidInput("method 'promo' needs a promo code covering the full price")

    if amount > 0:
        result = gateway.charge(ChargeRequest(pay_method, token, amount, plan.currency))
        ok, reference, reason = result.ok, result.reference, result.failure_reason
    else:
        ok, reference, reason = True, None, None

    payment = Payment(
        user_id=user.id,
        plan_id=plan.id,
        kind=PaymentKind.checkout,
        method=pay_method,
        amount_cents=amount,
        currency=plan.currency,
        promo_code=promo,
        status=PaymentStatus.succeeded if ok else PaymentStatus.failed,
        failure_reason=reason,
        gateway_reference=reference,
        created_at=now,
    )
    session.add(payment)
    if ok:
        payment.subscription_id = _start_subscription(
            session, user, plan, pay_method, token, now
        ).id
    elif promo:
        # A declined charge does not consume the promo code.
        promo_row = session.scalar(select(PromoCode).where(PromoCode.code == promo))
        if promo_row is not None:
            promo_row.used_count -= 1
    session.flush()
    _report(observe, payment)
    return payment


def _start_subscription(
    session: Session,
    user: User,
    plan: SubscriptionPlan,
    method: PaymentMethod,
    token: str,
    now: datetime,
) -> UserSubscription:
    current = active_subscription(session, user.id)
    if current is not None:
        current.status = SubscriptionStatus.cancelled
    sub = UserSubscription(
        user_id=user.id,
        plan_id=plan.id,
        status=SubscriptionStatus.active,
        auto_renew=method is not PaymentMethod.promo,
        payment_method=method.value,
        payment_token=token if method is not PaymentMethod.promo else None,
        current_period_end=now + timedelta(days=plan.period_days),
        created_at=now,
    )
    session.add(sub)
    session.flush()
    log.info("subscription.started", user_id=user.id, plan=plan.code, subscription_id=sub.id)
    return sub


def _report(observe: PaymentObserver | None, payment: Payment) -> None:
    level = log.info if payment.status is PaymentStatus.succeeded else log.warning
    level(
        "payment.recorded",
        payment_id=payment.id,
        user_id=payment.user_id,
        method=payment.method.value,
        outcome=payment.status.value,
        reason=payment.failure_reason,
        amount=payment.amount_cents,
    )
    if observe is not None:
        observe(payment.method.value, payment.status.value)


@dataclass
class RenewalReport:
    renewed: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    payment_ids: list[int] = field(default_factory=list)


def renew_due_subscriptions(
    db_session_factory: sessionmaker[Session],
    gateway: PaymentGateway,
    now: datetime,
    observe: PaymentObserver | None = None,
) -> RenewalReport:
    """Charge every auto-renewing subscription whose period has ended.

    One transaction per subscription, so one bad card does not undo the
    others. The idempotency key (subscription, period end, attempt) is unique:
    if two processes race, the second insert fails and nothing is recorded twice."""
    report = RenewalReport()
    with db_session_factory() as s:
        due_ids = s.scalars(
            select(UserSubscription.id).where(
                UserSubscription.auto_renew.is_(True),
                UserSubscription.status.in_(
                    [SubscriptionStatus.active, SubscriptionStatus.past_due]
                ),
                UserSubscription.current_period_end <= now,
            )
        ).all()
    for sub_id in due_ids:
        with db_session_factory() as s:
            try:
                _renew_one(s, gateway, sub_id, now, report, observe)
                s.commit()
            except IntegrityError:
                s.rollback()
                report.skipped += 1
                log.info("renewal.duplicate_skipped", subscription_id=sub_id)
    log.info(
        "renewals.done",
        renewed=report.renewed,
        failed=report.failed,
        cancelled=report.cancelled,
        skipped=report.skipped,
    )
    return report


def _renew_one(
    s: Session,
    gateway: PaymentGateway,
    sub_id: int,
    now: datetime,
    report: RenewalReport,
    observe: PaymentObserver | None,
) -> None:
    sub = s.get(UserSubscription, sub_id, with_for_update=True)
    if sub is None or sub.current_period_end > now or sub.status == SubscriptionStatus.cancelled:
        report.skipped += 1
        return
    plan = sub.plan
    key = f"renewal:{sub.id}:{sub.current_period_end:%Y%m%dT%H%M%S}:{sub.failed_renewals}"
    method = PaymentMethod(sub.payment_method or "card")
    result = gateway.charge(
        ChargeRequest(method, sub.payment_token or "", plan.price_cents, plan.currency, key)
    )
    payment = Payment(
        user_id=sub.user_id,
        subscription_id=sub.id,
        plan_id=plan.id,
        kind=PaymentKind.renewal,
        method=method,
        amount_cents=plan.price_cents,
        currency=plan.currency,
        status=PaymentStatus.succeeded if result.ok else PaymentStatus.failed,
        failure_reason=result.failure_reason,
        gateway_reference=result.reference,
        idempotency_key=key,
        created_at=now,
    )
    s.add(payment)
    if result.ok:
        sub.current_period_end += timedelta(days=plan.period_days)
        sub.status = SubscriptionStatus.active
        sub.failed_renewals = 0
        report.renewed += 1
    else:
        sub.failed_renewals += 1
        sub.status = SubscriptionStatus.past_due
        report.failed += 1
        if sub.failed_renewals >= MAX_FAILED_RENEWALS:
            sub.status = SubscriptionStatus.cancelled
            report.cancelled += 1
            log.warning(
                "subscription.cancelled",
                subscription_id=sub.id,
                failed_renewals=sub.failed_renewals,
            )
    s.flush()
    report.payment_ids.append(payment.id)
    _report(observe, payment)
