"""Fault injection, so the sentinel and the release gate can be shown and tested
against real failures. Configuration only (``TRANSLATOR_FAULTS_FILE`` or
``TRANSLATOR_FAULTS``), off by default, and every injected fault is logged as
``event=fault.injected kind=...``. A faults file is watched: replace it (or
delete it) and the running service switches the faults on or off at its next
check, so a fault can start at a recorded instant.

    start_after_seconds: 60
    payment_failures: [{method: wallet, rate: 0.5, reason: wallet_declined}]
    empty_job_list: {users: [bob@example.com], share: 0.0}
    http_errors: [{route: /api/jobs, rate: 0.3, status: 500}]
    slow_responses: [{route: /api/jobs, rate: 0.5, seconds: 3}]
    worker_hang: {rate: 0.1, seconds: 900}
    llm_failures: [{provider: offline, rate: 0.2}]
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from common.logs import get_logger
from common.yaml_config import ConfigError, load_yaml_model, parse_yaml_model
from translator.llm import LLMProvider, LLMResponseError

log = get_logger(__name__)

Rate = Field(ge=0.0, le=1.0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PaymentFault(_Strict):
    method: str
    rate: float = Rate
    reason: str = "declined_by_issuer"


class EmptyJobListFault(_Strict):
    users: list[str] = []  # emails
    share: float = Field(default=0.0, ge=0.0, le=1.0)


class HttpErrorFault(_Strict):
    route: str  # a route template ("/api/jobs/{job_id}") or a path prefix
    rate: float = Rate
    status: int = Field(default=500, ge=500, le=599)
    methods: list[str] = []  # empty: every method


class SlowResponseFault(_Strict):
    """Requests to ``route`` answered ``seconds`` late (a slow dependency, a lock)."""

    route: str  # a route template or a path prefix, as for http_errors
    rate: float = Rate
    seconds: float = Field(default=3.0, gt=0, le=600)
    methods: list[str] = []  # empty: every method


class WorkerHangFault(_Strict):
    rate: float = Rate
    seconds: float = Field(default=900.0, gt=0)


class LLMFault(_Strict):
    provider: str
    rate: float = Rate


class FaultConfig(_Strict):
    seed: int | None = None
    # Faults stay dormant this long after start: a demo shows health, then breakage.
    start_after_seconds: float = Field(default=0.0, ge=0)
    payment_failures: list[PaymentFault] = []
    empty_job_list: EmptyJobListFault | None = None
    http_errors: list[HttpErrorFault] = []
    slow_responses: list[SlowResponseFault] = []
    worker_hang: WorkerHangFault | None = None
    llm_failures: list[LLMFault] = []

    @property
    def active(self) -> bool:
        return bool(
            self.payment_failures
            or self.empty_job_list
            or self.http_errors
            or self.slow_responses
            or self.worker_hang
            or self.llm_failures
        )


def load_fault_config(file: Path | None, inline: str | None) -> FaultConfig:
    if file is not None:
        return load_yaml_model(file, FaultConfig)
    if inline:
        try:
            json.loads(inline)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"TRANSLATOR_FAULTS: not valid JSON: {exc}") from exc
        return parse_yaml_model(inline, FaultConfig, source="TRANSLATOR_FAULTS")
    return FaultConfig()


class FaultyProvider:
    """Wraps an LLM provider so injected failures pass through the same retries,
    breaker and metrics as real provider errors."""

    def __init__(self, provider: LLMProvider, faults: FaultInjector) -> None:
        self.name = provider.name
        self._provider = provider
        self._faults = faults

    def translate(self, text: str, source_lang: str, target_lang: str) -> str:
        if self._faults.llm_failure(self.name):
            raise LLMResponseError(
                f"injected failure ({self.name})", status_code=503, retryable=True
            )
        return self._provider.translate(text, source_lang, target_lang)


def _stamp(file: Path) -> tuple[int, int, int] | None:
    """What changes when the file is rewritten or replaced (None: no file)."""
    try:
        st = file.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class FaultInjector:
    """Answers "should this operation fail now?" for each kind of fault. Given
    the ``file`` its configuration came from, it re-reads it whenever it
    changes (a missing file means no faults)."""

    def __init__(
        self,
        config: FaultConfig | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        file: Path | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._started = monotonic()  # start_after_seconds counts from the process start
        self._file = file
        self._stamp = _stamp(file) if file is not None else None
        self._use(config or FaultConfig())

    @classmethod
    def from_settings(cls, file: Path | None, inline: str | None) -> FaultInjector:
        return cls(load_fault_config(file, inline), file=file)

    def _use(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._armed_at = self._started + config.start_after_seconds
        if config.active:
            log.warning("fault.config_loaded", config=config.model_dump_json(exclude_none=True))

    def _refresh(self) -> None:
        """Pick up a changed faults file; one stat per check, so it is cheap."""
        if self._file is None:
            return
        stamp = _stamp(self._file)
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                config = load_yaml_model(self._file, FaultConfig) if stamp else FaultConfig()
            except (ConfigError, OSError) as exc:
                log.error("fault.config_invalid", file=str(self._file), error=str(exc))
                return  # keep the faults that were in force
            log.warning("fault.config_changed", file=str(self._file), active=config.active)
            self._use(config)

    def _roll(self, rate: float) -> bool:
        if rate <= 0 or self._monotonic() < self._armed_at:
            return False
        with self._lock:
            return self._rng.random() < rate

    def payment_failure(self, method: str) -> str | None:
        self._refresh()
        for fault in self.config.payment_failures:
            if fault.method == method and self._roll(fault.rate):
                log.warning(
                    "fault.injected", kind="payment_failure", method=method, reason=fault.reason
                )
                return fault.reason
        return None

    def empty_job_list(self, email: str) -> bool:
        self._refresh()
        fault = self.config.empty_job_list
        if fault is None:
            return False
        armed = self._monotonic() >= self._armed_at
        if (armed and email in fault.users) or self._roll(fault.share):
            log.warning("fault.injected", kind="empty_job_list", user=email)
            return True
        return False

    def http_error(self, method: str, route: str) -> int | None:
        self._refresh()
        for fault in self.config.http_errors:
            if _hits(fault.route, fault.methods, method, route) and self._roll(fault.rate):
                log.warning("fault.injected", kind="http_error", route=route, status=fault.status)
                return fault.status
        return None

    def slow_response(self, method: str, route: str) -> float | None:
        """Seconds to hold this request back before it is handled, or None."""
        self._refresh()
        for fault in self.config.slow_responses:
            if _hits(fault.route, fault.methods, method, route) and self._roll(fault.rate):
                log.warning(
                    "fault.injected", kind="slow_response", route=route, seconds=fault.seconds
                )
                return fault.seconds
        return None

    def worker_hang(self) -> float | None:
        self._refresh()
        fault = self.config.worker_hang
        if fault is not None and self._roll(fault.rate):
            log.warning("fault.injected", kind="worker_hang", seconds=fault.seconds)
            return fault.seconds
        return None

    @property
    def watching(self) -> bool:
        """Faults come from a watched file: any of them may be switched on later."""
        return self._file is not None

    def wrap_provider(self, provider: LLMProvider) -> LLMProvider:
        wrap = self.config.llm_failures or self.watching
        return FaultyProvider(provider, self) if wrap else provider

    def llm_failure(self, provider: str) -> bool:
        self._refresh()
        for fault in self.config.llm_failures:
            if fault.provider == provider and self._roll(fault.rate):
                log.warning("fault.injected", kind="llm_failure", provider=provider)
                return True
        return False


def _hits(fault_route: str, fault_methods: list[str], method: str, route: str) -> bool:
    """Does a route fault apply to this request? (its route, or a path under it)"""
    if fault_methods and method.upper() not in {m.upper() for m in fault_methods}:
        return False
    return route == fault_route or route.startswith(fault_route.rstrip("/") + "/")
