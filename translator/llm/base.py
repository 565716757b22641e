"""The one interface the translation workers call.

Workers are threads, so the interface is synchronous; anything async belongs
inside a provider, not in its signature.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class LLMProvider(Protocol):
    name: str

    def translate(self, text: str, source_lang: str, target_lang: str) -> str:
        """Return ``text`` translated into ``target_lang``; ``source_lang`` may be "auto".

        Raises an :class:`~translator.llm.exceptions.LLMError` subclass on failure.
        """
        ...


def primary_language(code: str) -> str:
    """``"ru-RU"`` → ``"ru"``: glossaries and prompts care about the language, not the region."""
    return code.strip().replace("_", "-").split("-", 1)[0].lower()
