"""A tuning applied by another process (the console's accept, `sentinel tune` from a
shell) reaches the running sentinel: its next cycle rebuilds the detectors with it."""

from __future__ import annotations

from common.yaml_config import parse_yaml_model
from sentinel import tunings
from sentinel.catalogue import Catalogue
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings

CATALOGUE = """
signals:
  - name: queue.depth
    description: queue depth
    kind: level
    interval_seconds: 60
    labels: {team: translation, service: translator}
    detector: {kind: static, params: {threshold: 100, direction: above}}
    source: {type: push}
"""


def test_the_next_cycle_judges_with_a_tuning_applied_by_another_process(
    sentinel_url, database_url, clock
) -> None:
    settings = SentinelSettings(database_url=sentinel_url, translator_database_url=database_url)
    catalogue = parse_yaml_model(CATALOGUE, Catalogue)
    running = build_sentinel(settings, clock=clock, catalogue=catalogue, migrate=False)
    try:
        running.cycle()
        first = running.evaluator
        assert first is not None and first.tunings == {}
        running.cycle()
        assert running.evaluator is first  # nothing changed: nothing rebuilt
        spec = {"kind": "static", "params": {"threshold": 250, "direction": "above"}}
        tuning_id = tunings.record(
            running.db, "queue.depth", spec, {}, clock.now(), apply=True, by="sysadmin-1"
        )
        running.cycle()
        assert running.evaluator is not first
        assert running.evaluator.tunings[("queue.depth", "")].id == tuning_id
        detector, _ = running.evaluator._detector_spec(catalogue.get("queue.depth"), "")
        assert detector.params["threshold"] == 250
    finally:
        running.close()
