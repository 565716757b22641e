from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from common.http_errors import errors
from translator.deps import ServicesDep, UserDep
from translator.payments.models import Payment, PaymentMethod, PaymentStatus
from translator.payments.service import checkout

router = APIRouter(prefix="/api/payments", tags=["payments"])


class CheckoutIn(BaseModel):
    plan: str = Field(examples=["basic"])
    method: PaymentMethod = Field(examples=["card", "wallet"])
    token: str = Field(default="", examples=["tok_visa", "wallet_ok"])
    promo_code: str | None = None


class PaymentOut(BaseModel):
    id: int
    kind: str
    method: str
    amount_cents: int
    currency: str
    status: str
    failure_reason: str | None
    promo_code: str | None
    subscription_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, p: Payment) -> PaymentOut:
        return cls(
            id=p.id,
            kind=p.kind.value,
            method=p.method.value,
            amount_cents=p.amount_cents,
            currency=p.currency,
            status=p.status.value,
            failure_reason=p.failure_reason,
            promo_code=p.promo_code,
            subscription_id=p.subscription_id,
            created_at=p.created_at,
        )


@router.post(
    "/checkout",
    response_model=PaymentOut,
    status_code=201,
    responses={402: {"model": PaymentOut, "description": "payment declined"}} | errors(400, 404),
)
def pay(body: CheckoutIn, user: UserDep, services: ServicesDep):  # type: ignore[no-untyped-def]
    with services.db.session() as s:
        payment = checkout(
            s,
            services.gateway,
            user,
            body.plan,
            body.method,
            body.token,
            services.clock.now(),
            body.promo_code,
            observe=services.observe_payment,
        )
        out = PaymentOut.of(payment)
    if payment.status is PaymentStatus.failed:
        # The declined attempt is recorded (committed above) and reported as 402.
        return JSONResponse(
            out.model_dump(mode="json") | {"detail": "payment declined"}, status_code=402
        )
    return out


@router.get("", response_model=list[PaymentOut])
def my_payments(user: UserDep, services: ServicesDep) -> list[PaymentOut]:
    with services.db.session() as s:
        rows = s.scalars(
            select(Payment).where(Payment.user_id == user.id).order_by(Payment.id.desc()).limit(100)
        )
        return [PaymentOut.of(p) for p in rows]
