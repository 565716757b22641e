"""The people of the demo's story, acting through the platform's own APIs with
their own tokens, as they would from a phone or a terminal: the on-call person
acknowledges the page that reached them (the sentinel's API), and the incident
lead resolves a bad release's incident, fills its postmortem, adds the detective
action the detector rule asks for and closes it (postmortems' API)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from demo.identity import LEAD, DemoTokens

TIMEOUT = httpx.Timeout(10.0, read=60.0)  # closing replays a detector over history


class ActionRefused(RuntimeError):
    """The platform said no; the message is its answer."""


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.is_error:
        raise ActionRefused(
            f"{response.request.method} {response.request.url.path}: "
            f"HTTP {response.status_code} {response.text[:500]}"
        )
    return response.json()


class OnCall:
    def __init__(self, sentinel_url: str, tokens: DemoTokens) -> None:
        self.url = sentinel_url.rstrip("/")
        self.tokens = tokens

    def acknowledge(self, group_id: int, person: str) -> dict[str, Any]:
        """``person`` acknowledges the page of alert group ``group_id``: the
        escalation stops. Returns the group as the sentinel answers it."""
        with httpx.Client(timeout=TIMEOUT) as client:
            return _answer(
                client.post(
                    f"{self.url}/api/groups/{group_id}/acknowledge",
                    json={},
                    headers={"Authorization": f"Bearer {self.tokens.person(person)}"},
                )
            )


# The monitor that pages when a bad build reaches production's users: the canary
# caught this one; the replay over the incident shows production stayed quiet.
DETECTIVE_SIGNAL = "http.error_ratio"


class IncidentLead:
    name = LEAD

    def __init__(self, postmortems_url: str, tokens: DemoTokens) -> None:
        self.url = postmortems_url.rstrip("/")
        self.tokens = tokens

    def close_bad_release(
        self, incident_id: int, version: str, previous: str | None, route: str, users: str
    ) -> dict[str, Any]:
        """Resolve, write up and close the incident a rolled-back release opened.
        ``users``: what the users saw during the release, for its business impact.
        Returns the closed incident; ActionRefused says what stood in the way."""
        back_to = previous or "the previous version"
        headers = {"Authorization": f"Bearer {self.tokens.person(self.name)}"}
        base = f"{self.url}/api/incidents/{incident_id}"
        with httpx.Client(timeout=TIMEOUT, headers=headers) as client:
            _answer(
                client.post(
                    f"{base}/transition",
                    json={
                        "status": "resolved",
                        "acknowledge": True,
                        "note": f"the gate rolled the canary back; production stays on {back_to}",
                    },
                )
            )
            _answer(
                client.put(
                    f"{base}/postmortem",
                    json={
                        "root_cause": f"Release {version} answered 500 to about 30% of "
                        f"GET {route}: the build shipped with a broken plans handler.",
                        "resolution": "The release gate's canary judge compared the canary's "
                        f"5xx rate with production's and rolled {version} back to {back_to} "
                        "within seconds; nginx retried the canary's 500s on production.",
                        "business_impact": f"None seen by users: {users}.",
                        "conclusions": "The canary did its job. Production's 5xx ratio "
                        "(its error-budget burn) is the monitor that pages if a twin of this "
                        "bug ever skips the canary.",
                        "lessons": [{"kind": "do", "text": "Send every build through the canary."}],
                    },
                )
            )
            _answer(
                client.post(
                    f"{base}/actions",
                    json={
                        "title": "Page on production's 5xx ratio when a release burns "
                        "the error budget",
                        "kind": "detective",
                        "owner": self.name,
                        "due_date": (datetime.now(UTC) + timedelta(days=7)).date().isoformat(),
                        "signal": DETECTIVE_SIGNAL,
                    },
                )
            )
            return _answer(client.post(f"{base}/close"))
