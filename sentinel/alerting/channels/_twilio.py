"""Error mapping shared by the Twilio SMS and voice channels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from sentinel.alerting.channels.base import DeliveryResult


def twilio_call(create: Callable[[], Any]) -> DeliveryResult:
    """Run one ``create`` call; map what Twilio (or the network) says to a result."""
    try:
        resource = create()
    except (TwilioRestException, TwilioServiceException) as exc:
        return _from_status(exc.status, f"twilio {exc.status} code={exc.code}: {_message(exc)}")
    except (requests.RequestException, OSError) as exc:
        # Nothing reached Twilio, or we never heard back: try again, and in the
        # second case ask Twilio first whether it has the message.
        return DeliveryResult.failure(
            f"twilio unreachable: {exc}", retryable=True, uncertain=never_heard_back(exc)
        )
    return DeliveryResult.success(str(resource.sid), status="queued")


def _from_status(status: int, error: str) -> DeliveryResult:
    # 429 and 5xx are Twilio's problem and pass; other 4xx (bad number, auth) will not.
    retryable = status == 429 or status >= 500
    return DeliveryResult.failure(error, retryable=retryable)


def _message(exc: TwilioRestException | TwilioServiceException) -> str:
    if isinstance(exc, TwilioRestException):
        return exc.msg
    return exc.detail or exc.title


def never_heard_back(exc: BaseException) -> bool:
    """The request went out but no answer came: a read timeout, or a
    connection cut mid-answer (not a refused or timed-out connect)."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    return isinstance(exc, requests.ReadTimeout) or "Connection aborted" in str(exc)
