"""``/docs`` that works without the internet: Swagger UI's script, stylesheet and
icon are served by the service itself from the ``swagger-ui-bundle-v2`` package
(Swagger UI 5, which reads the OpenAPI 3.1 documents FastAPI writes), instead of
FastAPI's default links to a CDN. An operator behind a firewall, or on a laptop
on a train, still gets the interactive API reference.

Every service builds its app with ``FastAPI(..., docs_url=None, redoc_url=None)``
and then calls ``serve_docs_offline(app)``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
# FastAPI's defaults, less the validator badge: Swagger UI would fetch it from
# validator.swagger.io for every document it shows.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}


def serve_docs_offline(app: FastAPI) -> None:
    """Add ``/docs`` (and its OAuth2 redirect) with assets served from the package."""
    if app.docs_url is not None:
        raise ValueError("build the app with docs_url=None: serve_docs_offline adds /docs")
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")
    redirect_path = f"{DOCS_PATH}/oauth2-redirect"

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            oauth2_redirect_url=f"{root}{redirect_path}",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get(redirect_path, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
