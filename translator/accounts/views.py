from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from common.http_errors import errors
from translator.accounts.models import SubscriptionPlan, UserRole
from translator.accounts.service import active_subscription, create_user
from translator.deps import AdminDep, ServicesDep, UserDep

router = APIRouter(prefix="/api", tags=["accounts"])


class PlanOut(BaseModel):
    code: str
    name: str
    price_cents: int
    currency: str
    period_days: int
    max_file_size_mb: int | None
    max_total_upload_size_mb: int | None


class SubscriptionOut(BaseModel):
    id: int
    plan: str
    status: str
    auto_renew: bool
    current_period_end: datetime


class MeOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    subscription: SubscriptionOut | None


class NewUser(BaseModel):
    # What create_user checks, and what the users table holds.
    email: str = Field(max_length=255, pattern="@")
    name: str = Field(default="", max_length=255)
    role: UserRole = UserRole.user


class CreatedUser(BaseModel):
    id: int
    email: str
    api_token: str


@router.get("/plans", response_model=list[PlanOut])
def list_plans(services: ServicesDep) -> list[PlanOut]:
    with services.db.session() as s:
        plans = s.scalars(select(SubscriptionPlan).order_by(SubscriptionPlan.price_cents))
        return [PlanOut.model_validate(p, from_attributes=True) for p in plans]


@router.get("/me", response_model=MeOut)
def me(user: UserDep, services: ServicesDep) -> MeOut:
    with services.db.session() as s:
        sub = active_subscription(s, user.id)
        sub_out = (
            SubscriptionOut(
                id=sub.id,
                plan=sub.plan.code,
                status=sub.status.value,
                auto_renew=sub.auto_renew,
                current_period_end=sub.current_period_end,
            )
            if sub
            else None
        )
    return MeOut(
        id=user.id, email=user.email, name=user.name, role=user.role.value, subscription=sub_out
    )


@router.post("/users", response_model=CreatedUser, status_code=201, responses=errors(409))
def add_user(body: NewUser, _admin: AdminDep, services: ServicesDep) -> CreatedUser:
    with services.db.session() as s:
        user, token = create_user(s, body.email, services.clock.now(), body.name, body.role)
        return CreatedUser(id=user.id, email=user.email, api_token=token)
