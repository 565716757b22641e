"""LLM providers for the translator: one synchronous interface, an embedded offline
provider, OpenAI-compatible HTTP providers, retries and a circuit breaker per provider.

Workers use :class:`ProviderRegistry`::

    registry = ProviderRegistry.from_settings(settings, clock)
    text = registry.get(registry.default).translate("Hello", "en", "ru")
"""

from translator.llm.base import LLMProvider
from translator.llm.breaker import STATE_VALUES, BreakerState, CircuitBreaker
from translator.llm.diagnose import ProviderCheck, check_providers
from translator.llm.exceptions import (
    LLMAuthenticationError,
    LLMCircuitOpenError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMTimeoutError,
    UnknownProviderError,
)
from translator.llm.offline import OfflineProvider
from translator.llm.openai_compat import OpenAICompatibleProvider
from translator.llm.registry import ProviderConfig, ProviderRegistry
from translator.llm.resilient import CallOutcome, ResilientProvider

__all__ = [
    "STATE_VALUES",
    "BreakerState",
    "CallOutcome",
    "CircuitBreaker",
    "LLMAuthenticationError",
    "LLMCircuitOpenError",
    "LLMConnectionError",
    "LLMError",
    "LLMProvider",
    "LLMRateLimitError",
    "LLMResponseError",
    "LLMTimeoutError",
    "OfflineProvider",
    "OpenAICompatibleProvider",
    "ProviderCheck",
    "ProviderConfig",
    "ProviderRegistry",
    "ResilientProvider",
    "UnknownProviderError",
    "check_providers",
]
