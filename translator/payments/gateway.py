"""The payment gateway interface and the simulated gateway used by default.

The simulated gateway understands test tokens the way real gateways' sandboxes
do, so every decline path can be exercised:

    card:   tok_visa (ok), tok_declined, tok_insufficient_funds, tok_expired
    wallet: wallet_ok (ok), wallet_auth_failed, wallet_cancelled

Injected faults (``payment_failures`` in the fault config) decline otherwise
good payments of one method at a configured rate."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from translator.faults import FaultInjector
from translator.payments.models import PaymentMethod


@dataclass(frozen=True)
class ChargeRequest:
    method: PaymentMethod
    token: str
    amount_cents: int
    currency: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ChargeResult:
    ok: bool
    reference: str | None = None
    failure_reason: str | None = None


class PaymentGateway(Protocol):
    def charge(self, request: ChargeRequest) -> ChargeResult: ...


DECLINES = {
    "tok_declined": "card_declined",
    "tok_insufficient_funds": "insufficient_funds",
    "tok_expired": "expired_card",
    "wallet_auth_failed": "wallet_authentication_failed",
    "wallet_cancelled": "wallet_cancelled_by_user",
}
GOOD_TOKENS = {
    PaymentMethod.card: {"tok_visa", "tok_mastercard"},
    PaymentMethod.wallet: {"wallet_ok"},
}


class SimulatedGateway:
    def __init__(self, faults: FaultInjector | None = None) -> None:
        self.faults = faults or FaultInjector()

    def charge(self, request: ChargeRequest) -> ChargeResult:
        if request.token in DECLINES:
            return ChargeResult(ok=False, failure_reason=DECLINES[request.token])
        if request.token not in GOOD_TOKENS.get(request.method, set()):
            return ChargeResult(ok=False, failure_reason="invalid_payment_token")
        injected = self.faults.payment_failure(request.method.value)
        if injected is not None:
            return ChargeResult(ok=False, failure_reason=injected)
        return ChargeResult(ok=True, reference="sim_" + secrets.token_hex(8))
