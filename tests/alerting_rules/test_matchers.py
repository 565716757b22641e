"""Label matchers: Alertmanager's text syntax, its matching semantics, and the
pydantic ``MatcherList`` type config files use."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from common.yaml_config import ConfigError, parse_yaml_model
from sentinel.alerting.matchers import (
    Matcher,
    MatcherList,
    matches_all,
    parse_matcher,
    parse_matchers,
)

PARSED: list[tuple[str, str, str, str]] = [
    ('service="payments"', "service", "=", "payments"),
    ("service=payments", "service", "=", "payments"),
    ('  service  =  "payments"  ', "service", "=", "payments"),
    ('severity=~"P0|P1"', "severity", "=~", "P0|P1"),
    ("severity=~P0|P1", "severity", "=~", "P0|P1"),
    ('env!="staging"', "env", "!=", "staging"),
    ('team!~"ops-.*"', "team", "!~", "ops-.*"),
    ('team=""', "team", "=", ""),
    ("team=", "team", "=", ""),
    (r'quote="She said: \"Hi\""', "quote", "=", 'She said: "Hi"'),
    (r'path="C:\\temp"', "path", "=", "C:\\temp"),
    (r'text="two\nlines"', "text", "=", "two\nlines"),
    (r"re=~\d+", "re", "=~", r"\d+"),  # a lone backslash stays literal
    ('signal="database.down"', "signal", "=", "database.down"),
    ('k8s.pod_name="api-1"', "k8s.pod_name", "=", "api-1"),
    ('value="a=b"', "value", "=", "a=b"),
]


@pytest.mark.parametrize(("text", "name", "op", "value"), PARSED)
def test_parse_one(text: str, name: str, op: str, value: str) -> None:
    assert parse_matcher(text) == Matcher(name, op, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("service", "expected a label name, an operator"),
        ('="payments"', "expected a label name, an operator"),
        ('1service="x"', "expected a label name, an operator"),
        ('service<>"x"', "expected a label name, an operator"),
        ('service="pay"ments"', "unescaped double quote"),
        ('service=="x"', "unescaped double quote"),
        ('service="payments', "closing double quote is missing"),
        ('severity=~"(P0"', "invalid regular expression"),
        ('severity!~"a)|(b"', "invalid regular expression"),
        ('severity=~"*"', "invalid regular expression"),
    ],
)
def test_bad_matchers_say_what_and_where(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_matcher(text)
    message = str(caught.value)
    assert repr(text) in message or text in message
    assert fragment in message


SEMANTICS: list[tuple[str, dict[str, str], bool]] = [
    ('service="payments"', {"service": "payments"}, True),
    ('service="payments"', {"service": "billing"}, False),
    ('service="payments"', {}, False),
    ('service!="payments"', {}, True),
    ('service!="payments"', {"service": "payments"}, False),
    # A missing label is the empty string.
    ('team=""', {}, True),
    ('team=""', {"team": "ops"}, False),
    ('team!=""', {}, False),
    ('team!=""', {"team": "ops"}, True),
    ('team=~".*"', {}, True),
    ('team=~".+"', {}, False),
    # Regexes are anchored at both ends, around the whole alternation.
    ('severity=~"P0|P1"', {"severity": "P1"}, True),
    ('severity=~"P0|P1"', {"severity": "P10"}, False),
    ('severity=~"P0|P1"', {"severity": "xP0"}, False),
    ('severity=~"P"', {"severity": "P0"}, False),
    ('severity!~"P0|P1"', {"severity": "P2"}, True),
    ('severity!~"P0|P1"', {"severity": "P0"}, False),
    ('severity!~"P0|P1"', {}, True),
    ('route=~"/api/.*"', {"route": "/api/jobs"}, True),
    ('route=~"/api/.*"', {"route": "/health"}, False),
    ('route=~"/api/.*"', {"route": "/api/jobs\nx"}, False),
    ('signal=~"queue\\..*"', {"signal": "queue.lag"}, True),
    ('signal=~"queue\\..*"', {"signal": "queuelag"}, False),
]


@pytest.mark.parametrize(("matcher", "labels", "expected"), SEMANTICS)
def test_semantics(matcher: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(matcher).matches(labels) is expected


def test_lists_in_every_shape() -> None:
    expected = [Matcher("service", "=", "payments"), Matcher("severity", "=~", "P0|P1")]
    assert parse_matchers('{service="payments", severity=~"P0|P1"}') == expected
    assert parse_matchers('{service="payments",severity=~"P0|P1",}') == expected
    assert parse_matchers("service=payments, severity=~P0|P1") == expected
    assert parse_matchers(['service="payments"', 'severity=~"P0|P1"']) == expected
    assert parse_matchers({"service": "payments", "code": 500}) == [
        Matcher("service", "=", "payments"),
        Matcher("code", "=", "500"),
    ]
    # Commas inside quoted values do not split.
    assert parse_matchers('{msg="a, b", x="1"}') == [
        Matcher("msg", "=", "a, b"),
        Matcher("x", "=", "1"),
    ]
    assert parse_matchers("") == [] and parse_matchers("{}") == []


def test_bad_lists() -> None:
    with pytest.raises(ValueError, match="without a closing"):
        parse_matchers('{service="payments"')
    with pytest.raises(ValueError, match="empty matcher between commas"):
        parse_matchers("a=b,,c=d")
    with pytest.raises(ValueError, match="value must be a string"):
        parse_matchers({"service": ["payments"]})
    with pytest.raises(ValueError, match="expected a string"):
        parse_matchers([3])  # type: ignore[list-item]


def test_matches_all() -> None:
    labels = {"service": "payments", "severity": "P1"}
    assert matches_all([], labels) and matches_all([], {})
    assert matches_all(parse_matchers('service="payments", severity=~"P0|P1"'), labels)
    assert not matches_all(parse_matchers('service="payments", severity="P0"'), labels)


def test_text_form_round_trips() -> None:
    for text in ['service="payments"', 'severity=~"P0|P1"', r'q="say \"hi\"\n\\"']:
        assert str(parse_matcher(text)) == text
    assert str(Matcher("team", "!~", "ops-.*")) == 'team!~"ops-.*"'


@given(
    name=st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True),
    op=st.sampled_from(["=", "!="]),
    value=st.text(max_size=20),
)
def test_any_value_round_trips(name: str, op: str, value: str) -> None:
    matcher = Matcher(name, op, value)  # type: ignore[arg-type]
    assert parse_matcher(str(matcher)) == matcher
    # ... also inside a braced list, where commas and braces must not confuse it.
    assert parse_matchers("{" + str(matcher) + ", other=x}") == [
        matcher,
        Matcher("other", "=", "x"),
    ]


def test_matchers_are_values() -> None:
    a, b = parse_matcher("a=~x|y"), parse_matcher('a=~"x|y"')
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(ValueError, match="operator"):
        Matcher("a", "==", "b")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a valid label name"):
        Matcher("bad name", "=", "b")


class Route(BaseModel):
    matchers: MatcherList = []


def test_matcher_list_in_a_model() -> None:
    assert Route().matchers == []
    route = Route(matchers=['service="payments"', "severity=~P0|P1, team!=ops"])
    assert [str(m) for m in route.matchers] == [
        'service="payments"',
        'severity=~"P0|P1"',
        'team!="ops"',
    ]
    assert Route(matchers='{service="payments"}').matchers == [Matcher("service", "=", "payments")]
    assert Route(matchers={"service": "payments"}).matchers == [Matcher("service", "=", "payments")]
    # Serialises to strings that validate back to the same matchers.
    dumped = route.model_dump(mode="json")
    assert dumped == {"matchers": ['service="payments"', 'severity=~"P0|P1"', 'team!="ops"']}
    assert Route.model_validate_json(route.model_dump_json()) == route
    assert Route.model_json_schema()["properties"]["matchers"]["items"]["type"] == "string"


def test_matcher_list_errors_name_the_field_and_position() -> None:
    with pytest.raises(ValidationError) as caught:
        Route(matchers=['service="payments"', 'severity=~"(P0"'])
    (error,) = caught.value.errors()
    assert error["loc"] == ("matchers", 1)
    assert "invalid regular expression" in error["msg"] and "(P0" in error["msg"]
    with pytest.raises(ValidationError) as caught:
        Route(matchers=5)
    assert caught.value.errors()[0]["loc"] == ("matchers",)


def test_yaml_errors_name_file_line_and_field() -> None:
    text = 'matchers:\n  - service="payments"\n  - severity=~"P0|"P1"\n'
    with pytest.raises(ConfigError) as caught:
        parse_yaml_model(text, Route, source="alerting.yaml")
    message = str(caught.value)
    assert "alerting.yaml:3" in message and "matchers.1" in message
    assert "unescaped double quote" in message
