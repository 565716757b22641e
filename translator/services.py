"""Everything a running translator process holds, built once from settings.

The HTTP app, the workers, the scheduler and the CLI all take their
collaborators from here, so a test can build one with a fake clock and a
temporary database and drive any part of it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from common.clock import Clock, SystemClock
from common.secrets import register_secrets, url_password
from translator.db import Database
from translator.faults import FaultInjector
from translator.files.storage import FileStorage, build_storage
from translator.jobs.heartbeat import Heartbeat
from translator.jobs.processor import JobProcessor
from translator.jobs.worker import WorkerPool
from translator.llm import ProviderRegistry
from translator.llm.registry import parse_provider_configs
from translator.metrics import (
    BreakerCollector,
    BuildInfoCollector,
    FileCheckCollector,
    QueueCollector,
    TranslatorMetrics,
)
from translator.payments.gateway import PaymentGateway, SimulatedGateway
from translator.settings import TranslatorSettings


@dataclass
class Services:
    settings: TranslatorSettings
    clock: Clock
    db: Database
    storage: FileStorage
    faults: FaultInjector
    metrics: TranslatorMetrics
    providers: ProviderRegistry
    gateway: PaymentGateway
    processor: JobProcessor
    workers: WorkerPool

    def observe_payment(self, method: str, outcome: str) -> None:
        self.metrics.payments.labels(method, outcome).inc()

    def close(self) -> None:
        self.workers.stop()
        self.db.dispose()


def build_services(
    settings: TranslatorSettings | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
    gateway: PaymentGateway | None = None,
    migrate: bool = True,
) -> Services:
    settings = settings or TranslatorSettings()
    register_secrets(
        [url_password(settings.database_url)]
        + [c.api_key for c in parse_provider_configs(settings.providers)]
    )
    clock = clock or SystemClock()
    db = Database(settings.database_url)
    if migrate:
        db.migrate()
    faults = FaultInjector.from_settings(settings.faults_file, settings.faults)
    metrics = TranslatorMetrics()
    providers = ProviderRegistry.from_settings(
        settings,
        clock,
        sleep=sleep,
        on_call=lambda provider, outcome: metrics.llm_calls.labels(provider, outcome).inc(),
        decorate=faults.wrap_provider,
    )
    metrics.add_live_collector(BuildInfoCollector(settings.version, settings.node))
    metrics.add_live_collector(BreakerCollector(providers.breaker_states))
    metrics.add_live_collector(QueueCollector(db, clock, settings.workers))
    storage = build_storage(
        settings.file_storage, settings.storage_dir, db, settings.file_chunk_bytes
    )
    metrics.add_live_collector(
        FileCheckCollector(db, storage, clock, timedelta(seconds=settings.files_check_seconds))
    )
    processor = JobProcessor(
        db, storage, providers, clock, faults, metrics, max_retries=settings.max_retries
    )
    heartbeat = Heartbeat(
        db,
        clock,
        processor.held,
        interval=settings.heartbeat_seconds,
        timeout=settings.heartbeat_timeout_seconds,
        max_retries=settings.max_retries,
    )
    workers = WorkerPool(
        processor, settings.workers, settings.worker_poll_seconds, heartbeat=heartbeat
    )
    return Services(
        settings=settings,
        clock=clock,
        db=db,
        storage=storage,
        faults=faults,
        metrics=metrics,
        providers=providers,
        gateway=gateway or SimulatedGateway(faults),
        processor=processor,
        workers=workers,
    )
