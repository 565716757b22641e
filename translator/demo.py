"""``translator demo``: the translator on SQLite with its workers and
scheduler, a few seeded users, some history and live traffic.

Everything goes through the real HTTP API of a real server on localhost, so
logs, metrics and the database look exactly as they would in production."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select

from common.logs import get_logger
from common.servers import serve_in_thread
from translator.accounts.models import User, UserRole
from translator.accounts.service import create_user, get_plan
from translator.files.models import File, FileStatus
from translator.jobs.models import JobStatus, QueueStatus, TranslationJob, TranslationQueue
from translator.payments.models import (
    Payment,
    PaymentKind,
    PaymentMethod,
    PaymentStatus,
    PromoCode,
)
from translator.services import Services

log = get_logger(__name__)

# Fixed demo tokens so the printed curl commands work on every run.
DEMO_USERS = [
    ("admin@example.com", "Ops Admin", UserRole.admin, "demo-admin-token"),
    ("alice@example.com", "Alice", UserRole.user, "demo-alice-token"),
    ("bob@example.com", "Bob", UserRole.user, "demo-bob-token"),
    ("carol@example.com", "Carol", UserRole.user, "demo-carol-token"),
]
SAMPLE_TEXT = [
    "Hello world. The document is ready for review.",
    "Please read the report and send your answer today.",
    "The new service is fast and the team is happy.",
]


def seed_users(services: Services) -> dict[str, str]:
    tokens = {}
    with services.db.session() as s:
        for email, name, role, token in DEMO_USERS:
            if s.scalar(select(User.id).where(User.email == email)) is None:
                create_user(s, email, services.clock.now(), name, role, token=token)
            tokens[email] = token
        if s.scalar(select(PromoCode.id).where(PromoCode.code == "DEMO50")) is None:
            s.add(PromoCode(code="DEMO50", percent_off=50))
    return tokens


def busyness(at: datetime) -> float:
    """Activity relative to a weekday's mid-afternoon peak: busy days, quiet nights,
    and weekends at half the weekday level."""
    daily = 0.3 + 0.7 * max(0.0, 1 - abs(at.hour - 14) / 10)
    return daily * (0.5 if at.weekday() >= 5 else 1.0)


def seed_history(services: Services, days: int, rng: random.Random) -> int:
    """Backdated payments and finished jobs over the past ``days`` days, with a
    daily and a weekly rhythm, so signals have a history to be tuned on. Runs once
    per database."""
    now = services.clock.now()
    with services.db.session() as s:
        if s.scalar(
            select(func.count())
            .select_from(Payment)
            .where(Payment.created_at < now - timedelta(hours=1))
        ):
            return 0
        users = s.scalars(select(User).where(User.role == UserRole.user)).all()
        plan = get_plan(s, "basic")
        sample = services.storage.new_path(now, "txt")
        services.storage.write(sample, SAMPLE_TEXT[0].encode())
        created = 0
        for hour in range(days * 24, 0, -1):
            at = now - timedelta(hours=hour)
            busy = busyness(at)
            for _ in range(rng.randint(0, round(6 * busy))):
                method = rng.choice([PaymentMethod.card, PaymentMethod.card, PaymentMethod.wallet])
                failed = rng.random() < (0.03 if method is PaymentMethod.card else 0.05)
                s.add(
                    Payment(
                        user_id=rng.choice(users).id,
                        plan_id=plan.id,
                        kind=PaymentKind.checkout,
                        method=method,
                        amount_cents=plan.price_cents,
                        currency=plan.currency,
                        status=PaymentStatus.failed if failed else PaymentStatus.succeeded,
                        failure_reason="card_declined" if failed else None,
                        created_at=at + timedelta(minutes=rng.randint(0, 59)),
                    )
                )
                created += 1
            for _ in range(rng.randint(1, round(10 * busy) + 1)):
                start = at + timedelta(minutes=rng.randint(0, 59))
                took = timedelta(seconds=rng.uniform(2, 40))
                f = File(
                    user_id=rng.choice(users).id,
                    original_name="history.txt",
                    file_format="txt",
                    size_bytes=47,
                    file_path=str(sample),
                    translated_path=str(sample),
                    status=FileStatus.ready,
                    source_lang="en",
                    target_lang="ru",
                    llm_provider="offline",
                    created_at=start,
                    translated_at=start + took,
                )
                s.add(f)
                s.flush()
                job = TranslationJob(
                    file_id=f.id,
                    user_id=f.user_id,
                    status=JobStatus.completed,
                    provider="offline",
                    source_lang="en",
                    target_lang="ru",
                    blocks_total=1,
                    blocks_done=1,
                    created_at=start,
                    started_at=start,
                    finished_at=start + took,
                )
                s.add(job)
                s.flush()
                s.add(
                    TranslationQueue(
                        job_id=job.id,
                        priority=50,
                        status=QueueStatus.done,
                        enqueued_at=start,
                        claimed_at=start,
                        attempts=1,
                    )
                )
                created += 1
    log.info("demo.history_seeded", days=days, records=created)
    return created


def _document(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(["txt", "md", "docx"])
    paragraphs = rng.sample(SAMPLE_TEXT, k=rng.randint(1, len(SAMPLE_TEXT)))
    if kind == "txt":
        return "letter.txt", "\n\n".join(paragraphs).encode()
    if kind == "md":
        return "notes.md", ("# Notes\n\n" + "\n".join(f"- {p}" for p in paragraphs)).encode()
    import io

    import docx

    document = docx.Document()
    for p in paragraphs:
        document.add_paragraph(p)
    buf = io.BytesIO()
    document.save(buf)
    return "report.docx", buf.getvalue()


def generate_traffic(
    base_url: str,
    tokens: dict[str, str],
    stop: threading.Event,
    rng: random.Random,
    interval: float = 1.0,
) -> None:
    """Users uploading documents, checking their job lists, and paying."""
    users = [t for e, t in tokens.items() if not e.startswith("admin")]
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while not stop.is_set():
            headers = {"Authorization": f"Bearer {rng.choice(users)}"}
            try:
                name, data = _document(rng)
                client.post(
                    "/api/files",
                    headers=headers,
                    files={"file": (name, data)},
                    data={"target_lang": rng.choice(["ru", "de"]), "source_lang": "en"},
                )
                client.get("/api/jobs", headers=headers)
                if rng.random() < 0.5:  # a wallet outage shows within seconds
                    method = rng.choice(["card", "wallet"])
                    client.post(
                        "/api/payments/checkout",
                        headers=headers,
                        json={
                            "plan": "basic",
                            "method": method,
                            "token": "tok_visa" if method == "card" else "wallet_ok",
                        },
                    )
            except httpx.HTTPError as exc:
                log.warning("demo.traffic_error", error=str(exc))
            stop.wait(interval)


def banner(base: str, tokens: dict[str, str]) -> str:
    alice = tokens["alice@example.com"]
    return f"""
Translator at {base}
  health:   curl {base}/api/health
  metrics:  curl {base}/metrics
  jobs:     curl -H 'Authorization: Bearer {alice}' {base}/api/jobs
  upload:   curl -H 'Authorization: Bearer {alice}' -F file=@README.md -F target_lang=ru \\
                 {base}/api/files
  API docs: {base}/docs"""


@contextlib.contextmanager
def traffic(base: str, tokens: dict[str, str], rng: random.Random) -> Iterator[None]:
    """Seeded users upload, list jobs and pay every second while the block runs."""
    stop = threading.Event()
    thread = threading.Thread(target=generate_traffic, args=(base, tokens, stop, rng), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(15)


def wait(duration: float) -> None:
    """Until ``duration`` seconds pass (0: until Ctrl-C)."""
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait(duration if duration > 0 else None)


def run_demo(services: Services, host: str, port: int, duration: float, history_days: int) -> None:
    from common.identity import open_store
    from translator.app import create_app

    rng = random.Random(42)
    tokens = seed_users(services)
    seed_history(services, history_days, rng)
    app = create_app(services, identity=open_store(announce=True))  # first start: the admin
    with serve_in_thread(app, host, port) as base:
        print(banner(base, tokens) + "\nTraffic every second. Ctrl-C stops.\n", flush=True)
        with traffic(base, tokens, rng):
            wait(duration)
