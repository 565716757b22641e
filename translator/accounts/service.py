"""Users, tokens and the plan that applies to a user."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from translator.accounts.models import (
    SubscriptionPlan,
    SubscriptionStatus,
    User,
    UserRole,
    UserSubscription,
)
from translator.errors import Conflict, InvalidInput, NotFound, Unauthorized

FREE_PLAN = "free"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    email: str,
    now: datetime,
    name: str = "",
    role: UserRole = UserRole.user,
    token: str | None = None,
) -> tuple[User, str]:
    """Create a user and return it with its API token (stored only as a hash)."""
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidInput(f"not an email address: {email!r}")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"user {email} already exists")
    token = token or "tk_" + secrets.token_urlsafe(24)
    user = User(email=email, name=name, role=role, api_token_hash=hash_token(token), created_at=now)
    session.add(user)
    session.flush()
    return user, token


def authenticate(session: Session, token: str) -> User:
    user = session.scalar(select(User).where(User.api_token_hash == hash_token(token)))
    if user is None or not user.is_active:
        raise Unauthorized("invalid API token")
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def active_subscription(session: Session, user_id: int) -> UserSubscription | None:
    return session.scalar(
        select(UserSubscription)
        .where(
            UserSubscription.user_id == user_id,
            UserSubscription.status.in_([SubscriptionStatus.active, SubscriptionStatus.past_due]),
        )
        .order_by(UserSubscription.id.desc())
        .limit(1)
    )


def plan_for_user(session: Session, user_id: int | None) -> SubscriptionPlan:
    """The plan whose limits apply: the active subscription's, else the free plan."""
    if user_id is not None:
        sub = active_subscription(session, user_id)
        if sub is not None:
            return sub.plan
    return get_plan(session, FREE_PLAN)


def get_plan(session: Session, code: str) -> SubscriptionPlan:
    plan = session.scalar(select(SubscriptionPlan).where(SubscriptionPlan.code == code))
    if plan is None:
        raise NotFound(f"plan {code!r} not found")
    return plan
