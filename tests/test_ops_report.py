"""The seed 000 §9 reports on known rows with explicit UTC timestamps around
day boundaries, on the backend under test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from common.clock import FakeClock
from translator.accounts.models import SubscriptionPlan, User
from translator.cli import main
from translator.db import Database
from translator.files.models import File, FileStatus
from translator.jobs.models import JobStatus, TranslationJob
from translator.ops.report import DailyReport, PaymentLine, daily_report, weekly_report
from translator.payments.models import Payment, PaymentKind, PaymentMethod, PaymentStatus

DAY = date(2026, 1, 5)


def at(day_offset: int, hh: int = 0, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    return datetime(2026, 1, 5, hh, mm, ss, us, tzinfo=UTC) + timedelta(days=day_offset)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def seeded(db: Database) -> Database:
    with db.session() as s:
        users = [
            User(email=f"u{i}@example.com", api_token_hash=f"{i:064d}", created_at=when)
            for i, when in enumerate([at(-1, 23, 59, 59), at(0), at(0, 23, 59, 59, 999_999), at(1)])
        ]
        s.add_all(users)
        s.flush()
        owner = users[0].id

        def file(
            created: datetime,
            status: FileStatus,
            provider: str | None = "offline",
            minutes: float | None = None,
        ) -> File:
            return File(
                user_id=owner,
                original_name="a.txt",
                file_format="txt",
                size_bytes=1,
                file_path="/x",
                status=status,
                llm_provider=provider,
                created_at=created,
                translated_at=created + timedelta(minutes=minutes) if minutes else None,
            )

        files = [
            # the day itself
            file(at(0, 9), FileStatus.ready, minutes=10),
            file(at(0, 10), FileStatus.ready, "deepseek", minutes=20),
            file(at(0, 11), FileStatus.error, "deepseek"),
            file(at(0, 12), FileStatus.processing),
            file(at(0, 13), FileStatus.pending),
            file(at(0, 14), FileStatus.uploaded, None),
            # the rest of the week, and just outside it
            file(at(-1, 23, 59, 59), FileStatus.ready, minutes=30),  # translated the next day
            file(at(-2, 8), FileStatus.ready, minutes=15),
            file(at(-2, 9), FileStatus.error),
            file(at(-6), FileStatus.ready, minutes=5),
            file(at(-6, 0, 0, 0) - timedelta(microseconds=1), FileStatus.ready, minutes=1),
            file(at(1), FileStatus.ready, minutes=1),
        ]
        s.add_all(files)
        s.flush()

        def job(f: File, created: datetime, status: JobStatus, retries: int) -> TranslationJob:
            return TranslationJob(
                file_id=f.id,
                user_id=owner,
                status=status,
                provider="offline",
                source_lang="auto",
                target_lang="ru",
                retry_count=retries,
                created_at=created,
            )

        s.add_all(
            [
                job(files[0], at(0, 9), JobStatus.completed, 0),
                job(files[1], at(0, 10), JobStatus.completed, 2),
                job(files[2], at(0, 11), JobStatus.failed, 3),
                job(files[3], at(0, 12), JobStatus.processing, 0),
                job(files[4], at(0, 13), JobStatus.pending, 1),
                job(files[8], at(-1, 23, 59, 59), JobStatus.failed, 3),
            ]
        )

        plan = s.scalar(select(SubscriptionPlan.id).where(SubscriptionPlan.code == "basic"))
        assert plan is not None

        def payment(created: datetime, method: PaymentMethod, ok: bool) -> Payment:
            return Payment(
                user_id=owner,
                plan_id=plan,
                kind=PaymentKind.checkout,
                method=method,
                amount_cents=990,
                currency="USD",
                created_at=created,
                status=PaymentStatus.succeeded if ok else PaymentStatus.failed,
            )

        s.add_all(
            [
                payment(at(0, 1), PaymentMethod.card, True),
                payment(at(0, 2), PaymentMethod.card, True),
                payment(at(0, 3), PaymentMethod.card, False),
                payment(at(0, 4), PaymentMethod.wallet, False),
                payment(at(0, 5), PaymentMethod.promo, True),
                payment(at(-1, 23, 59, 59), PaymentMethod.card, False),
                payment(at(1), PaymentMethod.wallet, True),
            ]
        )
    return db


EXPECTED_DAILY = DailyReport(
    day=DAY,
    files_total=6,
    completed_files=2,
    failed_files=1,
    processing_files=1,
    pending_files=1,
    new_users=2,
    provider_usage={"offline": 3, "deepseek": 2},
    payments=[
        PaymentLine(method="card", succeeded=2, failed=1),
        PaymentLine(method="promo", succeeded=1, failed=0),
        PaymentLine(method="wallet", succeeded=0, failed=1),
    ],
    jobs_total=5,
    jobs_failed=1,
    jobs_retried=3,
    retries=6,
)

EXPECTED_DAILY_CSV = """\
section,name,value
files,total,6
files,completed,2
files,failed,1
files,processing,1
files,pending,1
users,new,2
llm_provider,offline,3
llm_provider,deepseek,2
payments,card.succeeded,2
payments,card.failed,1
payments,card.failure_ratio,0.3333
payments,promo.succeeded,1
payments,promo.failed,0
payments,promo.failure_ratio,0.0
payments,wallet.succeeded,0
payments,wallet.failed,1
payments,wallet.failure_ratio,1.0
payments,all.succeeded,3
payments,all.failed,2
payments,all.failure_ratio,0.4
jobs,total,5
jobs,failed,1
jobs,retried,3
jobs,retries,6
"""

EXPECTED_WEEKLY_CSV = """\
day,total_files,completed_files,success_rate_pct,avg_processing_minutes
2025-12-30,1,1,100.0,5.0
2025-12-31,0,0,,
2026-01-01,0,0,,
2026-01-02,0,0,,
2026-01-03,2,1,50.0,15.0
2026-01-04,1,1,100.0,30.0
2026-01-05,6,2,33.3,15.0
"""


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_daily_figures(seeded: Database, tmp_path: Path) -> None:
    report = daily_report(seeded.engine, DAY)
    assert report == EXPECTED_DAILY
    assert report.payments[0].failure_ratio == pytest.approx(1 / 3)
    assert report.payments_total == PaymentLine(method="all", succeeded=3, failed=2)
    report.to_csv(tmp_path / "daily.csv")
    assert (tmp_path / "daily.csv").read_text() == EXPECTED_DAILY_CSV


def test_daily_defaults_to_today_by_the_clock(seeded: Database) -> None:
    clock = FakeClock(datetime(2026, 1, 5, 23, 59, tzinfo=UTC))
    assert daily_report(seeded.engine, clock=clock) == EXPECTED_DAILY
    clock.advance(minutes=1)
    assert daily_report(seeded.engine, clock=clock).day == date(2026, 1, 6)


def test_daily_on_an_empty_day(seeded: Database) -> None:
    report = daily_report(seeded.engine, date(2025, 6, 1))
    assert report.files_total == report.new_users == report.jobs_total == 0
    assert report.provider_usage == {} and report.payments == []
    assert report.payments_total.failure_ratio == 0.0
    assert "(none)" in report.render()


def test_daily_render(seeded: Database) -> None:
    text = daily_report(seeded.engine, DAY).render()
    assert text.startswith("Daily report for 2026-01-05 (UTC)")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for expected in [
        "files created 6",
        "completed 2",
        "new users 2",
        "retries 6",
        "offline 3",
        "deepseek 2",
        "card 2 1 3 33.3%",
        "all 3 2 5 40.0%",
    ]:
        assert expected in lines, (expected, text)


def test_weekly_figures(seeded: Database, tmp_path: Path) -> None:
    report = weekly_report(seeded.engine, DAY)
    assert (report.start, report.end) == (date(2025, 12, 30), DAY)
    assert [d.day for d in report.days] == [
        date(2025, 12, 30) + timedelta(days=i) for i in range(7)
    ]
    last = report.days[-1]
    assert (last.total_files, last.completed_files) == (6, 2)
    assert last.success_rate_pct == pytest.approx(100 / 3)
    assert last.avg_processing_minutes == pytest.approx(15.0)
    assert report.days[1].success_rate_pct is None
    report.to_csv(tmp_path / "weekly.csv")
    assert (tmp_path / "weekly.csv").read_text() == EXPECTED_WEEKLY_CSV
    lines = [" ".join(line.split()) for line in report.render().splitlines()]
    assert "2026-01-05 6 2 33.3 15.00" in lines and "2025-12-31 0 0 - -" in lines


def test_cli_report(
    seeded: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANSLATOR_DATABASE_URL", database_url)
    monkeypatch.setenv("TRANSLATOR_LOG_LEVEL", "WARNING")
    runner = CliRunner()

    daily = runner.invoke(
        main, ["report", "daily", "--date", "2026-01-05", "--csv", str(tmp_path / "d.csv")]
    )
    assert daily.exit_code == 0, daily.output
    assert daily.stdout.startswith("Daily report for 2026-01-05 (UTC)")
    assert (tmp_path / "d.csv").read_text() == EXPECTED_DAILY_CSV

    weekly = runner.invoke(
        main, ["report", "weekly", "--date", "2026-01-05", "--csv", str(tmp_path / "w.csv")]
    )
    assert weekly.exit_code == 0, weekly.output
    assert "Weekly report 2025-12-30 to 2026-01-05 (UTC)" in weekly.stdout
    assert (tmp_path / "w.csv").read_text() == EXPECTED_WEEKLY_CSV

    assert runner.invoke(main, ["report", "daily"]).exit_code == 0  # today
    bad = runner.invoke(main, ["report", "daily", "--date", "05.01.2026"])
    assert bad.exit_code == 2 and "does not match the format" in bad.output
    assert runner.invoke(main, ["report", "monthly"]).exit_code == 2


def test_cli_report_on_a_database_without_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    monkeypatch.setenv("TRANSLATOR_DATABASE_URL", f"sqlite:///{empty}")
    result = CliRunner().invoke(main, ["report", "weekly"])
    assert result.exit_code == 1
    assert "Error: reading the database failed: no such table: files" in result.output
