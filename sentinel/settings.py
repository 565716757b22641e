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

    # Start order does not matter: a source that has not answered since the start gets
    # this long to appear before it pages as down, and once it first answers its signals
    # are judged after the warm-up (the watched service's first minute).
    startup_grace_seconds: float = 120.0
    source_warmup_seconds: float = 60.0
    # A source that cannot be read raises one alert, firing once it has failed this long.
    source_down_after_seconds: float = 30.0

    replica: str | None = None  # defaults to host:pid
    lease_seconds: float = 15.0
    tick_seconds: float = 1.0

    raw_retention_days: int = 35
    rollup_retention_days: int = 400
    history_warmup_days: int = 28
    # Signals that can read the past and have no samples are filled this far back when a
    # replica takes the lead (in the background; 0 turns it off).
    backfill_days: float = 14
    # ...and their alerts wait for it this long at most (the priors judge after that).
    backfill_hold_seconds: float = 60.0
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

    # Delivery under provider faults. Every provider call gives up after this long
    # (connect and read); a send still unanswered after ``delivery_send_deadline_seconds``
    # is handed back and looked up at the provider before any resend.
    provider_timeout_seconds: float = 5.0
    delivery_send_deadline_seconds: float = 20.0
    # Claims are renewed by a heartbeat (a third of this): a dead dispatcher's pages
    # are taken over within it.
    delivery_lease_seconds: float = 6.0
    delivery_backoff_seconds: float = 2.0
    delivery_max_backoff_seconds: float = 30.0
    delivery_max_attempts: int = 5  # then a person's next channel too; broadcasts give up
    # A second route for pages once their channel has failed this long: a signed
    # webhook (another SMS gateway, say) carrying the phone number and the words.
    failover_webhook_url: str | None = None
    failover_webhook_secret: str | None = None
    failover_channels: list[str] = ["sms", "voice"]
    failover_after_seconds: float = 300.0
    failover_probe_seconds: float = 30.0
    # /api/health says "degraded" past these.
    health_page_delay_seconds: float = 60.0  # a page due this long and not sent
    health_cycle_stale_seconds: float = 30.0  # no successful evaluation cycle for this long
