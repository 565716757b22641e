"""SMS length as a phone network counts it: GSM 03.38 septets.

A text made only of the GSM-7 alphabet fits 160 septets in one segment (the
extension characters ``{}[]~|^\\€`` cost two each); one character outside it
and the whole SMS goes as UCS-2, 70 characters a segment."""

from __future__ import annotations

_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENSION = frozenset("\f^{}\\[~]|€")

SEGMENT_SEPTETS = 160  # one GSM-7 segment
SEGMENT_UCS2 = 70  # one segment once any character is outside GSM-7


def septets(text: str) -> int | None:
    """Septets ``text`` takes in GSM-7, or None when it cannot be sent as GSM-7."""
    total = 0
    for char in text:
        if char in _BASIC:
            total += 1
        elif char in _EXTENSION:
            total += 2
        else:
            return None
    return total


def segments(text: str) -> int:
    """How many SMS segments ``text`` is billed and delivered as."""
    count = septets(text)
    if count is not None:
        return 1 if count <= SEGMENT_SEPTETS else -(-count // 153)  # 7 septets of header each
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= SEGMENT_UCS2 else -(-units // 67)


def to_gsm(text: str) -> str:
    """``text`` with the common typographic characters the alert words use
    spelled in GSM-7, so that they alone do not turn an SMS into UCS-2."""
    for fancy, plain in _PLAIN.items():
        text = text.replace(fancy, plain)
    return text


_PLAIN = {"≤": "<=", "≥": ">=", "–": "-", "—": "-", "…": "...", "×": "x", "’": "'", "·": "-"}
