"""Reading recorded samples from JSON, with errors that say what is wrong and where."""

from __future__ import annotations

import json

from pydantic import ValidationError

from release_gate.judge.models import JudgeInput


class JudgeInputError(ValueError):
    """The input is not valid judge input; the message names the field."""


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def parse_judge_input(text: str, source: str = "input") -> JudgeInput:
    """Parse ``{"canary": [...], "control": [...]}``; raise JudgeInputError naming the problem."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JudgeInputError(
            f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from exc
    if not isinstance(raw, dict):
        raise JudgeInputError(
            f'{source}: expected a JSON object {{"canary": [...], "control": [...]}}, '
            f"got {type(raw).__name__}"
        )
    try:
        return JudgeInput.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_location(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise JudgeInputError(f"{source}: " + "; ".join(problems)) from exc
