"""What an operator sees: /metrics, /api/health, error answers, request ids,
injected faults, and the scheduler's run-once guarantee."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tests.helpers import add_user, client_for, make_services
from translator.files.models import File
from translator.ops import scheduler
from translator.ops.maintenance import cleanup_expired_temp_files
from translator.ops.models import ScheduledRun

EXPECTED_METRICS = {
    "translator_http_requests": "counter",
    "translator_http_request_duration_seconds": "histogram",
    "translator_jobs": "gauge",
    "translator_queue_depth": "gauge",
    "translator_queue_processing": "gauge",
    "translator_queue_oldest_pending_age_seconds": "gauge",
    "translator_job_processing_seconds": "histogram",
    "translator_job_attempts": "counter",
    "translator_payments": "counter",
    "translator_job_list_responses": "counter",
    "translator_job_list_empty_with_jobs": "counter",
    "translator_llm_calls": "counter",
    "translator_llm_breaker_state": "gauge",
    "translator_build_info": "gauge",
    "translator_database_up": "gauge",
    "translator_worker_capacity": "gauge",
    "translator_process_start_time_seconds": "gauge",
}


@pytest.fixture
def make(database_url, tmp_path, clock):
    created = []

    def build(**overrides):
        services = make_services(database_url, tmp_path, clock, **overrides)
        created.append(services)
        return services, client_for(services)

    yield build
    for services in created:
        services.close()


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families, name, **labels):
    """The value of the sample ``name`` (``..._total``, ``..._count`` included) with ``labels``."""
    for family in families.values():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_parse_and_carry_every_series(make, clock):
    svc, api = make(version="2.3.4", node="preprod-1")
    _, h = add_user(svc, "a@example.com")
    api.post("/api/files", headers=h, files={"file": ("a.txt", b"Hello")})
    api.post("/api/files", headers=h, files={"file": ("b.txt", b"world")})
    clock.advance(seconds=42)
    api.get("/api/jobs", headers=h)
    fams = _families(api.get("/metrics").text)
    for name, kind in EXPECTED_METRICS.items():
        assert name in fams and fams[name].type == kind, name
    assert _value(fams, "translator_queue_depth") == 2
    assert _value(fams, "translator_queue_oldest_pending_age_seconds") == 42
    assert _value(fams, "translator_jobs", status="pending") == 2
    assert _value(fams, "translator_build_info", version="2.3.4", node="preprod-1") == 1
    assert (
        _value(
            fams, "translator_http_requests_total", route="/api/files", status="201", method="POST"
        )
        == 2
    )
    assert _value(fams, "translator_job_list_responses_total", result="non_empty") == 1

    svc.workers.drain()
    fams = _families(api.get("/metrics").text)
    assert _value(fams, "translator_queue_depth") == 0
    assert _value(fams, "translator_jobs", status="completed") == 2
    assert _value(fams, "translator_job_attempts_total", outcome="completed") == 2
    assert _value(fams, "translator_llm_calls_total", provider="offline", outcome="success") == 2
    assert _value(fams, "translator_llm_breaker_state", provider="offline") == 0
    assert _value(fams, "translator_job_processing_seconds_count", outcome="completed") == 2


def test_unknown_paths_share_one_series(make):
    _, api = make()
    for i in range(5):
        assert api.get(f"/scan/{i}").status_code == 404
    fams = _families(api.get("/metrics").text)
    assert _value(fams, "translator_http_requests_total", route="unmatched", status="404") == 5


def test_made_up_methods_share_one_series_and_requests_get_distinct_ids(make):
    _, api = make()
    ids = set()
    for method in ("BREW", "WHEN", "PROPFIND"):
        r = api.request(method, "/api/plans")
        assert r.status_code == 405
        ids.add(r.headers["x-request-id"])
    ids.update(api.get("/api/plans").headers["x-request-id"] for _ in range(3))
    assert len(ids) == 6 and all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    fams = _families(api.get("/metrics").text)
    other = _value(
        fams, "translator_http_requests_total", method="other", route="/api/plans", status="405"
    )
    assert other == 3
    assert _value(fams, "translator_http_requests_total", method="GET", route="/api/plans") == 3
    methods = {
        s.labels["method"] for s in fams["translator_http_requests"].samples if "method" in s.labels
    }
    assert methods == {"GET", "other"}


def test_injected_http_500s_hit_the_configured_route_only(make, caplog):
    svc, api = make(faults='{"http_errors": [{"route": "/api/jobs", "rate": 1.0}]}')
    _, h = add_user(svc, "a@example.com")
    r = api.get("/api/jobs", headers=h)
    assert r.status_code == 500 and r.json()["detail"] == "Internal server error"
    assert r.headers["x-request-id"] == r.json()["request_id"]
    assert api.get("/api/me", headers=h).status_code == 200
    fams = _families(api.get("/metrics").text)
    assert _value(fams, "translator_http_requests_total", route="/api/jobs", status="500") == 1
    assert any(
        rec.getMessage() == "fault.injected" and rec.fields["kind"] == "http_error"
        for rec in caplog.records
    )


def test_injected_slow_responses_show_in_the_latency_histogram_of_their_route(make, caplog):
    svc, api = make(
        faults='{"slow_responses": [{"route": "/api/jobs", "rate": 1.0, "seconds": 0.6}]}'
    )
    _, h = add_user(svc, "a@example.com")
    assert api.get("/api/jobs", headers=h).status_code == 200  # late, but answered
    assert api.get("/api/me", headers=h).status_code == 200
    fams = _families(api.get("/metrics").text)
    bucket = "translator_http_request_duration_seconds_bucket"
    # The held-back request falls past the 0.5 s bucket (however busy the machine, it
    # cannot be faster than its delay); the other route is not held back.
    assert _value(fams, bucket, route="/api/jobs", le="0.5") == 0
    assert _value(fams, bucket, route="/api/jobs", le="+Inf") == 1
    assert _value(fams, "translator_http_request_duration_seconds_sum", route="/api/me") < 0.6
    assert any(
        rec.getMessage() == "fault.injected"
        and rec.fields["kind"] == "slow_response"
        and rec.fields["route"] == "/api/jobs"
        for rec in caplog.records
    )


def test_empty_job_list_fault_for_one_user(make):
    svc, api = make(faults='{"empty_job_list": {"users": ["bob@example.com"]}}')
    _, alice = add_user(svc, "alice@example.com")
    _, bob = add_user(svc, "bob@example.com")
    for h in (alice, bob):
        api.post("/api/files", headers=h, files={"file": ("a.txt", b"Hello")})
    assert len(api.get("/api/jobs", headers=alice).json()) == 1
    assert api.get("/api/jobs", headers=bob).json() == []
    fams = _families(api.get("/metrics").text)
    assert _value(fams, "translator_job_list_responses_total", result="empty") == 1
    assert _value(fams, "translator_job_list_responses_total", result="non_empty") == 1
    # bob has a job, so his empty list is the bug, counted under his id alone
    bob_id = api.get("/api/me", headers=bob).json()["id"]
    assert _value(fams, "translator_job_list_empty_with_jobs_total", user_id=str(bob_id)) == 1
    _, carol = add_user(svc, "carol@example.com")
    assert api.get("/api/jobs", headers=carol).json() == []  # no jobs: an honest empty list
    fams = _families(api.get("/metrics").text)
    counted = [s for s in fams["translator_job_list_empty_with_jobs"].samples if s.value]
    assert [s.labels["user_id"] for s in counted] == [str(bob_id)]


def test_faults_are_off_by_default_and_bad_config_is_refused(make, tmp_path):
    svc, _ = make()
    assert not svc.faults.config.active
    bad = tmp_path / "faults.yaml"
    bad.write_text("payment_failures:\n  - method: wallet\n    rate: 3\n")
    from common.yaml_config import ConfigError

    with pytest.raises(ConfigError, match=r"faults.yaml:3: payment_failures.0.rate"):
        make(faults_file=bad)


def test_unexpected_error_is_generic_500_with_request_id(make, monkeypatch, caplog):
    svc, api = make()
    _, h = add_user(svc, "a@example.com")

    def boom(*_a, **_k):
        raise RuntimeError("password=hunter2 in a traceback")

    monkeypatch.setattr("translator.jobs.views.list_jobs", boom)
    r = api.get("/api/jobs", headers={**h, "X-Request-ID": "req-123"})
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal server error", "request_id": "req-123"}
    assert "hunter2" not in r.text
    logged = [rec for rec in caplog.records if rec.getMessage() == "http.unhandled_error"]
    assert logged and logged[0].context["request_id"] == "req-123"


def test_database_operational_error_is_503(make, monkeypatch):
    svc, api = make()
    _, h = add_user(svc, "a@example.com")

    def down(*_a, **_k):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr("translator.jobs.views.list_jobs", down)
    r = api.get("/api/jobs", headers=h)
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert "temporarily unavailable" in r.json()["detail"]


def test_health_reports_dependencies_and_degrades_with_an_open_breaker(make):
    svc, api = make()
    r = api.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["providers"]["breakers"] == {"offline": "closed"}
    breaker = svc.providers.get("offline").breaker
    for _ in range(svc.settings.breaker_failure_threshold):
        breaker.record_failure(breaker.before_call())
    r = api.get("/api/health")
    assert r.status_code == 503
    assert r.json()["status"] == "degraded"
    assert r.json()["checks"]["providers"]["breakers"]["offline"] == "open"
    fams = _families(api.get("/metrics").text)
    assert _value(fams, "translator_llm_breaker_state", provider="offline") == 2


def test_health_is_503_when_the_database_is_gone(make, monkeypatch):
    svc, api = make()

    def broken(*_a, **_k):
        raise OperationalError("SELECT 1", {}, Exception("no route to host"))

    monkeypatch.setattr(svc.db, "session", broken)
    r = api.get("/api/health")
    assert r.status_code == 503
    assert r.json()["checks"]["database"]["status"] == "error"
    fams = _families(api.get("/metrics").text)
    assert _value(fams, "translator_database_up") == 0


def test_scheduled_job_runs_once_per_slot_across_processes(make, clock):
    first, _ = make()
    second, _ = make()  # another translator process on the same database
    job = scheduler.ScheduledJob(
        "probe", timedelta(minutes=5), {"minute": "*/5"}, lambda services, now: "ran"
    )
    clock.set(datetime(2026, 3, 1, 12, 4, 59, 990000, tzinfo=UTC))
    assert scheduler.run_if_first(first, job) is True
    clock.set(datetime(2026, 3, 1, 12, 5, 0, 20000, tzinfo=UTC))  # same firing, other process
    assert scheduler.run_if_first(second, job) is False
    clock.advance(minutes=5)
    assert scheduler.run_if_first(second, job) is True
    with first.db.session() as s:
        runs = s.scalars(select(ScheduledRun).order_by(ScheduledRun.slot)).all()
        assert [(r.slot.minute, r.outcome) for r in runs] == [(5, "ok ran"), (10, "ok ran")]


def test_scheduler_registers_the_seed_jobs():
    by_name = {j.name: j for j in scheduler.JOBS}
    assert by_name["check_stuck_jobs"].cron == {"minute": "*/5"}
    assert by_name["cleanup_expired_temp_files"].cron == {"hour": "*/6", "minute": 0}
    assert by_name["process_recurring_subscriptions"].cron == {"hour": 3, "minute": 0}


def test_temp_file_cleanup_removes_only_expired_unclaimed_uploads(make, clock):
    svc, api = make()
    _, h = add_user(svc, "a@example.com")
    old_temp = api.post("/api/files", files={"file": ("t.txt", b"Hello")}).json()["file"]
    kept = api.post("/api/files", headers=h, files={"file": ("u.txt", b"Hello")}).json()["file"]
    clock.advance(hours=23)
    new_temp = api.post("/api/files", files={"file": ("n.txt", b"Hello")}).json()["file"]
    clock.advance(hours=2)
    assert cleanup_expired_temp_files(svc, clock.now()).deleted == 1
    with svc.db.session() as s:
        remaining = set(s.scalars(select(File.id)))
        assert remaining == {kept["id"], new_temp["id"]}
        assert s.scalar(select(func.count()).select_from(File)) == 2
    stored = list((svc.settings.storage_dir).rglob("*.txt"))
    assert len(stored) == 2 and old_temp["id"] not in remaining


def test_provider_outage_opens_the_breaker_then_it_half_opens(make, clock):
    svc, api = make(
        faults='{"llm_failures": [{"provider": "offline", "rate": 1.0}]}',
        breaker_failure_threshold=3,
        breaker_cooldown_seconds=30,
    )
    _, h = add_user(svc, "a@example.com")
    for i in range(4):
        api.post("/api/files", headers=h, files={"file": (f"{i}.txt", b"Hello")})
    for _ in range(3):
        svc.processor.run_once("w")
    assert api.get("/api/health").json()["checks"]["providers"]["breakers"] == {"offline": "open"}
    svc.processor.run_once("w")  # fails fast, the provider is not called
    fams = _families(api.get("/metrics").text)
    assert _value(fams, "translator_llm_calls_total", provider="offline", outcome="error") == 3
    assert (
        _value(fams, "translator_llm_calls_total", provider="offline", outcome="circuit_open") == 1
    )
    assert _value(fams, "translator_llm_breaker_state", provider="offline") == 2

    clock.advance(seconds=31)
    svc.faults.config.llm_failures.clear()  # the provider recovers
    assert api.get("/api/health").json()["checks"]["providers"]["breakers"] == {
        "offline": "half_open"
    }
    svc.processor.run_once("w")  # the trial call succeeds
    assert api.get("/api/health").status_code == 200


def test_faults_can_wait_before_they_start():
    from translator.faults import FaultConfig, FaultInjector

    now = [0.0]
    faults = FaultInjector(
        FaultConfig.model_validate(
            {
                "start_after_seconds": 60,
                "http_errors": [{"route": "/api/jobs", "rate": 1.0}],
                "empty_job_list": {"users": ["bob@example.com"]},
            }
        ),
        monotonic=lambda: now[0],
    )
    assert faults.http_error("GET", "/api/jobs") is None
    assert not faults.empty_job_list("bob@example.com")
    now[0] = 61
    assert faults.http_error("GET", "/api/jobs") == 500
    assert faults.empty_job_list("bob@example.com")


def test_a_watched_faults_file_switches_faults_on_and_off_while_running(tmp_path):
    from common.files import write_atomic
    from translator.faults import FaultInjector

    file = tmp_path / "faults.yaml"
    write_atomic(file, "{}\n")
    faults = FaultInjector.from_settings(file, None)
    assert faults.payment_failure("wallet") is None

    write_atomic(file, "payment_failures: [{method: wallet, rate: 1.0, reason: wallet_declined}]\n")
    assert faults.payment_failure("wallet") == "wallet_declined"  # the next check sees it
    assert faults.payment_failure("card") is None

    write_atomic(file, "payment_failures: [{method: wallet, rate: 2}]\n")  # invalid
    assert faults.payment_failure("wallet") == "wallet_declined"  # the last valid one holds

    file.unlink()  # no file, no faults
    assert faults.payment_failure("wallet") is None
    write_atomic(file, "llm_failures: [{provider: offline, rate: 1.0}]\n")
    assert faults.llm_failure("offline")


def test_slow_responses_wait_their_start_and_match_route_and_method():
    from translator.faults import FaultConfig, FaultInjector

    now = [0.0]
    faults = FaultInjector(
        FaultConfig.model_validate(
            {
                "start_after_seconds": 30,
                "slow_responses": [
                    {"route": "/api/jobs", "rate": 1.0, "seconds": 4, "methods": ["get"]}
                ],
            }
        ),
        monotonic=lambda: now[0],
    )
    assert faults.config.active
    assert faults.slow_response("GET", "/api/jobs") is None  # not started yet
    now[0] = 31
    assert faults.slow_response("GET", "/api/jobs") == 4
    assert faults.slow_response("GET", "/api/jobs/{job_id}") == 4  # a path under the route
    assert faults.slow_response("POST", "/api/jobs") is None
    assert faults.slow_response("GET", "/api/jobsearch") is None
    with pytest.raises(ValueError, match="seconds"):
        FaultConfig.model_validate({"slow_responses": [{"route": "/", "rate": 1, "seconds": 0}]})


def test_route_faults_switched_on_in_a_watched_file_reach_the_running_app(make, tmp_path):
    from common.files import write_atomic

    file = tmp_path / "faults.yaml"
    write_atomic(file, "{}\n")
    svc, api = make(faults_file=file)
    _, h = add_user(svc, "a@example.com")
    assert api.get("/api/jobs", headers=h).status_code == 200
    write_atomic(file, "http_errors: [{route: /api/jobs, rate: 1.0, status: 503}]\n")
    assert api.get("/api/jobs", headers=h).status_code == 503
    write_atomic(file, "slow_responses: [{route: /api/jobs, rate: 1.0, seconds: 0.3}]\n")
    assert api.get("/api/jobs", headers=h).status_code == 200
    fams = _families(api.get("/metrics").text)
    bucket = "translator_http_request_duration_seconds_bucket"
    assert _value(fams, bucket, route="/api/jobs", le="0.25") == 2  # the two quick answers
    assert _value(fams, bucket, route="/api/jobs", le="0.5") == 3
