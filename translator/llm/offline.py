"""The embedded provider: no network, no key, same output every time.

It exists so the service works out of the box and so tests and demos have a
provider that cannot flake. Its output is labelled so nobody mistakes it for a
real translation.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from translator.llm.base import primary_language

# English → (Russian, German). German nouns keep their capital letter.
_GLOSSARY: dict[str, tuple[str, str]] = {
    "hello": ("привет", "hallo"),
    "hi": ("привет", "hallo"),
    "goodbye": ("до свидания", "auf Wiedersehen"),
    "welcome": ("добро пожаловать", "willkommen"),
    "please": ("пожалуйста", "bitte"),
    "thanks": ("спасибо", "danke"),
    "yes": ("да", "ja"),
    "no": ("нет", "nein"),
    "and": ("и", "und"),
    "or": ("или", "oder"),
    "with": ("с", "mit"),
    "we": ("мы", "wir"),
    "good": ("хороший", "gut"),
    "bad": ("плохой", "schlecht"),
    "big": ("большой", "groß"),
    "small": ("маленький", "klein"),
    "new": ("новый", "neu"),
    "old": ("старый", "alt"),
    "world": ("мир", "Welt"),
    "day": ("день", "Tag"),
    "night": ("ночь", "Nacht"),
    "morning": ("утро", "Morgen"),
    "today": ("сегодня", "heute"),
    "tomorrow": ("завтра", "morgen"),
    "time": ("время", "Zeit"),
    "year": ("год", "Jahr"),
    "friend": ("друг", "Freund"),
    "house": ("дом", "Haus"),
    "city": ("город", "Stadt"),
    "water": ("вода", "Wasser"),
    "cat": ("кот", "Katze"),
    "dog": ("собака", "Hund"),
    "book": ("книга", "Buch"),
    "page": ("страница", "Seite"),
    "document": ("документ", "Dokument"),
    "file": ("файл", "Datei"),
    "text": ("текст", "Text"),
    "translation": ("перевод", "Übersetzung"),
    "language": ("язык", "Sprache"),
    "work": ("работа", "Arbeit"),
    "one": ("один", "eins"),
    "two": ("два", "zwei"),
    "three": ("три", "drei"),
}
_TARGET_COLUMN = {"ru": 0, "de": 1}
_WORD = re.compile(r"\b[A-Za-z]+\b")


class OfflineProvider:
    """Deterministic glossary "translation", prefixed ``[offline en→ru] ``."""

    def __init__(self, delay_ms: int = 0, sleep: Callable[[float], None] = time.sleep) -> None:
        if delay_ms < 0:
            raise ValueError(f"offline delay_ms must be >= 0, got {delay_ms}")
        self.name = "offline"
        self.delay_ms = delay_ms
        self._sleep = sleep

    def translate(self, text: str, source_lang: str, target_lang: str) -> str:
        # Nothing to translate: hand it back untouched so blank blocks stay blank.
        if not text.strip():
            return text
        # The delay simulates a slow model for load and timeout demos.
        if self.delay_ms:
            self._sleep(self.delay_ms / 1000)
        return f"[offline {source_lang}→{target_lang}] " + self._translate_words(
            text, source_lang, target_lang
        )

    @staticmethod
    def _translate_words(text: str, source_lang: str, target_lang: str) -> str:
        column = _TARGET_COLUMN.get(primary_language(target_lang))
        if column is None or primary_language(source_lang) not in ("en", "auto"):
            return text

        def replace(match: re.Match[str]) -> str:
            word = match.group(0)
            entry = _GLOSSARY.get(word.lower())
            if entry is None:
                return word
            translated = entry[column]
            if len(word) > 1 and word.isupper():
                return translated.upper()
            if word[0].isupper():
                return translated[0].upper() + translated[1:]
            return translated

        # Only letters are replaced, so punctuation and whitespace survive byte for byte.
        return _WORD.sub(replace, text)
