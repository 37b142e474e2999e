"""The interactive API documentation (Swagger UI) at ``/api/docs``, served whole by this
application: its script, stylesheet and icon come from the pinned ``fastapi-offline`` package
(PyPI; the ``swagger-ui-dist`` build it ships), never from a CDN, so the page works on a network
that reaches nothing but this server. Beside them, two small files of our own (``api/static``):
``docs.css``, loaded after Swagger UI's stylesheet, for colour contrast and example bodies that
wrap on a phone, and ``docs.js``, which starts Swagger UI with a plugin (Swagger UI's own
``wrapComponents``) that fixes the faults axe-core finds in its markup: the page is then clean
under axe-core (tests/explorer/test_api_docs_browser.py). Swagger UI's words are English, so the
page says so (``lang="en"``) whatever language the explorer was read in.

The files are served under content-hashed names with a year of ``immutable`` caching, like the
explorer's (:class:`explorer.assets.Assets`); they are read on the first request, not at startup.
"""

from __future__ import annotations

from functools import cache
from html import escape
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from explorer.assets import Assets

DOCS_PATH = "/api/docs"
ASSETS_PREFIX = "/api/docs/assets/"
#: What Swagger UI needs of the package's files (it also ships ReDoc, not served).
FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
#: Ours, beside them.
OWN_FILES_DIR = Path(__file__).parent / "static"
OWN_FILES = ("docs.css", "docs.js")

#: The page runs only this server's files (nothing inline: docs.js starts Swagger UI, whose
#: styles are set through the DOM, which style-src does not govern); its stylesheet draws icons
#: from data: URLs; "Try it out" calls the API on this server.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{swagger_css}">
<link rel="stylesheet" href="{own_css}">
<link rel="icon" href="{favicon}">
</head>
<body>
<main id="swagger-ui" data-openapi-url="{openapi_url}"></main>
<script src="{swagger_js}"></script>
<script src="{own_js}"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@cache
def swagger_assets() -> Assets:
    """Swagger UI's files, from the installed ``fastapi_offline`` package."""
    return Assets(Path(str(files("fastapi_offline") / "static")), prefix=ASSETS_PREFIX, names=FILES)


@cache
def own_assets() -> Assets:
    """Our stylesheet and script for the page, from ``api/static``."""
    return Assets(OWN_FILES_DIR, prefix=ASSETS_PREFIX, names=OWN_FILES)


@router.get(DOCS_PATH)
def swagger_ui(request: Request) -> HTMLResponse:
    swagger, own = swagger_assets(), own_assets()
    return HTMLResponse(
        PAGE.format(
            title=escape(f"{request.app.title} API"),
            openapi_url=escape(request.app.openapi_url),
            swagger_css=swagger.url("swagger-ui.css"),
            swagger_js=swagger.url("swagger-ui-bundle.js"),
            favicon=swagger.url("favicon.png"),
            own_css=own.url("docs.css"),
            own_js=own.url("docs.js"),
        ),
        headers={"Content-Security-Policy": CSP},
    )


@router.get(ASSETS_PREFIX + "{name}")
def swagger_asset(request: Request, name: str) -> Response:
    found = swagger_assets().response(request, name) or own_assets().response(request, name)
    return found if found is not None else Response(status_code=404)
