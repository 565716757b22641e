"""Postmortems configuration, from ``POSTMORTEM_*`` environment variables."""

from __future__ import annotations

from datetime import date

from pydantic_settings import BaseSettings, SettingsConfigDict


class PostmortemSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSTMORTEM_", extra="ignore")

    # Incidents, postmortems, action items, timelines, lessons.
    database_url: str = "sqlite:///var/postmortems.db"
    # Read: alerts, notifications and signal history for timelines and replays.
    sentinel_database_url: str = "sqlite:///var/sentinel.db"
    # Read when set: releases and rollbacks for timelines and change-failure rate.
    gate_database_url: str | None = None
    # Reminders go through the sentinel's announcements: over HTTP when this is set
    # (with a responder's platform token in sentinel_api_token), else in-process.
    sentinel_url: str | None = None
    sentinel_api_token: str | None = None

    # The business-hours calendar of working-day SLA targets and P2 due dates.
    time_zone: str = "Europe/Moscow"
    workday_start: str = "09:00"
    workday_end: str = "18:00"
    holidays: list[date] = []

    # Reminders repeat at this interval until what they ask for is done.
    reminder_interval_hours: float = 24.0
    # The sentinel's on-call schedule that says who was on call when an incident was
    # detected (default: the first schedule of its alerting configuration).
    on_call_schedule: str | None = None
    # Incidents opened from alerts without a service label belong to this service.
    default_service: str = "translator"
    # An alert joins a bad-release incident only if it fired during the release's
    # canary or at most this long after its rollback (and concerns its routes).
    release_join_window_minutes: float = 15.0
    # How far before an incident's start a detector replay looks back.
    replay_lookback_hours: float = 24.0
    # Where people open the incident pages (links in reminders).
    public_url: str = "http://127.0.0.1:8300"
    log_level: str = "INFO"
