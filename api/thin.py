"""The thin path of the two single-event writes, ``POST /api/v1/tenders`` and
``POST /api/v1/tenders/{ocid}/events``: served ahead of FastAPI's router and dependency solving.

These two routes carry nearly every write of a busy log, one event a request; what FastAPI does
for each of them (match the path against every route of the site, solve the dependency graph
generically, open its exit stacks) costs more server CPU than the domain checks. The middleware
here, the innermost layer of :func:`api.app.create_app`, answers them itself with the very pieces
the FastAPI routes are built of, in FastAPI's order, so that every answer is the one the route would
give, byte for byte (``tests/api/test_thin_writes.py`` compares the two paths):

1. the body is read and parsed as FastAPI does (JSON for ``application/json`` and ``+json`` types;
   400 ``malformed_json`` or ``bad_request`` otherwise);
2. the dependencies of :mod:`api.routes.writes`' ``Recorder`` and of :data:`api.auth.OfficerDep`
   (the log, the settings, the clock, ``Idempotency-Key``, then the API key: the same brief key
   cache and the same revocation bound, :class:`api.auth.KeyCache`);
3. the body validated by the route's own field (422 naming ``body.<field>``);
4. the route's own endpoint function, a coroutine, awaited: it queues an unsigned event to the
   group commit from the loop, and hands anything else to a thread (:mod:`api.handoff`).

Exceptions go to the application's exception handlers (:mod:`api.errors`) exactly as from the
route; the route object is put in the scope as the router would, so the metrics and the access log
(:class:`api.middleware.ObservabilityMiddleware`) label the request with the route's template. All
the other layers (limits, headers, metrics, replicas) are outside this one and see both paths
alike. The FastAPI routes stay declared: they make the OpenAPI document, and they answer what this
path leaves to them (another method, another path).
"""

from __future__ import annotations

import email.message
import json
from dataclasses import dataclass
from typing import Any

from fastapi._compat import ModelField, get_missing_field_error
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from . import auth
from .deps import get_clock, get_log, get_settings
from .routes import writes

#: The paths served here, as the route templates the application declares them under.
CREATE_TENDER = "/api/v1/tenders"
RECORD_EVENT = "/api/v1/tenders/{ocid}/events"
SERVED = frozenset({CREATE_TENDER, RECORD_EVENT})
_PREFIX = CREATE_TENDER  # both start so: anything else passes at the cost of one comparison
_UNSET: Any = object()  # no body (FastAPI's Undefined: the body field's "missing" error)


@dataclass(frozen=True, slots=True)
class _Thin:
    """One route served here: the declared route and how to answer it."""

    route: APIRoute
    regex: Any
    strict_content_type: bool  # the route's: without Content-Type, the body is not read as JSON


class ThinWritesMiddleware:
    """Answer ``POST`` on the two single-write routes without FastAPI's router (see the module).

    The routes are looked up in the application (``scope["app"]``) on the first request; until
    then, and for every other request, this layer only compares the path's start.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._served: tuple[_Thin, ...] | None = None
        self._handlers: tuple[dict[Any, Any], dict[int, Any]] = ({}, {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(_PREFIX):
            await self.app(scope, receive, send)
            return
        served = self._served
        if served is None:
            served = self._find(scope["app"])
        path = get_route_path(scope)
        for thin in served:
            match = thin.regex.match(path)
            if match is not None:
                break
        else:
            await self.app(scope, receive, send)
            return
        params = match.groupdict()
        route = thin.route
        # As the router leaves the scope (the access log and the metrics read the route from it).
        scope["endpoint"] = route.endpoint
        scope["path_params"] = params
        scope["route"] = route
        scope["starlette.exception_handlers"] = self._handlers
        request = Request(scope, receive, send)

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            response = await _serve(request, thin, params)
            await response(scope, receive, send)

        await wrap_app_handling_exceptions(answer, request)(scope, receive, send)

    def _find(self, app: Any) -> tuple[_Thin, ...]:
        """The declared routes of the two writes, and the application's exception handlers (as
        Starlette's ExceptionMiddleware, inside this layer, would hand them to the route)."""
        from fastapi.routing import iter_route_contexts

        found: list[_Thin] = []
        for context in iter_route_contexts(app.routes):
            route = context.original_route
            template = str(context.path_format or "")
            if template in SERVED and isinstance(route, APIRoute) and "POST" in (route.methods or ()):
                regex, _, _ = compile_path(template)
                strict = route.strict_content_type
                if isinstance(strict, DefaultPlaceholder):
                    strict = strict.value
                found.append(_Thin(route, regex, bool(strict)))
        handlers: dict[Any, Any] = {}
        statuses: dict[int, Any] = {}
        for key, handler in app.exception_handlers.items():
            if isinstance(key, int):
                if key != 500:
                    statuses[key] = handler
            elif key is not Exception:
                handlers[key] = handler
        self._handlers = (handlers, statuses)
        self._served = tuple(found)
        return self._served


async def _body(request: Request, strict_content_type: bool) -> Any:
    """The request's body as FastAPI's request handler reads it for a JSON body field: the parsed
    JSON for a JSON media type, else the bytes (refused by the validation), or nothing.

    Raises :class:`RequestValidationError` (``json_invalid``: 400 ``malformed_json``) and
    :class:`HTTPException` 400, as FastAPI does.
    """
    try:
        body = await request.body()
        if not body:
            return _UNSET
        content_type = request.headers.get("content-type")
        if content_type == "application/json":  # what nearly every client sends: no header parsing
            return await request.json()
        if not content_type:
            return body if strict_content_type else await request.json()
        message = email.message.Message()
        message["content-type"] = content_type
        if message.get_content_maintype() == "application":
            subtype = message.get_content_subtype()
            if subtype == "json" or subtype.endswith("+json"):
                return await request.json()
        return body
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([error | {"ctx": {"error": exc.msg}}], body=exc.doc) from exc
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


async def _writer(request: Request) -> tuple[writes.Recorder, auth.Principal]:
    """The route's dependencies, in the order FastAPI solves them: the recorder's (log, settings,
    clock, ``Idempotency-Key``), then the officer's key. Raises what they raise."""
    log = await get_log(request)
    settings = await get_settings(request)
    clock = await get_clock(request)
    recorder = writes.Recorder(request, log, settings, clock, request.headers.get("idempotency-key"))
    bearer = await auth.bearer_scheme(request)
    api_key = await auth.api_key_scheme(request)
    principal = await auth.current_principal(request, log, clock, bearer, api_key)
    return recorder, await auth.require_officer(principal)


def _validated(field: ModelField, body: Any) -> Any:
    """``body`` validated by the route's body field, as FastAPI does (errors located under ``body``).

    Raises :class:`RequestValidationError`."""
    if body is _UNSET:
        raise RequestValidationError([get_missing_field_error(loc=("body",))], body=None)
    value, errors = field.validate(body, {}, loc=("body",))
    if errors:
        raise RequestValidationError(errors, body=body)
    return value


async def _serve(request: Request, thin: _Thin, params: dict[str, str]) -> Response:
    """Answer one request of ``thin.route``: its body read, its dependencies solved, its body
    validated, then its endpoint, called as FastAPI calls it."""
    body = await _body(request, thin.strict_content_type)
    recorder, principal = await _writer(request)
    field = thin.route.body_field
    assert field is not None  # both routes declare a body
    arguments = {"recorder": recorder, "principal": principal, field.name: _validated(field, body), **params}
    response: Response = await thin.route.endpoint(**arguments)
    return response
