"""Translator configuration, from ``TRANSLATOR_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from translator import __version__


class TranslatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRANSLATOR_", extra="ignore")

    database_url: str = "sqlite:///var/translator.db"
    storage_dir: Path = Path("var/files")
    # Where documents are kept: "disk" (storage_dir, one node) or "database" (chunks in
    # the database, for several nodes sharing one PostgreSQL; translator/files/storage.py).
    file_storage: Literal["disk", "database"] = "disk"
    file_chunk_bytes: int = Field(default=1024 * 1024, ge=1024)  # database rows, disk reads
    backup_dir: Path = Path("var/backups")
    backup_retention_days: int = 30

    # The version this process reports in build info; the release gate sets it per node.
    version: str = __version__
    node: str = "local"

    workers: int = Field(default=2, ge=0)
    worker_poll_seconds: float = 0.5
    stuck_after_minutes: int = 10
    # Worker processes mark their claimed jobs alive this often; a job whose claim went
    # unmarked for the timeout (its process died) goes back to the queue.
    heartbeat_seconds: float = Field(default=5, gt=0)
    heartbeat_timeout_seconds: float = Field(default=30, gt=0)
    # How often /metrics re-checks files on disk against the files table (a directory walk).
    files_check_seconds: float = Field(default=300, gt=0)
    max_retries: int = 3
    scheduler_enabled: bool = True

    default_provider: str = "offline"
    # A JSON list of OpenAI-compatible providers (OpenAI, DeepSeek, LM Studio), e.g.
    # [{"name": "deepseek", "base_url": "https://api.deepseek.com/v1", "api_key": "...",
    #   "model": "deepseek-chat"}]
    providers: str = "[]"
    offline_delay_ms: int = 0
    llm_timeout_seconds: float = 60.0
    llm_max_attempts: int = 3
    llm_backoff_seconds: float = 1.0
    breaker_failure_threshold: int = 5
    breaker_cooldown_seconds: float = 30.0

    # Fault injection for demos and tests: a YAML/JSON file, or inline JSON. Off by default.
    faults_file: Path | None = None
    faults: str | None = None

    log_level: str = "INFO"
    # Also write the log lines to this file (the sentinel counts its ERROR/CRITICAL lines).
    log_file: Path | None = None
    max_blocks_per_job: int = 5000

    @model_validator(mode="after")
    def _heartbeat_outlives_a_late_beat(self) -> TranslatorSettings:
        # One late beat (a busy machine) must not make a live worker look dead.
        if self.heartbeat_timeout_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                f"heartbeat_timeout_seconds ({self.heartbeat_timeout_seconds}) must be at least "
                f"twice heartbeat_seconds ({self.heartbeat_seconds})"
            )
        return self
