"""The console's one login: a platform token (common/identity), asked for once and kept
in a cookie. Every page wants a viewer; acting on a page (acknowledge, resolve,
silence), a responder. Scripts and tests may send the token as a bearer header."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from common.identity import Principal, Role, identify, parse_bearer

COOKIE = "vigil_console"


class NotSignedIn(Exception):
    """A page asked for by someone the console does not know, or whose role is too low."""

    def __init__(self, response: Response) -> None:
        self.response = response


def caller(request: Request) -> Principal | None:
    header = request.headers.get("authorization")
    token = request.cookies.get(COOKIE) or (parse_bearer(header) if header else None)
    return identify(request, token)


def needs(role: Role):  # type: ignore[no-untyped-def]
    """A dependency: the signed-in caller holding `role`; otherwise the login page (no
    token) or a 403 naming what is missing (a token whose role is too low)."""

    def dependency(request: Request) -> Principal:
        found = caller(request)
        if found is None:
            target = quote(str(request.url.path))
            raise NotSignedIn(RedirectResponse(f"/login?next={target}", status_code=303))
        if not found.may(role):
            raise NotSignedIn(
                PlainTextResponse(
                    f"{found.name} is a {found.role.value}: this needs a {role.value}",
                    status_code=403,
                )
            )
        return found

    return dependency


def safe_target(target: str | None) -> str:
    """Where to go after signing in: a path of this console, never another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
