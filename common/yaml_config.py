"""Load YAML into a pydantic model with errors that name the file, the line
and the field, e.g. ``faults.yaml:7: http_errors.0.rate: Input should be ...``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message says where and why."""


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            match = node.value[key]
        else:
            match = None
        if match is None:
            # Not in the document: a union's tag or a model name pydantic puts in
            # the location. Skip it and keep following the rest of the path.
            continue
        node = match
        line = node.start_mark.line + 1
    return line


def parse_yaml_model(text: str, model: type[M], source: str = "<string>") -> M:
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(root, loc)
            field = ".".join(str(part) for part in loc) or "(top level)"
            problems.append(f"{source}:{line or '?'}: {field}: {err['msg']}")
        raise ConfigError("\n".join(problems)) from exc


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_yaml_model(text, model, source=str(path))
