"""How the sentinel reads business signals: SQL over the translator's
database, Prometheus scrapes, PromQL, pushed values, and log files.

Every source answers ``read(now) -> Reading``; a failure or an empty answer is
a no-data reading with the reason, never an exception and never a zero."""

from sentinel.sources.base import (
    BackfillUnsupported,
    Labels,
    RangeSource,
    Reading,
    SeriesPoint,
    Source,
    backfill,
    labels_of,
)
from sentinel.sources.config import (
    LabelMatcher,
    LogSourceConfig,
    MetricSelector,
    PromQLSourceConfig,
    PushSourceConfig,
    ScrapeSourceConfig,
    SourceConfig,
    SourceConfigError,
    SourceContext,
    SqlSourceConfig,
    build_source,
    parse_source_config,
)
from sentinel.sources.log_lines import LogLineSource
from sentinel.sources.log_tail import LogTail
from sentinel.sources.promql import PromQLSource
from sentinel.sources.push import PushBufferFull, PushSource, PushStore, PushValidationError
from sentinel.sources.scrape import ScrapeSource
from sentinel.sources.sql import SqlSource
from sentinel.sources.sql_guard import CheckedSelect, SqlGuardError, validate_select

__all__ = [
    "BackfillUnsupported",
    "CheckedSelect",
    "LabelMatcher",
    "Labels",
    "LogLineSource",
    "LogSourceConfig",
    "LogTail",
    "MetricSelector",
    "PromQLSource",
    "PromQLSourceConfig",
    "PushStore",
    "PushBufferFull",
    "PushSource",
    "PushSourceConfig",
    "PushValidationError",
    "RangeSource",
    "Reading",
    "ScrapeSource",
    "ScrapeSourceConfig",
    "SeriesPoint",
    "Source",
    "SourceConfig",
    "SourceConfigError",
    "SourceContext",
    "SqlGuardError",
    "SqlSource",
    "SqlSourceConfig",
    "backfill",
    "build_source",
    "labels_of",
    "parse_source_config",
    "validate_select",
]
