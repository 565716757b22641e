"""The mandatory postmortem form (seed 003 §6.2): root cause, how it was
eliminated, business impact, conclusions. Every field is required, and an
answer that only fills the box ("TBD", "n/a", "-", "todo"...) is refused.

``validate`` returns every failing field at once, so a person fixes the form
in one pass; the API answers 422 with that list, the web form shows each
message next to its field."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from common.bounds import Timestamp
from postmortems.models import IncidentClass

NARRATIVE_FIELDS: dict[str, str] = {
    "root_cause": "Root cause",
    "resolution": "How it was eliminated",
    "business_impact": "Business impact",
    "conclusions": "Conclusions",
}

# Answers that only fill the box. Compared after lower-casing and stripping
# surrounding punctuation, brackets and quotes: "TBD.", "<todo>", "N/A!" match.
PLACEHOLDERS = frozenset(
    {
        "tbd",
        "tba",
        "tbc",
        "todo",
        "to do",
        "fixme",
        "later",
        "n/a",
        "na",
        "n.a",
        "none",
        "nothing",
        "null",
        "nil",
        "unknown",
        "wip",
        "xxx",
        "test",
        "asdf",
        "see above",
        "same",
        "idk",
        "no",
        "yes",
        "ok",
        "-",
        "?",
        "...",
        "нет",
        "потом",
        "待定",
    }
)
# Words that make the whole answer a placeholder when they open it: "TODO: write".
PLACEHOLDER_OPENERS = ("tbd", "todo", "fixme", "tba", "tbc", "wip", "xxx")
_EDGE = " \t\r\n.,;:!?-_*#<>[](){}'\"`"

# A real answer to a narrative question takes more than a word: at least this
# many characters and two words ("bad release" is a class, not a root cause).
MIN_NARRATIVE_CHARS = 12
MIN_NARRATIVE_WORDS = 2


class FieldError(BaseModel):
    field: str
    message: str


class LessonIn(BaseModel):
    kind: Literal["do", "dont"]
    text: str


class PostmortemForm(BaseModel):
    """What a person submits. Everything optional here: ``validate`` says what is missing."""

    root_cause: str | None = None
    resolution: str | None = Field(default=None, description="how it was eliminated")
    business_impact: str | None = None
    conclusions: str | None = None
    # Class-specific: bad releases name the release (and a 500s release its rollback).
    release_id: str | None = Field(default=None, max_length=64)
    rolled_back_at: Timestamp | None = None
    # External cause: the dependency or provider that failed.
    dependency: str | None = Field(default=None, max_length=200)
    # Do's and don'ts for the registry.
    lessons: list[LessonIn] = []


def placeholder_problem(value: str | None) -> str | None:
    """Why ``value`` is no answer at all, or None when it is one."""
    if value is None or not value.strip():
        return "required"
    text = value.strip()
    core = text.lower().strip(_EDGE)
    if not re.search(r"\w", text) or core in PLACEHOLDERS:
        return f"{text!r} is a placeholder, not an answer"
    first = re.split(r"[\s:.,;!?-]+", core, maxsplit=1)[0]
    if first in PLACEHOLDER_OPENERS:
        return f"{text!r} is a placeholder, not an answer"
    return None


def narrative_problem(value: str | None) -> str | None:
    problem = placeholder_problem(value)
    if problem is not None:
        return problem
    text = (value or "").strip()
    words = re.findall(r"\w+", text)
    if len(text) < MIN_NARRATIVE_CHARS or len(words) < MIN_NARRATIVE_WORDS:
        return (
            f"too short to be an answer ({len(text)} characters): say what happened in "
            f"at least {MIN_NARRATIVE_WORDS} words and {MIN_NARRATIVE_CHARS} characters"
        )
    return None


def class_requirements(incident_class: IncidentClass) -> list[str]:
    """The class-specific form fields required for this class."""
    if incident_class == IncidentClass.bad_release:
        return ["release_id", "rolled_back_at"]
    if incident_class in (IncidentClass.bad_release_load, IncidentClass.broken_functionality):
        return ["release_id"]
    if incident_class == IncidentClass.external_cause:
        return ["dependency"]
    return []


_CLASS_FIELD_MESSAGES = {
    "release_id": "required for a bad release: the id of the release that caused it",
    "rolled_back_at": "required for a bad release with 500s: when it was rolled back",
    "dependency": "required for an external cause: the dependency or provider that failed",
}


def validate(form: PostmortemForm, incident_class: IncidentClass) -> list[FieldError]:
    """Every failing field of the form, in form order; empty when complete."""
    errors: list[FieldError] = []
    for name in NARRATIVE_FIELDS:
        problem = narrative_problem(getattr(form, name))
        if problem:
            errors.append(FieldError(field=name, message=problem))
    for name in class_requirements(incident_class):
        value = getattr(form, name)
        if value is None:
            errors.append(FieldError(field=name, message=_CLASS_FIELD_MESSAGES[name]))
        elif isinstance(value, str):
            problem = placeholder_problem(value)
            if problem:
                message = _CLASS_FIELD_MESSAGES[name] if problem == "required" else problem
                errors.append(FieldError(field=name, message=message))
    for i, lesson in enumerate(form.lessons):
        problem = narrative_problem(lesson.text)
        if problem:
            errors.append(FieldError(field=f"lessons.{i}", message=problem))
    return errors


def form_from_fields(fields: dict[str, str]) -> PostmortemForm:
    """The form as an HTML page posts it (every value a string; do's and don'ts one per
    line; times from ``datetime-local`` inputs, read as UTC). Raises pydantic's
    ValidationError on a value of the wrong shape (``errors_of`` names each field)."""
    lessons = [
        LessonIn(kind=kind, text=line.strip())
        for kind, name in (("do", "dos"), ("dont", "donts"))
        for line in (fields.get(name) or "").splitlines()
        if line.strip()
    ]
    try:
        rolled_back = parse_local_time(fields.get("rolled_back_at"))
    except ValueError:
        rolled_back = None  # the class rule then says it is missing, next to its field
    return PostmortemForm(
        root_cause=fields.get("root_cause"),
        resolution=fields.get("resolution"),
        business_impact=fields.get("business_impact"),
        conclusions=fields.get("conclusions"),
        release_id=fields.get("release_id") or None,
        rolled_back_at=rolled_back,
        dependency=fields.get("dependency") or None,
        lessons=lessons,
    )


def parse_local_time(value: str | None) -> datetime | None:
    """``datetime-local`` inputs are read as UTC (the pages say so)."""
    value = (value or "").strip()
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def errors_of(exc: ValidationError) -> list[FieldError]:
    """A pydantic refusal as one FieldError per field (a whole-model rule's message
    "field: message" is put on that field)."""
    out = []
    for e in exc.errors():
        message = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        field = ".".join(str(p) for p in e.get("loc", ()))
        if not field:
            head, sep, rest = message.partition(":")
            field, message = (
                (head, rest.strip()) if sep and head.isidentifier() else ("form", message)
            )
        out.append(FieldError(field=field, message=message))
    return out
