"""What the console changes: the sentinel's own actions on a page (acknowledge,
resolve, silence), through its public function, recorded and audited as done by the
signed-in person "via console"."""

from __future__ import annotations

from datetime import datetime

from sentinel.alerting import actions
from sentinel.db import Database


class SentinelActions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def act_on_alert(
        self, alert_id: int, action: actions.Action, by: str, now: datetime, minutes: float
    ) -> None:
        """Act on the group (the page) the alert belongs to. LookupError: no such alert
        or page; ValueError: the action does not apply (e.g. already resolved)."""
        try:
            with self.db.session() as s:
                group_id = actions.group_of_alert(s, alert_id)
                actions.act(s, action, group_id, by, "console", now, minutes)
        except actions.ActionError as exc:
            if exc.status == 404:
                raise LookupError(str(exc)) from None
            raise ValueError(str(exc)) from None
