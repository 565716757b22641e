"""Sentinel configuration, from ``SENTINEL_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CATALOGUE = Path(__file__).parent / "catalogue" / "default.yaml"


class SentinelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENTINEL_", extra="ignore")

    # The sentinel's own records: samples, alerts, tunings, leases.
    database_url: str = "sqlite:///var/sentinel.db"
    # The watched service's database, opened read-only for `sql` signals.
    translator_database_url: str = "sqlite:///var/translator.db"
    catalogue: Path = DEFAULT_CATALOGUE
    # `scrape` signals without targets of their own scrape these.
    scrape_targets: list[str] = ["http://127.0.0.1:8000/metrics"]
    prometheus_url: str | None = None
    # Node exporters of the hosts the platform runs on (scrape signals of job "node").
    node_targets: list[str] = ["http://127.0.0.1:9100/metrics"]
    # The translator's log file (its TRANSLATOR_LOG_FILE), read by `log` signals.
    translator_log_file: Path = Path("var/translator.log")

    replica: str | None = None  # defaults to host:pid
    lease_seconds: float = 15.0
    tick_seconds: float = 1.0

    raw_retention_days: int = 35
    rollup_retention_days: int = 400
    history_warmup_days: int = 28
    # Signals that can read the past and have no samples are filled this far back when a
    # replica takes the lead (in the background; 0 turns it off).
    backfill_days: float = 14
    log_level: str = "INFO"

    # Alerting: routes, schedules, escalation (sentinel/alerting/examples/alerting.yaml).
    alerting: Path | None = None
    # Where Twilio and Slack reach this sentinel (keypad, delivery receipts, buttons).
    public_url: str = "http://127.0.0.1:8100"
    # Without credentials every channel writes to the console outbox instead.
    outbox_file: Path = Path("var/outbox.jsonl")
    dispatcher_workers: int = 8
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_base_url: str | None = None  # a local stand-in for api.twilio.com
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_base_url: str | None = None  # a local stand-in for slack.com/api/
    slack_channel: str = "#alerts"  # where messages without a channel go
    webhook_url: str | None = None
    webhook_secret: str | None = None
