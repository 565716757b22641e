"""The mandatory form: every field required, placeholders refused, each failing
field named; class-specific fields."""

from __future__ import annotations

import pytest

from postmortems.forms import NARRATIVE_FIELDS, PLACEHOLDERS, PostmortemForm, validate
from postmortems.models import IncidentClass
from tests.postmortems.conftest import COMPLETE

BRIEF_PLACEHOLDERS = [
    "TBD",
    "tbd",
    "n/a",
    "N/A",
    "-",
    "todo",
    "TODO",
    "?",
    "...",
    "none",
    "None",
    "FIXME",
    "later",
    "tba",
    "  TBD.  ",
    "<todo>",
    "[n/a]",
    "---",
    "???",
    "TODO: write this up",
    "tbd - later",
]


def _with(**changes: object) -> PostmortemForm:
    return PostmortemForm.model_validate({**COMPLETE.model_dump(), **changes})


def _fields(form: PostmortemForm, cls: IncidentClass = IncidentClass.other) -> list[str]:
    return [e.field for e in validate(form, cls)]


def test_a_complete_form_passes() -> None:
    assert validate(COMPLETE, IncidentClass.bad_release) == []


def test_an_empty_form_names_all_four_fields() -> None:
    errors = validate(PostmortemForm(), IncidentClass.other)
    assert [e.field for e in errors] == list(NARRATIVE_FIELDS)
    assert all(e.message == "required" for e in errors)


@pytest.mark.parametrize("name", list(NARRATIVE_FIELDS))
@pytest.mark.parametrize("value", ["", "   ", "\n\t ", *BRIEF_PLACEHOLDERS])
def test_every_placeholder_is_refused_in_every_field(name: str, value: str) -> None:
    errors = validate(_with(**{name: value}), IncidentClass.other)
    assert [e.field for e in errors] == [name]


def test_every_listed_placeholder_is_refused() -> None:
    for word in PLACEHOLDERS:
        assert _fields(_with(root_cause=word)) == ["root_cause"], word


@pytest.mark.parametrize("value", ["DNS", "bad code", "Release."])
def test_one_word_or_very_short_answers_are_refused(value: str) -> None:
    [error] = validate(_with(business_impact=value), IncidentClass.other)
    assert error.field == "business_impact"
    assert "too short" in error.message


def test_several_bad_fields_are_all_named_at_once() -> None:
    form = _with(root_cause="TBD", resolution="   ", conclusions="n/a")
    assert _fields(form) == ["root_cause", "resolution", "conclusions"]


def test_real_answers_that_mention_placeholder_words_pass() -> None:
    form = _with(
        root_cause="None of the replicas had memory alerts, so the script ran them dry.",
        conclusions="Later releases must be canaried; to do that the gate needs the node.",
    )
    assert _fields(form) == []


def test_bad_release_needs_release_id_and_rollback_time() -> None:
    form = _with(release_id=None, rolled_back_at=None)
    errors = validate(form, IncidentClass.bad_release)
    assert [e.field for e in errors] == ["release_id", "rolled_back_at"]
    assert "release" in errors[0].message


def test_release_id_placeholder_is_refused() -> None:
    assert _fields(_with(release_id="tbd"), IncidentClass.broken_functionality) == ["release_id"]


def test_broken_functionality_and_load_releases_need_the_release_id() -> None:
    for cls in (IncidentClass.broken_functionality, IncidentClass.bad_release_load):
        assert _fields(_with(release_id="", rolled_back_at=None), cls) == ["release_id"]


def test_external_cause_needs_the_dependency() -> None:
    errors = validate(_with(dependency="  "), IncidentClass.external_cause)
    assert [e.field for e in errors] == ["dependency"]
    assert "dependency" in errors[0].message
    assert _fields(_with(dependency="n/a"), IncidentClass.external_cause) == ["dependency"]


def test_other_classes_do_not_ask_for_release_or_dependency() -> None:
    form = _with(release_id=None, rolled_back_at=None, dependency=None)
    for cls in (IncidentClass.latent_bug, IncidentClass.failed_manual_intervention):
        assert _fields(form, cls) == []


def test_lessons_are_checked_too() -> None:
    form = _with(
        lessons=[{"kind": "do", "text": "Canary every release."}, {"kind": "dont", "text": "tbd"}]
    )
    assert _fields(form) == ["lessons.1"]
