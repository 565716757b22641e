"""Incident titles: always under 80 characters, readable in a list, an SMS or a
Slack line. Titles the platform makes are shortened with "…"; a title a person
types is refused when too long (they choose the words, we do not cut them).

Pure: text in, text out."""

from __future__ import annotations

from collections.abc import Sequence

TITLE_LIMIT = 80  # a title is strictly shorter than this
MAX_TITLE_CHARS = TITLE_LIMIT - 1
ELLIPSIS = "…"
# Where a cut may go back to the previous word instead of splitting one.
_WORD_SLACK = 20


def title_problem(title: str) -> str | None:
    """Why a person's title is refused, or None when it fits."""
    if len(title) >= TITLE_LIMIT:
        return f"must be under {TITLE_LIMIT} characters (this one has {len(title)})"
    return None


def fit_title(text: str, limit: int = MAX_TITLE_CHARS) -> str:
    """``text`` on one line, cut to at most ``limit`` characters with "…", at a
    word boundary when one is near (a made title never fails for its length)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= len(cut) - _WORD_SLACK and space > 0:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–(/[{") + ELLIPSIS


def series_text(signal: str, labels: dict[str, str]) -> str:
    """``http.error_ratio{route=/api/jobs}``: the signal and what tells its series
    apart (the service label is said elsewhere in the title)."""
    shown = {k: v for k, v in labels.items() if k != "service" and v}
    if not shown:
        return signal
    return signal + "{" + ",".join(f"{k}={v}" for k, v in sorted(shown.items())) + "}"


def compose_title(severity: str, service: str, subjects: Sequence[str]) -> str:
    """What an incident holds, most important first: "P0: http.error_ratio on
    translator", "P0: bad release 1.4.2 and http.error_ratio on translator",
    "P0: http.error_ratio and 2 more on translator". Always under the limit."""
    distinct = list(dict.fromkeys(s for s in subjects if s))
    tail = f" on {service}"
    if not distinct:
        return fit_title(f"{severity}: incident{tail}")
    first, rest = distinct[0], distinct[1:]
    if len(rest) == 1:
        # Both named, dropping their series' labels if that is what it takes.
        for a, b in ((first, rest[0]), (first, _bare(rest[0])), (_bare(first), _bare(rest[0]))):
            both = f"{severity}: {a} and {b}{tail}"
            if len(both) <= MAX_TITLE_CHARS:
                return both
    more = f" and {len(rest)} more" if rest else ""
    room = MAX_TITLE_CHARS - len(f"{severity}: ") - len(more) - len(tail)
    if len(first) > room:
        first = _bare(first)
    if room >= 12:  # enough left to name the first subject
        return f"{severity}: {fit_title(first, room)}{more}{tail}"
    return fit_title(f"{severity}: {first}{more}{tail}")


def _bare(subject: str) -> str:
    """``http.error_ratio{route=/api/jobs}`` without its labels."""
    return subject.split("{", 1)[0] or subject
