"""``python -m demo``: run the whole platform locally on SQLite.

1. The translator (var/translator.db) with workers, scheduler, seeded users,
   two weeks of history and live traffic, on 127.0.0.1:8000.
2. The sentinel (var/sentinel.db) on 127.0.0.1:8100, watching the default
   signal catalogue: SQL on the translator's database and its /metrics.
3. Postmortems (var/postmortems.db) on 127.0.0.1:8300: the web views of
   incidents, opened from critical alerts and from rollbacks; the console
   (dashboards/console) on 127.0.0.1:8400 over all of it.
4. Two releases through the gate on a local fleet behind nginx (var/fleet):
   a good build promoted, a bad one rolled back (demo/releases.py).
5. After ``--fault-after`` seconds, injected faults: /api/jobs answers 500 for
   40% of requests, wallet payments fail, bob's job list comes back empty.
   Alerts are printed as the sentinel moves them, and the pages it sends.

Each run starts from a clean var/ (the previous run is moved to var/last-run/,
demo/state.py); Ctrl-C or the end of ``--duration`` prints what happened
(demo/summary.py)."""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import select

from common.identity import open_store
from common.logs import configure_logging
from common.servers import serve_in_thread
from dashboards.console import ConsoleSettings, build_console
from demo.identity import demo_tokens
from demo.node_exporter import start_node_exporter
from demo.releases import run_releases
from demo.state import DemoBusy, ensure_ports_free, start_fresh
from demo.summary import summarize
from postmortems.app import create_served_app as postmortems_app
from postmortems.service import build_service as build_postmortems
from postmortems.settings import PostmortemSettings
from sentinel.api import create_app as sentinel_app
from sentinel.models import Alert, AlertTransition
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings
from translator.app import create_app as translator_app
from translator.demo import banner, seed_history, seed_users, traffic
from translator.services import build_services
from translator.settings import TranslatorSettings

VAR = Path("var")


def demo_faults(after: float) -> str:
    return json.dumps(
        {
            "start_after_seconds": after,
            "http_errors": [{"route": "/api/jobs", "rate": 0.4}],
            "payment_failures": [{"method": "wallet", "rate": 0.9, "reason": "wallet_declined"}],
            "empty_job_list": {"users": ["bob@example.com"]},
        }
    )


def watch_alerts(sentinel, stop: threading.Event) -> None:  # type: ignore[no-untyped-def]
    """Print each alert transition the sentinel records, as an on-call phone would show it."""
    seen = 0
    while not stop.wait(1.0):
        with sentinel.db.session() as s:
            moves = s.scalars(
                select(AlertTransition)
                .where(AlertTransition.id > seen)
                .order_by(AlertTransition.id)
            ).all()
            for move in moves:
                seen = move.id
                alert = s.get(Alert, move.alert_id)
                print(f"\n>>> ALERT {move.to_state.upper()}: {alert.summary}\n", flush=True)


class CtrlC:
    """The first Ctrl-C asks the run to stop (and print its summary); a second one
    leaves at once."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.pressed = False

    def __call__(self, _signum: int, _frame: object) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True
        self.stop.set()
        # os.write: a print here could re-enter one the main thread is in the middle of
        os.write(1, b"\n>>> STOPPING: Ctrl-C again to leave at once\n")


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the platform demo on SQLite.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="translator port")
    parser.add_argument("--sentinel-port", type=int, default=8100)
    parser.add_argument("--postmortems-port", type=int, default=8300)
    parser.add_argument("--console-port", type=int, default=8400)
    parser.add_argument(
        "--no-releases", action="store_true", help="skip the releases on the local fleet"
    )
    parser.add_argument("--duration", type=float, default=0, help="seconds; 0 until Ctrl-C")
    parser.add_argument("--history-days", type=int, default=14)
    parser.add_argument(
        "--fault-after",
        type=float,
        default=60,
        help="seconds before the faults start; negative: no faults",
    )
    args = parser.parse_args()

    stop = threading.Event()
    ctrl_c = CtrlC(stop)
    signal.signal(signal.SIGINT, ctrl_c)
    try:
        ensure_ports_free(
            args.host,
            {
                "translator": args.port,
                "sentinel": args.sentinel_port,
                "postmortems": args.postmortems_port,
                "console": args.console_port,
            },
        )
    except DemoBusy as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    moved = start_fresh(VAR)
    if moved is not None:
        print(f"The previous run's state is in {moved}/; this run starts from a clean var/.")
    try:
        run(args, stop)
    except KeyboardInterrupt:
        print("\n>>> STOPPED at once (second Ctrl-C); what ran is in var/", flush=True)
        return 130
    return 0


def run(args: argparse.Namespace, stop: threading.Event) -> None:
    started = time.monotonic()
    translator_settings = TranslatorSettings(
        faults=demo_faults(args.fault_after) if args.fault_after >= 0 else None,
    )
    log_path = VAR / "demo.log"
    log_file = open(log_path, "a")  # noqa: SIM115 - open for the whole run
    configure_logging("INFO", stream=log_file)
    identity = open_store(announce=True)  # the first start prints the admin's token once
    platform = demo_tokens(identity)
    services = build_services(translator_settings)
    rng = random.Random(42)
    tokens = seed_users(services)
    seed_history(services, args.history_days, rng)

    # The sentinel backfills its SQL signals from the translator's history by itself,
    # beside its loop; the priors judge until the learned bands can.
    node_targets = start_node_exporter(args.host, VAR / "node-exporter.log")
    sentinel = build_sentinel(
        SentinelSettings(
            translator_database_url=translator_settings.database_url,
            scrape_targets=[f"http://{args.host}:{args.port}/metrics"],
            backfill_days=args.history_days,
            translator_log_file=log_path,  # every component's lines; read translator's
            **({"node_targets": node_targets} if node_targets else {}),
        )
    )
    gate_url = f"sqlite:///{VAR}/release_gate.db"
    postmortems = build_postmortems(
        PostmortemSettings(
            sentinel_database_url=sentinel.settings.database_url,
            gate_database_url=gate_url,
            public_url=f"http://{args.host}:{args.postmortems_port}",
        )
    )
    watcher = threading.Thread(target=watch_alerts, args=(sentinel, stop), daemon=True)
    pm_app = postmortems_app(postmortems, background=True, interval=5, identity=identity)
    console = build_console(
        ConsoleSettings(
            sentinel_database_url=sentinel.settings.database_url,
            alerting=sentinel.settings.alerting,
            gate_database_url=gate_url,
            postmortems_database_url=postmortems.settings.database_url,
            postmortems_url=f"http://{args.host}:{args.postmortems_port}",
            translator_database_url=translator_settings.database_url,
        ),
        identity=identity,
    )
    with (
        serve_in_thread(translator_app(services, identity=identity), args.host, args.port) as base,
        serve_in_thread(
            sentinel_app(sentinel, identity=identity), args.host, args.sentinel_port
        ) as sentinel_base,
        serve_in_thread(pm_app, args.host, args.postmortems_port) as pm_base,
        serve_in_thread(console, args.host, args.console_port) as console_base,
    ):
        releases = threading.Thread(
            target=run_releases,
            args=(VAR / "fleet", gate_url, sentinel_base, pm_base, stop, platform.pipeline),
            name="demo-releases",
            daemon=True,
        )
        print(banner(base, tokens))
        auth = f"-H 'Authorization: Bearer {platform.viewer}'"
        print(f"""
Console at {console_base}  (what fires, who is on call, signals, incidents, releases, reports)

Logs (one line per event): {log_path}
Platform APIs want a token; this run's viewer token is in the commands below
(vigil-admin makes accounts and tokens; VIGIL_IDENTITY_DATABASE_URL=sqlite:///var/identity.db).

Sentinel at {sentinel_base}
  signals:  curl {auth} {sentinel_base}/api/signals
  alerts:   curl {auth} {sentinel_base}/api/alerts
  pages:    curl {auth} {sentinel_base}/api/groups    (who was paged, by what, acknowledged?)
  on call:  curl {auth} {sentinel_base}/api/oncall
  Without Twilio or Slack credentials pages print below and go to var/outbox.jsonl.

Postmortems at {pm_base}/incidents  (incidents from critical alerts and rollbacks;
  sign in with the viewer token above)
Releases: release-gate history   (GATE_DATABASE_URL={gate_url})
""")
        if args.fault_after >= 0:
            print(
                f"Faults start in {args.fault_after:g} s: /api/jobs 500s, wallet payments "
                "declined, bob's job list empty. Watch the alerts below. Ctrl-C stops.\n",
                flush=True,
            )
        watcher.start()
        if not args.no_releases and not stop.is_set():
            releases.start()
        if not stop.is_set():
            with traffic(base, tokens, rng):
                stop.wait(args.duration if args.duration > 0 else None)
        ended_by = "Ctrl-C" if stop.is_set() else "its duration"
        stop.set()
        watcher.join(5)
        if releases.is_alive():
            releases.join(60)
        urls = {
            "console": console_base,
            "translator": base,
            "sentinel": sentinel_base,
            "postmortems": pm_base,
        }
    # After the servers and the sentinel's loops stopped: nothing prints over the summary.
    summary = summarize(
        ended_by=ended_by,
        seconds=time.monotonic() - started,
        log_file=log_path,
        sentinel_db=sentinel.db,
        gate_database_url=gate_url,
        postmortems=postmortems,
        urls=urls,
    )
    print(summary.render(), flush=True)
    sentinel.close()
    services.close()
    identity.dispose()
    log_file.close()


if __name__ == "__main__":
    sys.exit(main())
