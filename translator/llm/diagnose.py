"""Ask every provider for one tiny translation and report what happened.

Diagnosis calls each provider directly, bypassing retries and the breaker: the
operator wants to know whether the provider answers *now*, in one attempt, and
a probe must not move a live breaker or the call metrics. The breaker's state
is reported alongside.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel

from common.logs import get_logger
from translator.llm.registry import ProviderRegistry

log = get_logger(__name__)

PROBE_TEXT = "Hello"
PROBE_SOURCE = "en"
PROBE_TARGET = "ru"
_DETAIL_LIMIT = 200


class ProviderCheck(BaseModel):
    name: str
    ok: bool
    latency_ms: float
    detail: str
    breaker_state: str


def check_provider(
    registry: ProviderRegistry, name: str, timer: Callable[[], float] = time.perf_counter
) -> ProviderCheck:
    resilient = registry.get(name)
    started = timer()
    try:
        result = resilient.provider.translate(PROBE_TEXT, PROBE_SOURCE, PROBE_TARGET)
        ok, detail = True, f"{PROBE_TEXT!r} → {result!r}"
    except Exception as exc:  # a probe reports failures, it never raises them
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    latency_ms = round((timer() - started) * 1000, 1)
    if len(detail) > _DETAIL_LIMIT:
        detail = detail[:_DETAIL_LIMIT] + "…"
    log.info("llm.diagnose", provider=name, ok=ok, latency_ms=latency_ms)
    return ProviderCheck(
        name=name,
        ok=ok,
        latency_ms=latency_ms,
        detail=detail,
        breaker_state=resilient.breaker.state,
    )


def check_providers(
    registry: ProviderRegistry, timer: Callable[[], float] = time.perf_counter
) -> list[ProviderCheck]:
    """One check per provider, in registry order; probes run in parallel so one slow
    provider's timeout does not add up with the others'."""
    names = registry.names()
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="llm-diagnose") as pool:
        return list(pool.map(lambda name: check_provider(registry, name, timer), names))
