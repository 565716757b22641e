"""The open action items page: every action item not done yet across incidents, overdue
first, each with its owner, due date and incident. Read through postmortems'
`action_list`; changing an item stays with postmortems."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from common.identity import Role
from dashboards.console.auth import needs
from postmortems.action_list import open_actions
from postmortems.service import Postmortems

Page = Callable[..., HTMLResponse]


def register_action_items(
    app: FastAPI, page: Page, postmortems: Postmortems | None, clock: Callable[[], datetime]
) -> None:
    viewer = Depends(needs(Role.viewer))

    @app.get("/actions", response_class=HTMLResponse, dependencies=[viewer])
    def action_items(request: Request) -> HTMLResponse:
        # None: postmortems is not configured, and the page says so
        found = open_actions(postmortems, clock().date()) if postmortems is not None else None
        overdue = sum(1 for o in found or [] if o.overdue)
        return page(request, "actions.html", items=found, overdue=overdue)
