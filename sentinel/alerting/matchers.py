"""Label matchers with Alertmanager's syntax and semantics.

``service="payments"``, ``severity=~"P0|P1"``, ``env!="staging"``, ``team!~"ops-.*"``.
Semantics follow Alertmanager (``pkg/labels``): regexes are fully anchored (``P0|P1``
never matches ``P10``), and a label the alert does not have counts as the empty string,
so ``team=""`` matches alerts without a team and ``team!=""`` those with one. The text
form is Alertmanager's too: values may be quoted (with ``\\"``, ``\\\\`` and ``\\n``
escapes) or bare, and a list may be written ``{a="b", c=~"d"}``.

Regexes are Python ``re`` patterns; the RE2 patterns Alertmanager accepts (no
backreferences or lookarounds) mean the same here.

Config models use ``MatcherList``: it takes a list of matcher strings, one string of
comma-separated matchers, or a mapping of equality matchers, and serialises back to a
list of strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, cast

from pydantic import BeforeValidator, PlainSerializer, PlainValidator, WithJsonSchema

__all__ = [
    "Matcher",
    "MatcherList",
    "Operator",
    "matches_all",
    "parse_matcher",
    "parse_matchers",
]

Operator = Literal["=", "!=", "=~", "!~"]
OPERATORS: tuple[Operator, ...] = ("=", "!=", "=~", "!~")

# Prometheus label names, plus the dots and dashes our own signal labels may carry.
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:.\-]*")
# '=~' before '=' so the tilde is not read as part of the value.
_MATCHER = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:.\-]*)\s*(=~|!=|!~|=)\s*(.*?)\s*", re.DOTALL)
_EXAMPLE = 'like service="payments" or severity=~"P0|P1"'


@dataclass(frozen=True)
class Matcher:
    """One condition on one label. Construction checks the name and compiles the regex."""

    name: str
    op: Operator
    value: str
    _regex: re.Pattern[str] | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"bad matcher {self._text()!r}: label name {self.name!r} is not a valid label "
                "name (letters, digits, '_', ':', '.', '-'; not starting with a digit)"
            )
        if self.op not in OPERATORS:
            raise ValueError(
                f"bad matcher {self._text()!r}: operator {self.op!r} is not one of =, !=, =~, !~"
            )
        if not isinstance(self.value, str):
            raise ValueError(f"bad matcher {self._text()!r}: value must be a string")
        if self.op in ("=~", "!~"):
            try:
                # The bare pattern first: "a)|(b" only compiles once wrapped, and the
                # error positions should point into what the user wrote.
                re.compile(self.value)
                compiled = re.compile(f"(?:{self.value})")
            except re.error as exc:
                raise ValueError(
                    f"bad matcher {self._text()!r}: invalid regular expression: {exc}"
                ) from exc
            object.__setattr__(self, "_regex", compiled)

    def _text(self) -> str:
        return f"{self.name}{self.op}{_quote(str(self.value))}"

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def matches_empty(self) -> bool:
        """Whether an alert without this label matches (a silence made only of such
        matchers would mute everything, so silences refuse them)."""
        return self.matches({})

    def __str__(self) -> str:
        return self._text()


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _unquote(raw: str, text: str) -> str:
    """Alertmanager's value rules: optional surrounding quotes; inside, ``\\"``,
    ``\\\\`` and ``\\n`` are escapes and a lone backslash is literal."""
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    out: list[str] = []
    i = 0
    closed = not quoted
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
            continue
        if char == '"':
            if not quoted or i != len(body) - 1:
                raise ValueError(
                    f"bad matcher {text!r}: unescaped double quote in the value "
                    '(write \\" inside a quoted value)'
                )
            closed = True
            i += 1
            continue
        out.append(char)
        i += 1
    if not closed:
        raise ValueError(f"bad matcher {text!r}: the value's closing double quote is missing")
    return "".join(out)


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher (``service="payments"``, ``severity=~P0|P1``)."""
    if not isinstance(text, str):
        raise ValueError(f"bad matcher {text!r}: expected a string {_EXAMPLE}")
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise ValueError(
            f"bad matcher {text!r}: expected a label name, an operator (=, !=, =~, !~) "
            f"and a value, {_EXAMPLE}"
        )
    name, op, raw = found.groups()
    return Matcher(name, cast(Operator, op), _unquote(raw, text))


def _split(text: str) -> list[str]:
    """Split at commas outside quoted values; ``{`` ``}`` and a trailing comma are
    optional."""
    body = text.strip()
    if body.startswith("{"):
        if not body.endswith("}"):
            raise ValueError(f"bad matchers {text!r}: '{{' without a closing '}}'")
        body = body[1:-1]
    tokens: list[str] = []
    current: list[str] = []
    inside = escaped = False
    for char in body:
        if char == "," and not inside:
            tokens.append("".join(current))
            current = []
            continue
        if char == '"' and not escaped:
            inside = not inside
        escaped = char == "\\" and not escaped
        current.append(char)
    tokens.append("".join(current))
    if tokens and not tokens[-1].strip():
        tokens.pop()  # "{a=b, }"
    for token in tokens:
        if not token.strip():
            raise ValueError(f"bad matchers {text!r}: empty matcher between commas")
    return tokens


def parse_matchers(value: str | Sequence[str | Matcher] | Mapping[str, Any]) -> list[Matcher]:
    """Matchers from a string (``{a="b", c=~"d"}`` or one matcher), a list of matcher
    strings (each may hold several, as in Alertmanager's config), or a mapping of
    label names to values (equality matchers)."""
    if isinstance(value, Matcher):
        return [value]
    if isinstance(value, str):
        return [parse_matcher(token) for token in _split(value)]
    if isinstance(value, Mapping):
        out: list[Matcher] = []
        for name, expected in value.items():
            if isinstance(expected, bool) or not isinstance(expected, str | int | float):
                raise ValueError(
                    f"bad matcher for label {name!r}: value must be a string, got {expected!r}"
                )
            out.append(Matcher(str(name), "=", str(expected)))
        return out
    if isinstance(value, Sequence):
        result: list[Matcher] = []
        for item in value:
            if isinstance(item, Matcher):
                result.append(item)
            elif isinstance(item, str):
                result.extend(parse_matchers(item))
            else:
                raise ValueError(f"bad matcher {item!r}: expected a string {_EXAMPLE}")
        return result
    raise ValueError(
        f"bad matchers {value!r}: expected a list of strings {_EXAMPLE}, "
        "or a mapping of label names to values"
    )


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (an empty list matches every alert)."""
    return all(m.matches(labels) for m in matchers)


# ------------------------------------------------------------------ pydantic type


def _one(value: Any) -> Matcher:
    if isinstance(value, Matcher):
        return value
    if isinstance(value, Mapping) and set(value) == {"name", "op", "value"}:
        return Matcher(value["name"], value["op"], value["value"])
    if not isinstance(value, str):
        raise ValueError(f"bad matcher {value!r}: expected a string {_EXAMPLE}")
    parsed = parse_matchers(value)
    if len(parsed) != 1:
        raise ValueError(f"bad matcher {value!r}: expected exactly one matcher here")
    return parsed[0]


def _many(value: Any) -> Any:
    """Normalise the accepted shapes into a list; items are checked one by one so an
    error names its position (``matchers.1``)."""
    if isinstance(value, str | Matcher):
        return parse_matchers(value)
    if isinstance(value, Mapping):
        return parse_matchers(value)
    if isinstance(value, list | tuple):
        out: list[Any] = []
        for item in value:
            # "a=b, c=d" in one list item means two matchers, as in Alertmanager.
            out.extend(_split(item) if isinstance(item, str) else [item])
        return out
    return value  # pydantic reports "Input should be a valid list"


MatcherItem = Annotated[
    Matcher,
    PlainValidator(_one),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ['service="payments"']}),
]
MatcherList = Annotated[list[MatcherItem], BeforeValidator(_many)]
