"""The interactive API documentation (Swagger UI) at ``/api/docs``, served whole by this
application: its script, stylesheet and icon come from the pinned ``fastapi-offline`` package
(PyPI; the ``swagger-ui-dist`` build it ships), never from a CDN, so the page works on a network
that reaches nothing but this server.

The files are served under content-hashed names with a year of ``immutable`` caching, like the
explorer's (:class:`explorer.assets.Assets`); they are read on the first request, not at startup.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response

from explorer.assets import Assets

DOCS_PATH = "/api/docs"
ASSETS_PREFIX = "/api/docs/assets/"
#: What Swagger UI needs of the package's files (it also ships ReDoc, not served).
FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")

router = APIRouter(include_in_schema=False)


@cache
def swagger_assets() -> Assets:
    """Swagger UI's files, from the installed ``fastapi_offline`` package."""
    return Assets(Path(str(files("fastapi_offline") / "static")), prefix=ASSETS_PREFIX, names=FILES)


@router.get(DOCS_PATH)
def swagger_ui(request: Request) -> HTMLResponse:
    assets = swagger_assets()
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} API",
        swagger_js_url=assets.url("swagger-ui-bundle.js"),
        swagger_css_url=assets.url("swagger-ui.css"),
        swagger_favicon_url=assets.url("favicon.png"),
    )


@router.get(ASSETS_PREFIX + "{name}")
def swagger_asset(request: Request, name: str) -> Response:
    found = swagger_assets().response(request, name)
    return found if found is not None else Response(status_code=404)
