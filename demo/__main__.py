"""``python -m demo``: run the whole platform locally on SQLite.

1. The translator (var/translator.db) with workers, scheduler, seeded users,
   two weeks of history and live traffic, on 127.0.0.1:8000.
2. The sentinel (var/sentinel.db) on 127.0.0.1:8100, watching the default
   signal catalogue: SQL on the translator's database and its /metrics.
3. Postmortems (var/postmortems.db) on 127.0.0.1:8300: the web views of
   incidents, opened from critical alerts and from rollbacks.
4. Two releases through the gate on a local fleet behind nginx (var/fleet):
   a good build promoted, a bad one rolled back (demo/releases.py).
5. After ``--fault-after`` seconds, injected faults: /api/jobs answers 500 for
   40% of requests, wallet payments fail, bob's job list comes back empty.
   Alerts are printed as the sentinel moves them, and the pages it sends.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
from pathlib import Path

from sqlalchemy import select

from common.identity import open_store
from common.logs import configure_logging
from common.servers import serve_in_thread
from demo.identity import demo_tokens
from demo.node_exporter import start_node_exporter
from demo.releases import run_releases
from postmortems.app import create_served_app as postmortems_app
from postmortems.service import build_service as build_postmortems
from postmortems.settings import PostmortemSettings
from sentinel.api import create_app as sentinel_app
from sentinel.models import Alert, AlertTransition
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings
from translator.app import create_app as translator_app
from translator.demo import banner, seed_history, seed_users, traffic, wait
from translator.services import build_services
from translator.settings import TranslatorSettings


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


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the platform demo on SQLite.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="translator port")
    parser.add_argument("--sentinel-port", type=int, default=8100)
    parser.add_argument("--postmortems-port", type=int, default=8300)
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

    translator_settings = TranslatorSettings(
        faults=demo_faults(args.fault_after) if args.fault_after >= 0 else None,
    )
    Path("var").mkdir(exist_ok=True)
    log_file = open("var/demo.log", "a")  # noqa: SIM115 - open for the whole run
    configure_logging("INFO", stream=log_file)
    identity = open_store(announce=True)  # the first start prints the admin's token once
    platform = demo_tokens(identity)
    services = build_services(translator_settings)
    rng = random.Random(42)
    tokens = seed_users(services)
    seed_history(services, args.history_days, rng)

    # The sentinel backfills its SQL signals from the translator's history by itself,
    # beside its loop; the priors judge until the learned bands can.
    node_targets = start_node_exporter(args.host, Path("var/node-exporter.log"))
    sentinel = build_sentinel(
        SentinelSettings(
            translator_database_url=translator_settings.database_url,
            scrape_targets=[f"http://{args.host}:{args.port}/metrics"],
            backfill_days=args.history_days,
            translator_log_file=Path("var/demo.log"),  # every component's lines; read translator's
            **({"node_targets": node_targets} if node_targets else {}),
        )
    )
    gate_url = "sqlite:///var/release_gate.db"
    postmortems = build_postmortems(
        PostmortemSettings(
            sentinel_database_url=sentinel.settings.database_url,
            gate_database_url=gate_url,
            public_url=f"http://{args.host}:{args.postmortems_port}",
        )
    )
    stop = threading.Event()
    watcher = threading.Thread(target=watch_alerts, args=(sentinel, stop), daemon=True)
    pm_app = postmortems_app(postmortems, background=True, interval=5, identity=identity)
    with (
        serve_in_thread(translator_app(services, identity=identity), args.host, args.port) as base,
        serve_in_thread(
            sentinel_app(sentinel, identity=identity), args.host, args.sentinel_port
        ) as sentinel_base,
        serve_in_thread(pm_app, args.host, args.postmortems_port) as pm_base,
    ):
        releases = threading.Thread(
            target=run_releases,
            args=(Path("var/fleet"), gate_url, sentinel_base, pm_base, stop, platform.pipeline),
            name="demo-releases",
            daemon=True,
        )
        print(banner(base, tokens))
        auth = f"-H 'Authorization: Bearer {platform.viewer}'"
        print(f"""
Logs (one line per event): var/demo.log
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
        if not args.no_releases:
            releases.start()
        with traffic(base, tokens, rng):
            wait(args.duration)
        stop.set()
        watcher.join(5)
        if releases.is_alive():
            releases.join(60)
    sentinel.close()
    services.close()
    identity.dispose()
    log_file.close()


if __name__ == "__main__":
    main()
