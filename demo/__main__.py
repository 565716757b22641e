"""``python -m demo``: run the whole platform locally on SQLite, and play and
tell its story (demo/story.py).

1. The translator (var/translator.db) with workers, scheduler, seeded users,
   30 days of history and live traffic, on 127.0.0.1:8000.
2. The sentinel (var/sentinel.db) on 127.0.0.1:8100, watching the default
   signal catalogue: SQL on the translator's database and its /metrics.
3. Postmortems (var/postmortems.db) on 127.0.0.1:8300: the web views of
   incidents, opened from critical alerts and from rollbacks; the console
   (dashboards/console) on 127.0.0.1:8400 over all of it.
4. Two releases through the gate on a local fleet behind nginx (var/fleet):
   a good build promoted, a bad one rolled back (demo/releases.py), whose
   incident its lead writes up and closes.
5. Once the releases are over, and ``--fault-after`` seconds in at the earliest,
   injected faults (demo/faults.py): wallet payments fail, /api/jobs answers 500
   for 40% of requests, bob's job list comes back empty; their alerts page the
   person on call, who acknowledges them.

Each run starts from a clean var/ (the previous run is moved to var/last-run/,
demo/state.py); Ctrl-C, the end of ``--duration`` or (``--short``) the end of
the story prints what happened (demo/summary.py)."""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

from common.identity import open_store
from common.logs import configure_logging
from common.servers import serve_in_thread
from dashboards.console import ConsoleSettings, build_console
from demo.faults import no_faults
from demo.identity import demo_tokens
from demo.narrator import Narrator
from demo.node_exporter import start_node_exporter
from demo.people import IncidentLead, OnCall
from demo.releases import BAD_RELEASE_ONLY, RELEASES, FleetNews, run_releases
from demo.state import DemoBusy, ensure_ports_free, start_fresh
from demo.story import Records, Story
from demo.summary import summarize
from postmortems.app import create_served_app as postmortems_app
from postmortems.service import build_service as build_postmortems
from postmortems.settings import PostmortemSettings
from release_gate.db import Database as GateDatabase
from sentinel.api import create_app as sentinel_app
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings
from translator.app import create_app as translator_app
from translator.demo import banner, seed_history, seed_users, traffic
from translator.services import build_services
from translator.settings import TranslatorSettings

VAR = Path("var")
# --short: the learned bands judge after a day of history (the auto detector's warm-up);
# with less, the priors alone judge the whole story and page on a quiet half-hour.
SHORT_HISTORY_DAYS = 2


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
    parser.add_argument(
        "--history-days",
        type=int,
        default=None,
        help=f"days of backdated history (default 30; {SHORT_HISTORY_DAYS} with --short)",
    )
    parser.add_argument(
        "--fault-after",
        type=float,
        default=None,
        help="seconds from the start before the faults, at the earliest: they wait for "
        "the releases to be over (default 60; 0 with --short); negative: no faults",
    )
    parser.add_argument(
        "--short",
        action="store_true",
        help="the story compressed (for CI): the bad release only, the faults right after "
        "it, and the demo ends once the story is told",
    )
    args = parser.parse_args()
    if args.history_days is None:
        args.history_days = SHORT_HISTORY_DAYS if args.short else 30
    if args.fault_after is None:
        args.fault_after = 0 if args.short else 60

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
    faults_file = VAR / "faults.json"
    no_faults(faults_file)  # the story starts them (demo/story.py)
    translator_settings = TranslatorSettings(faults_file=faults_file)
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
        ),
        # The story tells the pages; the outbox's own print of each goes to the log
        # (and, as always, to var/outbox.jsonl).
        outbox_stream=log_file,
    )
    gate_url = f"sqlite:///{VAR}/release_gate.db"
    gate_db = GateDatabase(gate_url)
    gate_db.migrate()  # before the story reads it and the releases write it
    postmortems = build_postmortems(
        PostmortemSettings(
            sentinel_database_url=sentinel.settings.database_url,
            gate_database_url=gate_url,
            public_url=f"http://{args.host}:{args.postmortems_port}",
        )
    )
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
        urls = {
            "console": console_base,
            "translator": base,
            "sentinel": sentinel_base,
            "postmortems": pm_base,
        }
        print(banner(base, tokens))
        print(_where(urls, platform.viewer, log_path, gate_url))
        narrator = Narrator()
        fleet = None if args.no_releases else FleetNews()
        story = Story(
            narrator=narrator,
            records=Records(
                sentinel_db=sentinel.db,
                gate_db=gate_db,
                postmortems=postmortems,
                log_file=log_path,
                outbox_file=sentinel.settings.outbox_file,
            ),
            on_call=OnCall(sentinel_base, platform),
            lead=IncidentLead(pm_base, platform),
            urls=urls,
            faults_file=faults_file,
            fault_after=args.fault_after,
            fleet=fleet,
            ends_when_told=args.short,
        )
        print(_plan(args, fleet is not None), flush=True)
        teller = threading.Thread(target=story.run, args=(stop,), name="demo-story", daemon=True)
        releases = threading.Thread(
            target=run_releases,
            args=(
                VAR / "fleet",
                BAD_RELEASE_ONLY if args.short else RELEASES,
                gate_url,
                sentinel_base,
                pm_base,
                stop,
                platform.pipeline,
                fleet,
                narrator,
            ),
            name="demo-releases",
            daemon=True,
        )
        if fleet is not None and not stop.is_set():
            releases.start()
        teller.start()
        ended_by = "Ctrl-C"
        if not stop.is_set():
            with traffic(base, tokens, rng):
                ended_by = _wait_for_the_end(args, stop, story.told, started)
        stop.set()
        teller.join(10)
        if releases.is_alive():
            releases.join(60)
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
    gate_db.dispose()
    sentinel.close()
    services.close()
    identity.dispose()
    log_file.close()


def _wait_for_the_end(
    args: argparse.Namespace, stop: threading.Event, told: threading.Event, started: float
) -> str:
    """Until Ctrl-C, the end of ``--duration``, or (``--short``) the story told."""
    while not stop.wait(0.5):
        if args.duration > 0 and time.monotonic() - started >= args.duration:
            return "its duration"
        if args.short and told.is_set():
            return "the end of the story"
    return "Ctrl-C"


def _where(urls: dict[str, str], viewer: str, log_path: Path, gate_url: str) -> str:
    auth = f"-H 'Authorization: Bearer {viewer}'"
    sentinel = urls["sentinel"]
    return f"""
Console at {urls["console"]}  (what fires, who is on call, signals, releases, hosts;
  sign in with the admin token above, or this run's viewer token: {viewer})
  incidents and postmortems: {urls["console"]}/incidents (postmortems' API at {urls["postmortems"]})
Sentinel at {sentinel}
  alerts:   curl {auth} {sentinel}/api/alerts
  pages:    curl {auth} {sentinel}/api/groups    (who was paged, by what, acknowledged?)
Releases: GATE_DATABASE_URL={gate_url} .venv/bin/release-gate history
Logs (one line per event): {log_path}; pages as sent (no Twilio or Slack credentials):
  var/outbox.jsonl
"""


def _plan(args: argparse.Namespace, releases: bool) -> str:
    steps = []
    if releases:
        steps.append(
            "a bad release goes through the gate"
            if args.short
            else "a good release, then a bad one, go through the gate"
        )
    if args.fault_after >= 0:
        steps.append(
            "then faults: wallet payments fail, /api/jobs answers 500s, bob's job list is empty"
        )
    story = "; ".join(steps) if steps else "traffic only (no releases, no faults)"
    end = "it ends once the story is told" if args.short else "Ctrl-C ends it with a summary"
    return f"""The story: {story}. Each line below is printed when the records show it
(time since the start, what happened); {end}.
"""


if __name__ == "__main__":
    sys.exit(main())
