"""Every error the HTTP API answers with, in ONE place.

Routes raise domain errors (:mod:`ledger.core.errors`, :mod:`anchoring.errors`), never
``HTTPException``; this module maps them, FastAPI's request validation errors, unknown routes
and methods, and the middleware's refusals to one JSON shape::

    {"error": {"code": "invalid_argument", "message": "query.limit: ...", "field": "query.limit"}}

``code`` is stable (clients switch on it), ``message`` is for people and names the field, then
the reason. Responses never carry a stack trace, SQL, a connection URL or a secret: unexpected
errors are logged server-side and answered with a bare ``internal_error``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, compile_path

from anchoring.errors import ChainConfigError, ChainUnavailableError
from api.auth import AuthenticationError, PermissionDeniedError
from api.idempotency import IdempotencyKeyReusedError
from ledger.core.errors import ConflictError, InvalidArgumentError, LedgerError, NotFoundError, VerificationError
from ledger.procurement.importer import ImportRefusedError

log = logging.getLogger(__name__)

#: Seconds a client should wait before retrying after a 503 of each kind.
RETRY_DATABASE = 5
RETRY_CHAIN = 30
RETRY_OVERLOAD = 1


class ErrorDetail(BaseModel):
    field: str | None = Field(description="Where the problem is: 'query.limit', 'path.ocid', 'body.items[0]'.")
    message: str


class ErrorBody(BaseModel):
    code: str = Field(
        description="Stable machine-readable code: invalid_argument, malformed_json, not_found, "
        "method_not_allowed, conflict, verification_failed, payload_too_large, json_too_deep, duplicate_header, "
        "ambiguous_length, rate_limited, overloaded, "
        "database_unavailable, chain_unavailable, chain_misconfigured, internal_error, ...",
        examples=["invalid_argument"],
    )
    message: str = Field(description="For people: the field, then the reason.")
    field: str | None = Field(default=None, description="The offending field, when one is to blame.")
    details: list[ErrorDetail] | None = Field(
        default=None, description="Every problem found, when a request has more than one."
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


#: OpenAPI ``responses=`` for the errors any API route can give.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc(
        "The body is not JSON (malformed_json) or nests deeper than the server accepts (json_too_deep); "
        "Authorization sent twice (duplicate_header); Content-Length with Transfer-Encoding (ambiguous_length)."
    ),
    413: _doc("Request body larger than the server accepts (payload_too_large)."),
    422: _doc("A parameter is invalid (invalid_argument); `field` names it, e.g. `query.limit`."),
    429: _doc("Too many requests from this client (rate_limited); see Retry-After."),
    500: _doc("Unexpected server error (internal_error); details are in the server's log only."),
    503: _doc("Overloaded, or the database or a chain is unreachable; see Retry-After."),
}
#: ... and for routes that name something that may not exist.
NOT_FOUND_RESPONSES: dict[int | str, dict[str, Any]] = {
    **COMMON_RESPONSES,
    404: _doc("The named object (tender, anchor, chain) does not exist (not_found)."),
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    details: list[ErrorDetail] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON error response; also used by :mod:`api.middleware` for its refusals."""
    body = ErrorResponse(error=ErrorBody(code=code, message=message, field=field, details=details))
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers)


def status_code_name(status: int) -> str:
    """``405`` -> ``method_not_allowed``: the snake-case reason phrase."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return f"http_{status}"
    return phrase.lower().replace(" ", "_").replace("-", "_").replace("'", "")


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """``("body", "items", 0, "ocid")`` -> ``body.items[0].ocid``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    """Map a :class:`LedgerError` (subclasses first) to its status and code."""
    if isinstance(exc, ChainUnavailableError):
        return error_response(503, "chain_unavailable", str(exc), headers={"Retry-After": str(RETRY_CHAIN)})
    if isinstance(exc, ChainConfigError):
        log.error("chain misconfigured while serving %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            503,
            "chain_misconfigured",
            "a configured chain cannot be used; the operator has to fix its settings",
            headers={"Retry-After": str(RETRY_CHAIN)},
        )
    if isinstance(exc, AuthenticationError):
        return error_response(
            401, exc.code, str(exc), field=exc.field, headers={"WWW-Authenticate": exc.www_authenticate}
        )
    if isinstance(exc, PermissionDeniedError):
        return error_response(403, exc.code, str(exc), field=exc.field)
    if isinstance(exc, IdempotencyKeyReusedError):
        return error_response(409, exc.code, str(exc), field=exc.field)
    if isinstance(exc, VerificationError):
        return error_response(422, "verification_failed", str(exc), field=getattr(exc, "field", None))
    if isinstance(exc, ImportRefusedError):
        details = [ErrorDetail(field=f"body.{p.release}.{p.path}", message=str(p)) for p in exc.problems[:1000]]
        return error_response(422, "invalid_argument", str(exc), field="body", details=details)
    if isinstance(exc, InvalidArgumentError):
        listed = [ErrorDetail(field=p.field, message=p.reason) for p in exc.all_problems()] if exc.others else None
        return error_response(422, "invalid_argument", str(exc), field=exc.field, details=listed)
    if isinstance(exc, NotFoundError):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, ConflictError):
        return error_response(409, "conflict", str(exc), field=exc.field)
    return await _internal_error(request, exc)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error serving %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error; it has been logged")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable serving %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return error_response(
        503, "database_unavailable", "the database is unreachable", headers={"Retry-After": str(RETRY_DATABASE)}
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        return error_response(400, "malformed_json", "body: is not valid JSON", field="body")
    details = [ErrorDetail(field=field_path(err["loc"]), message=str(err["msg"])) for err in errors]
    if not details:
        return error_response(422, "invalid_argument", "the request is invalid")
    first = details[0]
    return error_response(
        422,
        "invalid_argument",
        f"{first.field}: {first.message}",
        field=first.field,
        details=details if len(details) > 1 else None,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    page = getattr(request.app.state, "not_found_page", None)
    if status == 404 and page is not None and _wants_page(request):
        return page(request, f"{request.url.path}: no such page")  # type: ignore[no-any-return]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    message = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else ""
    if not message:
        if status == 404:
            message = f"{request.url.path}: no such resource"
        elif status == 405:
            message = f"{request.url.path}: method {request.method} not allowed"
        else:
            message = phrase or f"HTTP {status}"
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(status, status_code_name(status), message, headers=headers)


def _wants_page(request: Request) -> bool:
    """A browser asking for a page of the site (not the API): its 404 is a page too, when the
    application has a site (``app.state.not_found_page``, set by :func:`explorer.pages.install`)."""
    path = request.url.path
    return (
        request.method in ("GET", "HEAD")
        and not path.startswith("/api/")
        and "text/html" in request.headers.get("accept", "")
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first
    route's, when several routes share a path with different methods)."""
    from fastapi.routing import iter_route_contexts

    path = request.scope.get("path", "")
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.router.routes):
        route = context.original_route
        if not context.path_format or not isinstance(route, Route | APIRoute) or not route.methods:
            continue
        regex, _, _ = compile_path(str(context.path_format))
        if regex.match(path):
            methods |= route.methods
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``. Unexpected exceptions are turned into a 500 by
    :class:`api.middleware.CatchAllMiddleware`, so that they too pass the other middleware."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(LedgerError, _domain_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(PoolTimeoutError, _database_error)
