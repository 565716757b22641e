"""FastAPI dependencies: the process's services and the calling user.

Users' tokens are the translator's customers'. Operator actions (creating
users) take a platform token instead (``common.identity``), the same one the
other services take."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from common.http_errors import answers
from common.identity import Admin
from translator.accounts.models import User
from translator.accounts.service import authenticate
from translator.errors import Unauthorized
from translator.services import Services


async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def _token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer <API token>'")
    return token.strip()


@answers(401)
def optional_user(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> User | None:
    token = _token(authorization)
    if token is None:
        return None
    with services.db.session() as s:
        return authenticate(s, token)


def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise Unauthorized("an API token is required: 'Authorization: Bearer <token>'")
    return user


UserDep = Annotated[User, Depends(current_user)]
OptionalUserDep = Annotated[User | None, Depends(optional_user)]
AdminDep = Admin  # a platform admin's token, not a customer's
