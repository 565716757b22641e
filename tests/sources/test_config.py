"""Source configuration: clear errors at load time, with paths the catalogue
loader turns into file:line: field."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from common.yaml_config import ConfigError, parse_yaml_model
from sentinel.sources import (
    PushSourceConfig,
    Reading,
    SeriesPoint,
    SourceConfig,
    SourceConfigError,
    SourceContext,
    SqlSource,
    SqlSourceConfig,
    build_source,
    parse_source_config,
)
from sentinel.sources.base import BackfillUnsupported, backfill
from sentinel.sources.sql import EXAMPLE_QUERIES, JOBS_PROCESSING_VS_CAPACITY_SQL


class Signal(BaseModel):
    name: str
    source: SourceConfig


class Catalogue(BaseModel):
    signals: list[Signal]


CATALOGUE = """\
signals:
  - name: fine
    source: {type: push}
  - name: writes
    source:
      type: sql
      window_seconds: 60
      query: |
        WITH gone AS (DELETE FROM payments RETURNING id)
        SELECT COUNT(*) AS value FROM gone
  - name: typo
    source:
      type: sqll
  - name: no_value
    source:
      type: sql
      window_seconds: 60
      query: SELECT COUNT(*) AS n FROM payments
  - name: bad_regex
    source:
      type: scrape
      selector: 'translator_http_requests_total{status=~"(5"}'
"""


def test_errors_name_the_line_and_the_field():
    with pytest.raises(ConfigError) as caught:
        parse_yaml_model(CATALOGUE, Catalogue, source="signals.yaml")
    assert str(caught.value).splitlines() == [
        "signals.yaml:8: signals.1.source.query: Value error, refused: DELETE inside a WITH "
        "clause; the query must only read",
        "signals.yaml:13: signals.2.source.type: source type 'sqll' is unknown; use one of: "
        "sql, scrape, promql, push, log",
        "signals.yaml:16: signals.3.source.value_column: Value error, the query returns no "
        "'value' column (it returns: n); alias the measured expression AS value",
        "signals.yaml:22: signals.4.source.selector.matchers.0: Value error, regex '(5' does "
        "not compile: missing ), unterminated subpattern at position 0",
    ]


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        ({"query": "SELECT 1 AS value; DROP TABLE payments"}, "query", "more than one statement"),
        ({"query": "SELECT :capacity AS value"}, "params", "uses :capacity"),
        ({"query": "SELECT 1 AS value", "params": {"start": 1}}, "params", "bound by the sentinel"),
        (
            {"query": "SELECT 1 AS v", "value_column": "v", "volume_column": "a b"},
            "volume_column",
            "not a plain identifier",
        ),
        ({"query": "SELECT 1 AS value", "window_seconds": 0}, "window_seconds", "greater than 0"),
        ({"query": "SELECT 1 AS value", "timeout": 3}, "timeout", "Extra inputs"),
        ({"window_seconds": 60}, "query", "Field required"),
    ],
)
def test_sql_config_errors(config, field, message):
    data = {"type": "sql", "window_seconds": 60, **config}
    with pytest.raises(ValidationError) as caught:
        parse_source_config(data)
    errors = caught.value.errors()
    assert errors[0]["loc"] == (field,) and message in errors[0]["msg"], errors


def test_configs_build_and_round_trip(ro_engine):
    config = parse_source_config(
        {
            "type": "sql",
            "query": JOBS_PROCESSING_VS_CAPACITY_SQL,
            "window_seconds": 60,
            "params": {"capacity": 4},
        }
    )
    assert isinstance(config, SqlSourceConfig)
    assert parse_source_config(config.model_dump()) == config
    assert isinstance(parse_source_config({"type": "push"}), PushSourceConfig)
    for sql in EXAMPLE_QUERIES.values():
        params = {"capacity": 2} if ":capacity" in sql else {}
        parse_source_config({"type": "sql", "query": sql, "window_seconds": 60, "params": params})

    source = build_source(config, SourceContext(translator_engine=ro_engine), signal="busy")
    assert isinstance(source, SqlSource) and source.name == "busy"
    with pytest.raises(SourceConfigError, match="no database 'translator'"):
        build_source(config, SourceContext())
    reports = parse_source_config(
        {"type": "sql", "query": "SELECT 1 AS value", "window_seconds": 1, "database": "reports"}
    )
    with pytest.raises(SourceConfigError, match=r"no database 'reports' .*known: translator"):
        build_source(reports, SourceContext(translator_engine=ro_engine))
    assert build_source(reports, SourceContext(databases={"reports": ro_engine}))
    with pytest.raises(SourceConfigError, match="without targets"):
        build_source(parse_source_config({"type": "scrape", "selector": "up"}), SourceContext())


def test_reading_invariants(clock):
    now = clock.now()
    with pytest.raises(ValueError, match="must say why"):
        Reading(now, ())
    with pytest.raises(ValueError, match="carries no points"):
        Reading(now, (SeriesPoint((), 1.0),), no_data="down")
    with pytest.raises(ValueError, match="timezone-aware"):
        Reading(now.replace(tzinfo=None), (), no_data="x")
    with pytest.raises(ValueError, match="finite"):
        SeriesPoint((), float("nan"))
    with pytest.raises(ValueError, match="sorted"):
        SeriesPoint((("b", "1"), ("a", "2")), 1.0)
    assert Reading.empty(now, "source down").no_data == "source down"


def test_backfill_needs_a_source_with_history(clock, sentinel_url):
    from datetime import timedelta

    from sentinel.db import Database
    from sentinel.sources import PushSource, PushStore

    push = PushSource(PushStore(Database(sentinel_url)), "s", timedelta(minutes=1))
    with pytest.raises(BackfillUnsupported, match="only sees the present"):
        backfill(push, clock.now(), clock.now(), timedelta(minutes=1))
    # A naive "now" is the caller's bug (local time or UTC?), not a source failure.
    with pytest.raises(ValueError, match="timezone-aware"):
        push.read(clock.now().replace(tzinfo=None))
