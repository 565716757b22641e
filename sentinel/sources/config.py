"""Source configuration (the ``source:`` block of a signal in the catalogue)
and ``build_source``, which turns it into a running source.

The models refuse bad configuration at load time with plain pydantic
validation errors, so the catalogue loader can report file, line and field:
a SQL query that is not a single read-only SELECT, a ratio without a
denominator, a regex that does not compile, and so on."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import Engine

from sentinel.sources.base import Source
from sentinel.sources.log_lines import LogLineSource
from sentinel.sources.promql import PromQLSource
from sentinel.sources.push import SIGNAL_NAME, PushSource, PushStore
from sentinel.sources.scrape import ScrapeSource
from sentinel.sources.sql import SqlSource
from sentinel.sources.sql_guard import RESERVED_BINDS, validate_select

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$", re.DOTALL)
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')

MAX_WINDOW_SECONDS = 90 * 86400


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- sql ------------------------------------------------------------------------


class SqlSourceConfig(_Config):
    """A read-only SELECT over ``[now - window_seconds, now)`` (binds ``:start``,
    ``:end``); ``value`` column, optional ``volume``, other columns are labels."""

    type: Literal["sql"] = "sql"
    query: str
    window_seconds: float = Field(gt=0, le=MAX_WINDOW_SECONDS)
    value_column: str = Field(default="value", validate_default=True)
    volume_column: str = "volume"
    database: str = "translator"
    # Extra named binds, e.g. {capacity: 4} for :capacity.
    params: dict[str, float | int | str | bool] = Field(default_factory=dict, validate_default=True)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_rows: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        validate_select(value)  # SqlGuardError is a ValueError: reported on this field
        return value

    @field_validator("value_column", "volume_column", "database")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a plain identifier (letters, digits, '_')")
        return value

    @field_validator("value_column")
    @classmethod
    def _value_returned(cls, value: str, info: ValidationInfo) -> str:
        query = info.data.get("query")
        if query is None:
            return value  # the query itself was refused; that error is reported
        columns = validate_select(query).columns
        if columns is not None and value.lower() not in {c.lower() for c in columns}:
            raise ValueError(
                f"the query returns no {value!r} column (it returns: {', '.join(columns)}); "
                f"alias the measured expression AS {value}"
            )
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        for name in value:
            if name in ("start", "end") or name in RESERVED_BINDS:
                raise ValueError(f"{name!r} is bound by the sentinel; choose another name")
            if not IDENTIFIER.match(name):
                raise ValueError(f"{name!r} is not a plain identifier")
        query = info.data.get("query")
        if query is not None:
            missing = validate_select(query).binds - {"start", "end"} - value.keys()
            if missing:
                names = ", ".join(f":{m}" for m in sorted(missing))
                raise ValueError(f"the query uses {names}; give a value for each under params")
        return value


# --- scrape ---------------------------------------------------------------------


class LabelMatcher(_Config):
    """``label="v"``, ``label!="v"``, ``label=~"re"``, ``label!~"re"`` (regexes are
    anchored, as in PromQL). Also written as the string ``'status=~"5.."'``."""

    label: str
    op: Literal["=", "!=", "=~", "!~"] = "="
    value: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            match = _MATCHER.fullmatch(data)
            if not match:
                raise ValueError(f'{data!r} is not a label matcher such as status=~"5.."')
            return {"label": match[1], "op": match[2], "value": _unescape(match[3])}
        return data

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not LABEL_NAME.match(value):
            raise ValueError(f"{value!r} is not a label name")
        return value

    @model_validator(mode="after")
    def _regex(self) -> LabelMatcher:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"regex {self.value!r} does not compile: {exc}") from None
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def describe(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op}"{escaped}"'


class MetricSelector(_Config):
    """A metric name and label matchers; also written as a PromQL-style string
    ``'translator_http_requests_total{status=~"5..", route!="/metrics"}'``.
    Matchers may be a list (strings or objects) or a mapping of equalities."""

    metric: str
    matchers: list[LabelMatcher] = []

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            match = _SELECTOR.fullmatch(data)
            if not match:
                raise ValueError(f'{data!r} is not a selector such as name{{label="value"}}')
            return {"metric": match[1], "matchers": _split_matchers(match[2] or "")}
        if isinstance(data, dict) and isinstance(data.get("matchers"), dict):
            eq = [{"label": k, "op": "=", "value": v} for k, v in data["matchers"].items()]
            return {**data, "matchers": eq}
        return data

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if not METRIC_NAME.match(value):
            raise ValueError(f"{value!r} is not a Prometheus metric name")
        return value

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def describe(self) -> str:
        inner = ", ".join(m.describe() for m in self.matchers)
        return f"{self.metric}{{{inner}}}" if inner else self.metric


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _split_matchers(text: str) -> list[str]:
    if not text.strip():
        return []
    parts: list[str] = []
    pos = 0
    while pos < len(text):
        match = _MATCHER.match(text, pos)
        if not match:
            raise ValueError(f"cannot read label matchers at {text[pos:]!r}")
        parts.append(match.group(0).strip())
        pos = match.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ValueError(f"expected ',' between label matchers at {text[pos:]!r}")
            pos += 1
    return parts


def _check_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} {value!r} is not an http(s) URL")
    return value


class ScrapeSourceConfig(_Config):
    """Read ``/metrics`` targets directly; see ``sentinel.sources.scrape``."""

    type: Literal["scrape"] = "scrape"
    targets: list[str] = []  # empty: the sentinel's default targets of the job
    # Which default targets: the translator's /metrics, or the node exporters of its hosts.
    job: Literal["translator", "node"] = "translator"
    selector: MetricSelector
    function: Literal["value", "rate", "ratio", "quantile", "gauge_ratio"] = "value"
    by: list[str] = []
    denominator: MetricSelector | None = None  # functions ratio and gauge_ratio
    # 1 - ratio: the used share from "available / total" gauges (memory, disk).
    complement: bool = False
    quantile: float | None = Field(default=None, ge=0, le=1)  # function: quantile
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        return [_check_url(v, "target") for v in value]

    @field_validator("by")
    @classmethod
    def _by(cls, value: list[str]) -> list[str]:
        for name in value:
            if not LABEL_NAME.match(name):
                raise ValueError(f"{name!r} is not a label name")
        return value

    @model_validator(mode="after")
    def _function(self) -> ScrapeSourceConfig:
        ratios = ("ratio", "gauge_ratio")
        if self.function in ratios and self.denominator is None:
            raise ValueError(f"function {self.function!r} needs a denominator selector")
        if self.function not in ratios and self.denominator is not None:
            raise ValueError(
                f"denominator is only used by function 'ratio' or 'gauge_ratio', "
                f"not {self.function!r}"
            )
        if self.complement and self.function not in ratios:
            raise ValueError(
                f"complement (1 - ratio) is only used by ratios, not {self.function!r}"
            )
        if self.function == "quantile":
            if self.quantile is None:
                raise ValueError("function 'quantile' needs quantile, e.g. 0.95")
            if "le" in self.by:
                raise ValueError("'le' is the bucket label; a quantile cannot be split by it")
        elif self.quantile is not None:
            raise ValueError(f"quantile is only used by function 'quantile', not {self.function!r}")
        return self


# --- promql ---------------------------------------------------------------------


class PromQLSourceConfig(_Config):
    """An instant query against Prometheus (range queries for backfill)."""

    type: Literal["promql"] = "promql"
    query: str = Field(min_length=1, max_length=10_000)
    volume_query: str | None = Field(default=None, min_length=1, max_length=10_000)
    by: list[str] | None = None  # None: every label of the result but __name__
    url: str | None = None  # None: the sentinel's Prometheus URL
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, "url")

    @field_validator("by")
    @classmethod
    def _by(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if not LABEL_NAME.match(name):
                raise ValueError(f"{name!r} is not a label name")
        return value


# --- push -----------------------------------------------------------------------


class PushSourceConfig(_Config):
    """Values pushed to the sentinel's API for this signal."""

    type: Literal["push"] = "push"
    signal: str | None = None  # None: the catalogue signal's own name
    window_seconds: float = Field(default=300, gt=0, le=MAX_WINDOW_SECONDS)
    aggregate: Literal["latest", "sum"] = "latest"

    @field_validator("signal")
    @classmethod
    def _signal(cls, value: str | None) -> str | None:
        if value is not None and not SIGNAL_NAME.match(value):
            raise ValueError(f"{value!r} is not a signal name")
        return value


# --- log ------------------------------------------------------------------------

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LOGGER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class LogSourceConfig(_Config):
    """Lines of given levels in a log file over a window; see ``sentinel.sources.log_lines``."""

    type: Literal["log"] = "log"
    path: str | None = Field(default=None, min_length=1)  # None: the sentinel's translator log
    levels: list[LogLevel] = Field(default_factory=lambda: ["ERROR", "CRITICAL"], min_length=1)
    # Logger-name prefixes ("translator" keeps translator.jobs.queue); empty keeps every line.
    loggers: list[str] = []
    window_seconds: float = Field(default=300, gt=0, le=86400)

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a level is listed twice")
        return value

    @field_validator("loggers")
    @classmethod
    def _loggers(cls, value: list[str]) -> list[str]:
        for name in value:
            if not LOGGER_NAME.match(name):
                raise ValueError(f"{name!r} is not a logger name such as translator.jobs")
        return value


AnySourceConfig = (
    SqlSourceConfig | ScrapeSourceConfig | PromQLSourceConfig | PushSourceConfig | LogSourceConfig
)
SOURCE_TYPES: dict[str, type[AnySourceConfig]] = {
    "sql": SqlSourceConfig,
    "scrape": ScrapeSourceConfig,
    "promql": PromQLSourceConfig,
    "push": PushSourceConfig,
    "log": LogSourceConfig,
}


def _validate_source(data: Any) -> AnySourceConfig:
    """Dispatch on ``type`` by hand rather than with a pydantic discriminator: the
    errors then read ``source.query`` instead of ``source.sql.query``, a path the
    catalogue loader can follow to the offending YAML line."""
    if isinstance(data, tuple(SOURCE_TYPES.values())):
        return data  # type: ignore[return-value]
    if not isinstance(data, Mapping):
        raise ValueError(f"a source is a mapping with a type ({', '.join(SOURCE_TYPES)})")
    kind = data.get("type")
    model = SOURCE_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        problem = "is missing" if kind is None else f"{kind!r} is unknown"
        error = PydanticCustomError(
            "source_type",
            "source type {problem}; use one of: {known}",
            {"problem": problem, "known": ", ".join(SOURCE_TYPES)},
        )
        raise ValidationError.from_exception_data(
            "SourceConfig", [{"type": error, "loc": ("type",), "input": kind}]
        )
    return model.model_validate(data)  # its ValidationError keeps field paths under source


SourceConfig = Annotated[AnySourceConfig, BeforeValidator(_validate_source)]
SOURCE_CONFIG: TypeAdapter[AnySourceConfig] = TypeAdapter(SourceConfig)


def parse_source_config(data: Any) -> AnySourceConfig:
    """Validate a plain mapping (raises pydantic.ValidationError)."""
    return SOURCE_CONFIG.validate_python(data)


# --- building ---------------------------------------------------------------------


def default_http_client(timeout_seconds: float) -> httpx.Client:
    # Sources talk to local services; proxies from the environment would only get in the way.
    return httpx.Client(timeout=timeout_seconds, trust_env=False, follow_redirects=False)


class SourceConfigError(ValueError):
    """A source cannot be built with what the sentinel was given."""


@dataclass(frozen=True)
class SourceContext:
    """What sources need from outside, built once by the sentinel."""

    translator_engine: Engine | None = None  # read-only (common.db.make_engine(read_only=True))
    translator_database_url: str | None = None  # named (password hidden) when it cannot be read
    databases: Mapping[str, Engine] = field(default_factory=dict)  # other named databases
    prometheus_url: str | None = None
    scrape_targets: Sequence[str] = ()
    node_targets: Sequence[str] = ()  # node exporters of the hosts (scrape job "node")
    translator_log_file: Path | None = None  # log sources without a path of their own
    push_buffer: PushStore | None = None  # where pushed values are stored
    http_client_factory: Callable[[float], httpx.Client] = default_http_client

    def engine(self, database: str) -> Engine:
        if database in self.databases:
            return self.databases[database]
        if database == "translator" and self.translator_engine is not None:
            return self.translator_engine
        known = sorted({*self.databases, *(["translator"] if self.translator_engine else [])})
        raise SourceConfigError(
            f"no database {database!r} is configured for sql sources"
            + (f" (known: {', '.join(known)})" if known else "")
        )


def build_source(
    config: AnySourceConfig,
    context: SourceContext,
    *,
    signal: str | None = None,
) -> Source:
    """A source for ``config``; ``signal`` names it in logs (and is the push key
    unless the config names another). Raises ``SourceConfigError`` when the
    context lacks what the source needs."""
    name = signal or config.type
    if isinstance(config, SqlSourceConfig):
        return SqlSource(
            context.engine(config.database),
            validate_select(config.query),
            timedelta(seconds=config.window_seconds),
            value_column=config.value_column,
            volume_column=config.volume_column,
            params=config.params,
            timeout_seconds=config.timeout_seconds,
            max_rows=config.max_rows,
            name=name,
            database=config.database,
            database_url=(
                context.translator_database_url if config.database == "translator" else None
            ),
        )
    if isinstance(config, ScrapeSourceConfig):
        defaults = context.node_targets if config.job == "node" else context.scrape_targets
        targets = config.targets or list(defaults)
        if not targets:
            raise SourceConfigError(
                f"{name}: scrape source without targets, and no default targets are set "
                f"for job {config.job!r}"
            )
        return ScrapeSource(
            context.http_client_factory(config.timeout_seconds),
            targets,
            config.selector,
            function=config.function,
            by=config.by,
            denominator=config.denominator,
            complement=config.complement,
            quantile=config.quantile,
            name=name,
        )
    if isinstance(config, PromQLSourceConfig):
        url = config.url or context.prometheus_url
        if not url:
            raise SourceConfigError(
                f"{name}: promql source needs a Prometheus URL (source url, or the "
                "sentinel's prometheus_url setting)"
            )
        return PromQLSource(
            context.http_client_factory(config.timeout_seconds),
            url,
            config.query,
            by=config.by,
            volume_query=config.volume_query,
            timeout_seconds=config.timeout_seconds,
            name=name,
        )
    if isinstance(config, PushSourceConfig):
        if context.push_buffer is None:
            raise SourceConfigError(f"{name}: push source needs the sentinel's push store")
        key = config.signal or signal
        if not key:
            raise SourceConfigError("push source needs a signal name (config signal or signal=)")
        return PushSource(
            context.push_buffer,
            key,
            timedelta(seconds=config.window_seconds),
            aggregate=config.aggregate,
        )
    if isinstance(config, LogSourceConfig):
        path = Path(config.path) if config.path else context.translator_log_file
        if path is None:
            raise SourceConfigError(
                f"{name}: log source needs a file (source path, or the sentinel's "
                "translator_log_file setting)"
            )
        return LogLineSource(
            path,
            config.levels,
            timedelta(seconds=config.window_seconds),
            loggers=config.loggers,
            name=name,
        )
    raise SourceConfigError(f"unknown source config {type(config).__name__}")
