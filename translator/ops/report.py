"""The daily and weekly figures of seed 000 §9, computed with pandas.

Rows are selected by a UTC time range in SQL (plain comparisons on UTC columns,
the same on SQLite and PostgreSQL) and bucketed by UTC date in pandas, so no
dialect-specific date functions are involved. A day is ``[00:00, 24:00)`` UTC;
everything is counted on the day its row was created, as in the seed's
``DATE(created_at) = CURRENT_DATE``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Select, select
from sqlalchemy.exc import SQLAlchemyError

from common.clock import Clock, SystemClock
from translator.accounts.models import User
from translator.files.models import File, FileStatus
from translator.jobs.models import JobStatus, TranslationJob
from translator.payments.models import Payment, PaymentStatus

WEEK_DAYS = 7


class PaymentLine(BaseModel):
    method: str
    succeeded: int
    failed: int

    @property
    def total(self) -> int:
        return self.succeeded + self.failed

    @property
    def failure_ratio(self) -> float:
        return self.failed / self.total if self.total else 0.0


class DailyReport(BaseModel):
    day: date
    files_total: int
    completed_files: int  # status ready
    failed_files: int  # status error
    processing_files: int
    pending_files: int
    new_users: int
    provider_usage: dict[str, int]  # files per LLM provider, most used first
    payments: list[PaymentLine]  # one line per method, by name
    jobs_total: int
    jobs_failed: int
    jobs_retried: int  # jobs retried at least once (automatic retries, stuck requeues)
    retries: int  # retries over all those jobs

    @property
    def payments_total(self) -> PaymentLine:
        return PaymentLine(
            method="all",
            succeeded=sum(p.succeeded for p in self.payments),
            failed=sum(p.failed for p in self.payments),
        )

    def frame(self) -> pd.DataFrame:
        """Every figure as a (section, name, value) row, the shape of the CSV."""
        rows: list[tuple[str, str, float]] = [
            ("files", "total", self.files_total),
            ("files", "completed", self.completed_files),
            ("files", "failed", self.failed_files),
            ("files", "processing", self.processing_files),
            ("files", "pending", self.pending_files),
            ("users", "new", self.new_users),
            *(("llm_provider", name, count) for name, count in self.provider_usage.items()),
        ]
        for line in [*self.payments, self.payments_total]:
            rows += [
                ("payments", f"{line.method}.succeeded", line.succeeded),
                ("payments", f"{line.method}.failed", line.failed),
                ("payments", f"{line.method}.failure_ratio", round(line.failure_ratio, 4)),
            ]
        rows += [
            ("jobs", "total", self.jobs_total),
            ("jobs", "failed", self.jobs_failed),
            ("jobs", "retried", self.jobs_retried),
            ("jobs", "retries", self.retries),
        ]
        # object dtype keeps counts as integers next to the ratios in the CSV.
        return pd.DataFrame(rows, columns=["section", "name", "value"], dtype=object)

    def render(self) -> str:
        summary = pd.DataFrame(
            [
                ("files created", self.files_total),
                ("  completed", self.completed_files),
                ("  failed", self.failed_files),
                ("  processing", self.processing_files),
                ("  pending", self.pending_files),
                ("new users", self.new_users),
                ("jobs created", self.jobs_total),
                ("  failed", self.jobs_failed),
                ("  retried", self.jobs_retried),
                ("  retries", self.retries),
            ],
            columns=["figure", "value"],
        )
        providers = pd.DataFrame(list(self.provider_usage.items()), columns=["provider", "files"])
        payments = pd.DataFrame(
            [
                (p.method, p.succeeded, p.failed, p.total, f"{p.failure_ratio:.1%}")
                for p in [*self.payments, self.payments_total]
            ],
            columns=["method", "succeeded", "failed", "total", "failure ratio"],
        )
        return "\n\n".join(
            [
                f"Daily report for {self.day.isoformat()} (UTC)",
                _table(summary, header=False),
                "LLM provider usage\n" + _table(providers),
                "Payments\n" + _table(payments),
            ]
        )

    def to_csv(self, path: Path | str) -> None:
        self.frame().to_csv(path, index=False)


class WeeklyDay(BaseModel):
    day: date
    total_files: int
    completed_files: int
    success_rate_pct: float | None  # None on a day without files
    avg_processing_minutes: float | None  # created_at to translated_at; None if none done


class WeeklyReport(BaseModel):
    start: date
    end: date  # inclusive
    days: list[WeeklyDay]

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            [d.model_dump() for d in self.days],
            columns=list(WeeklyDay.model_fields),
        )
        frame["day"] = frame["day"].map(date.isoformat)
        frame["success_rate_pct"] = frame["success_rate_pct"].astype(float).round(1)
        frame["avg_processing_minutes"] = frame["avg_processing_minutes"].astype(float).round(2)
        return frame

    def render(self) -> str:
        shown = self.frame().rename(
            columns={
                "total_files": "files",
                "completed_files": "completed",
                "success_rate_pct": "success %",
                "avg_processing_minutes": "avg minutes",
            }
        )
        shown["success %"] = shown["success %"].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
        shown["avg minutes"] = shown["avg minutes"].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
        title = f"Weekly report {self.start.isoformat()} to {self.end.isoformat()} (UTC)"
        return title + "\n\n" + _table(shown)

    def to_csv(self, path: Path | str) -> None:
        self.frame().to_csv(path, index=False)


def _table(frame: pd.DataFrame, header: bool = True) -> str:
    """Labels (the first column) left-aligned, figures right-aligned."""
    if frame.empty:
        return "  (none)"
    rows = [[str(value) for value in row] for row in frame.itertuples(index=False)]
    if header:
        rows.insert(0, [str(column) for column in frame.columns])
    widths = [max(len(row[i]) for row in rows) for i in range(len(frame.columns))]
    return "\n".join(
        "  "
        + "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def _day_range(first: date, days: int = 1) -> tuple[datetime, datetime]:
    start = datetime.combine(first, time(), tzinfo=UTC)
    return start, start + timedelta(days=days)


def _read(conn: Connection, stmt: Select, times: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_sql(stmt, conn)
    except pd.errors.DatabaseError as exc:
        # pandas wraps the driver error with the whole statement; callers want the cause.
        if isinstance(exc.__cause__, SQLAlchemyError):
            raise exc.__cause__ from None
        raise
    for column in times:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    # Enum columns come back as StrEnum members; compare on their plain values.
    for column in frame.columns.difference(times):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: v if pd.isna(v) else str(v))
    return frame


def _today(clock: Clock | None) -> date:
    return (clock or SystemClock()).now().astimezone(UTC).date()


def daily_report(
    source: Engine | Connection, day: date | None = None, clock: Clock | None = None
) -> DailyReport:
    """Seed 000 §9.1 for one UTC day (default: today by ``clock``)."""
    day = day or _today(clock)
    start, end = _day_range(day)
    with _connection(source) as conn:
        files = _read(
            conn,
            select(File.status, File.llm_provider, File.created_at).where(
                File.created_at >= start, File.created_at < end
            ),
            ("created_at",),
        )
        users = _read(
            conn,
            select(User.id, User.created_at).where(User.created_at >= start, User.created_at < end),
            ("created_at",),
        )
        payments = _read(
            conn,
            select(Payment.method, Payment.status, Payment.created_at).where(
                Payment.created_at >= start, Payment.created_at < end
            ),
            ("created_at",),
        )
        jobs = _read(
            conn,
            select(
                TranslationJob.status, TranslationJob.retry_count, TranslationJob.created_at
            ).where(TranslationJob.created_at >= start, TranslationJob.created_at < end),
            ("created_at",),
        )

    status = files["status"].value_counts()
    usage = files["llm_provider"].dropna().value_counts()
    usage = usage.sort_index().sort_values(ascending=False, kind="stable")

    by_method = (
        payments.groupby(["method", "status"]).size().unstack(fill_value=0)
        if not payments.empty
        else pd.DataFrame()
    )
    by_method = by_method.reindex(
        columns=[PaymentStatus.succeeded.value, PaymentStatus.failed.value], fill_value=0
    ).sort_index()

    return DailyReport(
        day=day,
        files_total=len(files),
        completed_files=int(status.get(FileStatus.ready.value, 0)),
        failed_files=int(status.get(FileStatus.error.value, 0)),
        processing_files=int(status.get(FileStatus.processing.value, 0)),
        pending_files=int(status.get(FileStatus.pending.value, 0)),
        new_users=len(users),
        provider_usage={str(name): int(count) for name, count in usage.items()},
        payments=[
            PaymentLine(
                method=str(method), succeeded=int(row["succeeded"]), failed=int(row["failed"])
            )
            for method, row in by_method.iterrows()
        ],
        jobs_total=len(jobs),
        jobs_failed=int((jobs["status"] == JobStatus.failed.value).sum()),
        jobs_retried=int((jobs["retry_count"] > 0).sum()),
        retries=int(jobs["retry_count"].sum()),
    )


def weekly_report(
    source: Engine | Connection, end: date | None = None, clock: Clock | None = None
) -> WeeklyReport:
    """Seed 000 §9.2, per UTC day for the 7 days ending on ``end`` (inclusive)."""
    end = end or _today(clock)
    first = end - timedelta(days=WEEK_DAYS - 1)
    start, stop = _day_range(first, WEEK_DAYS)
    with _connection(source) as conn:
        files = _read(
            conn,
            select(File.status, File.created_at, File.translated_at).where(
                File.created_at >= start, File.created_at < stop
            ),
            ("created_at", "translated_at"),
        )
    files["day"] = files["created_at"].dt.date
    files["completed"] = files["status"] == FileStatus.ready.value
    files["minutes"] = (files["translated_at"] - files["created_at"]).dt.total_seconds() / 60
    per_day = files.groupby("day").agg(
        total_files=("status", "size"),
        completed_files=("completed", "sum"),
        avg_processing_minutes=("minutes", "mean"),  # NaN (not yet translated) is skipped
    )
    per_day = per_day.reindex([first + timedelta(days=i) for i in range(WEEK_DAYS)])

    days = []
    for day, row in per_day.iterrows():
        total = 0 if pd.isna(row["total_files"]) else int(row["total_files"])
        completed = 0 if pd.isna(row["completed_files"]) else int(row["completed_files"])
        minutes = row["avg_processing_minutes"]
        days.append(
            WeeklyDay(
                day=day,
                total_files=total,
                completed_files=completed,
                success_rate_pct=completed * 100 / total if total else None,
                avg_processing_minutes=None if pd.isna(minutes) else float(minutes),
            )
        )
    return WeeklyReport(start=first, end=end, days=days)


@contextlib.contextmanager
def _connection(source: Engine | Connection) -> Iterator[Connection]:
    """Use a given connection as is, or open one for the whole report."""
    if isinstance(source, Connection):
        yield source
        return
    with source.connect() as conn:
        yield conn
