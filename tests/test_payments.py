"""Checkout, promo codes, renewals at 03:00 and injected payment faults."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import add_user
from translator.accounts.models import SubscriptionStatus, UserSubscription
from translator.ops.maintenance import process_recurring_subscriptions
from translator.payments.models import Payment, PaymentStatus, PromoCode


def _checkout(api, headers, **body):
    return api.post(
        "/api/payments/checkout",
        headers=headers,
        json={"plan": "basic", "method": "card", "token": "tok_visa", **body},
    )


def test_card_checkout_starts_subscription_with_bigger_limits(api, svc, clock):
    _, h = add_user(svc, "a@example.com")
    r = _checkout(api, h)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "succeeded" and r.json()["amount_cents"] == 990
    me = api.get("/api/me", headers=h).json()
    assert me["subscription"]["plan"] == "basic"
    assert me["subscription"]["current_period_end"].startswith(
        (clock.now() + timedelta(days=30)).date().isoformat()
    )
    # 5 MB is over the free plan's 2 MB, under the basic plan's 10 MB.
    up = api.post("/api/files", headers=h, files={"file": ("big.txt", b"word " * 1024 * 1024)})
    assert up.status_code == 201


@pytest.mark.parametrize(
    ("method", "token", "reason"),
    [
        ("card", "tok_declined", "card_declined"),
        ("card", "tok_insufficient_funds", "insufficient_funds"),
        ("wallet", "wallet_auth_failed", "wallet_authentication_failed"),
        ("card", "garbage", "invalid_payment_token"),
    ],
)
def test_declines_are_recorded_with_reason_and_answered_402(api, svc, method, token, reason):
    _, h = add_user(svc, "a@example.com")
    r = _checkout(api, h, method=method, token=token)
    assert r.status_code == 402
    assert r.json()["failure_reason"] == reason and r.json()["status"] == "failed"
    history = api.get("/api/payments", headers=h).json()
    assert [(p["status"], p["failure_reason"]) for p in history] == [("failed", reason)]
    assert api.get("/api/me", headers=h).json()["subscription"] is None


def test_bad_checkout_input(api, svc):
    _, h = add_user(svc, "a@example.com")
    assert _checkout(api, h, plan="gold").status_code == 404
    assert _checkout(api, h, plan="free").status_code == 422
    # The schema lists the methods, so an unknown one fails validation naming the field.
    r = _checkout(api, h, method="bitcoin")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "method"
    assert "'card'" in r.json()["errors"][0]["message"]
    assert _checkout(api, h, promo_code="NOPE").json()["code"] == "invalid_promo_code"


def test_promo_codes(api, svc, clock):
    with svc.db.session() as s:
        s.add(PromoCode(code="HALF", percent_off=50, max_uses=1))
        s.add(PromoCode(code="FREE", percent_off=100))
        s.add(PromoCode(code="OLD", percent_off=10, expires_at=clock.now() - timedelta(days=1)))
    _, a = add_user(svc, "a@example.com")
    _, b = add_user(svc, "b@example.com")
    # A declined charge does not use up the code.
    assert _checkout(api, a, promo_code="half", token="tok_declined").status_code == 402
    assert _checkout(api, a, promo_code="half").json()["amount_cents"] == 495
    assert "used up" in _checkout(api, b, promo_code="HALF").json()["detail"]
    assert "expired" in _checkout(api, b, promo_code="OLD").json()["detail"]
    free = _checkout(api, b, promo_code="FREE", token="")
    assert free.status_code == 201 and free.json()["method"] == "promo"


@pytest.mark.parametrize(
    "svc",
    ['{"seed": 7, "payment_failures": [{"method": "wallet", "rate": 1.0}]}'],
    indirect=True,
)
def test_injected_wallet_failures_hit_only_the_wallet(api, svc, caplog):
    _, h = add_user(svc, "a@example.com")
    r = _checkout(api, h, method="wallet", token="wallet_ok")
    assert r.status_code == 402 and r.json()["failure_reason"] == "declined_by_issuer"
    assert _checkout(api, h, method="card", token="tok_visa").status_code == 201
    assert any(
        r.getMessage() == "fault.injected" and r.fields["kind"] == "payment_failure"
        for r in caplog.records
    )
    metrics = api.get("/metrics").text
    assert 'translator_payments_total{method="wallet",outcome="failed"} 1.0' in metrics
    assert 'translator_payments_total{method="card",outcome="succeeded"} 1.0' in metrics


def test_renewals_at_three_charge_due_subscriptions_once(api, svc, clock):
    _, ok = add_user(svc, "ok@example.com")
    _, bad = add_user(svc, "bad@example.com")
    assert _checkout(api, ok).status_code == 201
    assert _checkout(api, bad).status_code == 201
    with svc.db.session() as s:  # bad's card stops working after checkout
        sub = s.scalar(
            select(UserSubscription)
            .join(UserSubscription.user)
            .where(UserSubscription.user.has(email="bad@example.com"))
        )
        sub.payment_token = "tok_insufficient_funds"

    clock.advance(days=29)
    assert process_recurring_subscriptions(svc, clock.now()).renewed == 0  # not due yet
    clock.advance(days=1, hours=1)
    report = process_recurring_subscriptions(svc, clock.now())
    assert (report.renewed, report.failed) == (1, 1)
    again = process_recurring_subscriptions(svc, clock.now())  # same day, nothing due
    assert (again.renewed, again.failed) == (0, 1)  # only the failing one retries

    for _ in range(2):
        clock.advance(days=1)
        process_recurring_subscriptions(svc, clock.now())
    with svc.db.session() as s:
        subs = {u.user.email: u for u in s.scalars(select(UserSubscription))}
        assert subs["ok@example.com"].status == SubscriptionStatus.active
        assert subs["bad@example.com"].status == SubscriptionStatus.cancelled
        renewals = s.scalars(select(Payment).where(Payment.kind == "renewal")).all()
        ok_renewals = [p for p in renewals if p.status == PaymentStatus.succeeded]
        assert len(ok_renewals) == 1
        assert {p.failure_reason for p in renewals if p.status == PaymentStatus.failed} == {
            "insufficient_funds"
        }
