"""The officers' desk (``/desk``): pages where an officer, signed in with their API key, creates
tenders and records their events through forms, signs each submission in the browser
(explorer/js/desk.js) and follows it until it is anchored. The forms are :mod:`explorer.desk`'s.

Sessions. ``POST /desk/session`` exchanges an officer's API key (:func:`api.auth.authenticate`)
for a session: the cookie ``tp_desk`` holds a random 256-bit secret, the database only its
SHA-256 (``desk_sessions``, migration 0013). The cookie is ``HttpOnly``, ``SameSite=Strict``,
limited to ``/desk``, ``Secure`` when the request came over https (behind a proxy: see
``TENDERPROOF_TRUSTED_PROXIES``), and lasts ``TENDERPROOF_DESK_SESSION_SECONDS``. A session ends
then, when the officer signs out (``POST /desk/session/end``: revoked server-side), or as soon as
its API key is revoked or expires: every request reads the session and its key.

CSRF. Every form carries a token, HMAC-SHA256 keyed by the ``tp_desk_csrf`` cookie (random,
``HttpOnly``, ``SameSite=Strict``) over the session cookie: a signed double-submit token bound to
the session. A POST without the token, or with another, is refused (403) and records nothing.

Recording goes through :class:`api.routes.writes.Recorder`, the write API's own path: the same
payload rules, tender rules, signature policy and officer check, the same errors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, insert, select, update
from starlette.responses import JSONResponse, RedirectResponse, Response

from anchoring.bundles import final_anchors
from explorer import desk as forms
from explorer.i18n import COOKIE as LANG_COOKIE
from explorer.i18n import Formatter, negotiate
from explorer.pages import render
from ledger.core.commitment import new_commitment
from ledger.core.envelope import check_ocid, payload_bytes
from ledger.core.errors import FieldError, InvalidArgumentError, LedgerError, NotFoundError
from ledger.log import Log
from ledger.procurement import privacy
from ledger.procurement.payloads import validate
from ledger.store.db import read_transaction, write_transaction
from ledger.submission import UNSET, Submission

# What is stored of a session's secret is what is stored of a key, for the same reason (256 random
# bits: a fast hash is as strong as any); SQLite's naive datetimes are read back as UTC alike.
from .auth import AuthError, Principal, _aware, _digest, authenticate, get_key
from .routes.writes import TENDER_EVENT_TYPES, Recorder
from .schema import desk_sessions

COOKIE = "tp_desk"
CSRF_COOKIE = "tp_desk_csrf"
PATH = "/desk"
#: The desk's pages load its own script, never the public explorer.js.
SCRIPT = "desk.js"

router = APIRouter(prefix=PATH, include_in_schema=False)


def start_session(engine: Engine, key_id: int, *, now: datetime, lifetime: timedelta) -> str:
    """A new session of API key ``key_id`` until ``now + lifetime``; returns its secret (the cookie)."""
    secret = secrets.token_urlsafe(32)  # ASCII, as _digest requires
    with write_transaction(engine) as conn:
        conn.execute(
            insert(desk_sessions).values(
                secret_hash=_digest(secret), api_key_id=key_id, created_at=now, expires_at=now + lifetime
            )
        )
    return secret


def session_principal(engine: Engine, secret: str, *, now: datetime) -> Principal | None:
    """Who the session ``secret`` is, or None once it has expired or been revoked, or its API key has."""
    if not secret.isascii():
        return None
    with read_transaction(engine) as conn:
        row = conn.execute(select(desk_sessions).where(desk_sessions.c.secret_hash == _digest(secret))).first()
    if row is None or row.revoked_at is not None:
        return None
    expires = _aware(row.expires_at)
    if expires is None or now >= expires:
        return None
    try:
        key = get_key(engine, row.api_key_id)
    except NotFoundError:
        return None
    if not key.active or key.expired(now):
        return None
    return key.principal()


def end_session(engine: Engine, secret: str, *, now: datetime) -> None:
    """Revoke the session ``secret`` (nothing happens for an unknown or already ended one)."""
    if not secret.isascii():
        return
    with write_transaction(engine) as conn:
        conn.execute(
            update(desk_sessions)
            .where(desk_sessions.c.secret_hash == _digest(secret), desk_sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )


def csrf_token(csrf_cookie: str, session: str | None) -> str:
    """The forms' token: HMAC-SHA256 keyed by the CSRF cookie, over the session cookie ('' before signing in)."""
    return hmac.new(csrf_cookie.encode(), (session or "").encode(), hashlib.sha256).hexdigest()


@dataclass(slots=True)
class Desk:
    """One request to the desk: its log, clock, cookies and (when signed in) principal."""

    request: Request
    log: Log
    now: datetime
    csrf_cookie: str
    new_csrf: bool
    session: str | None
    principal: Principal | None

    @classmethod
    def of(cls, request: Request) -> Desk:
        log: Log = request.app.state.log
        now: datetime = request.app.state.now()
        cookie = request.cookies.get(CSRF_COOKIE, "")
        new_csrf = len(cookie) < 32
        if new_csrf:
            cookie = secrets.token_urlsafe(32)
        session = request.cookies.get(COOKIE)
        principal = None if session is None else session_principal(log.engine, session, now=now)
        return cls(request, log, now, cookie, new_csrf, session if principal else None, principal)

    @property
    def token(self) -> str:
        return csrf_token(self.csrf_cookie, self.session)

    def csrf_ok(self, form: dict[str, str]) -> bool:
        sent = form.get("csrf", "")
        return not self.new_csrf and hmac.compare_digest(sent.encode(), self.token.encode())

    def cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=self.request.url.scheme == "https",
        )

    def finish(self, response: Response) -> Response:
        if self.new_csrf:
            self.cookie(response, CSRF_COOKIE, self.csrf_cookie, None)
        response.headers["Cache-Control"] = "no-store"
        return response

    def page(self, template: str, *, status: int = 200, **context: Any) -> Response:
        return self.finish(
            render(
                self.request,
                template,
                status=status,
                page="desk",
                csrf=self.token,
                principal=self.principal,
                desk_script=SCRIPT,
                **context,
            )
        )


def _lang(request: Request) -> str:
    return negotiate(
        query=request.query_params.get("lang"),
        cookie=request.cookies.get(LANG_COOKIE),
        accept_language=request.headers.get("accept-language"),
    )


async def _form(request: Request) -> dict[str, str]:
    """The fields of an ``application/x-www-form-urlencoded`` body (what the desk's forms send;
    anything else has no fields). The last of a repeated field wins."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


_FormHandler = Callable[[Request, dict[str, str]], Response]


def _form_post(path: str) -> Callable[[_FormHandler], _FormHandler]:
    """Register ``handler(request, form)`` as ``POST path``: the form is read on the event loop,
    the handler (database work) runs in the thread pool."""

    def register(handler: _FormHandler) -> _FormHandler:
        async def route(request: Request) -> Response:
            return await run_in_threadpool(handler, request, await _form(request))

        route.__name__, route.__doc__ = handler.__name__.lstrip("_"), handler.__doc__
        router.post(path)(route)
        return handler

    return register


def _refused(desk: Desk) -> Response:
    """A POST without a valid CSRF token: nothing is done."""
    fmt = Formatter(_lang(desk.request))
    message = fmt.gettext("The form has expired or was not sent from this site: reload the page and try again.")
    return desk.page("error.html", status=403, title=forms.FORBIDDEN, message=message)


def _signed_out(desk: Desk) -> Response:
    response = RedirectResponse(f"{PATH}?ended=1", status_code=303)
    if desk.request.cookies.get(COOKIE) is not None:
        response.delete_cookie(COOKIE, path=PATH)
    return desk.finish(response)


@router.get("")
def home(request: Request) -> Response:
    desk = Desk.of(request)
    if desk.principal is None:
        response = desk.page("desk_signin.html", ended=request.query_params.get("ended") == "1", error=None)
        if request.cookies.get(COOKIE) is not None:  # an ended session: forget its cookie
            response.delete_cookie(COOKIE, path=PATH)
        return response
    return desk.page("desk_home.html", first_types=forms.FIRST_TYPES, event_types=TENDER_EVENT_TYPES)


@_form_post("/session")
def _sign_in(request: Request, form: dict[str, str]) -> Response:
    desk = Desk.of(request)
    if not desk.csrf_ok(form):
        return _refused(desk)
    settings = request.app.state.settings
    fmt = Formatter(_lang(request))
    try:
        principal = authenticate(desk.log.engine, form.get("api_key", "").strip(), now=desk.now, field="api_key")
        if not principal.allows("officer"):
            raise AuthError("api_key", f"API key {principal.prefix} has role {principal.role}; the desk needs officer")
    except AuthError as exc:
        error = fmt.gettext("Sign-in failed: {reason}", reason=exc.reason)
        return desk.page("desk_signin.html", status=401, ended=False, error=error)
    secret = start_session(
        desk.log.engine, principal.id, now=desk.now, lifetime=timedelta(seconds=settings.desk_session_seconds)
    )
    response = RedirectResponse(PATH, status_code=303)
    desk.cookie(response, COOKIE, secret, int(settings.desk_session_seconds))
    return desk.finish(response)


@_form_post("/session/end")
def _sign_out(request: Request, form: dict[str, str]) -> Response:
    desk = Desk.of(request)
    if not desk.csrf_ok(form):
        return _refused(desk)
    if desk.session is not None:
        end_session(desk.log.engine, desk.session, now=desk.now)
    response = RedirectResponse(PATH, status_code=303)
    response.delete_cookie(COOKIE, path=PATH)
    return desk.finish(response)


def _event_form(
    desk: Desk, *, event_type: str, ocid: str, first: bool, values: dict[str, str], errors: dict[str, str], status: int
) -> Response:
    fmt = Formatter(_lang(desk.request))
    return desk.page(
        "desk_event.html",
        status=status,
        event_type=event_type,
        ocid=ocid,
        first=first,
        fields=forms.FORMS[event_type],
        values=values,
        errors=errors,
        general=errors.get(""),
        signing=json.dumps({key: fmt.gettext(text) for key, text in forms.JS_TEXTS.items()}, ensure_ascii=False),
    )


@router.get("/new")
def new_tender(request: Request) -> Response:
    desk = Desk.of(request)
    if desk.principal is None:
        return _signed_out(desk)
    kind = request.query_params.get("type", "tender.published")
    if kind not in forms.FIRST_TYPES:
        kind = "tender.published"
    return _event_form(desk, event_type=kind, ocid="", first=True, values={}, errors={}, status=200)


@router.get("/record")
def record_form(request: Request) -> Response:
    desk = Desk.of(request)
    if desk.principal is None:
        return _signed_out(desk)
    kind, ocid = request.query_params.get("type", ""), request.query_params.get("ocid", "").strip()
    errors: dict[str, str] = {}
    if kind not in forms.FORMS or kind not in TENDER_EVENT_TYPES:
        kind = "tender.amended"
    try:
        check_ocid(ocid, field="ocid")
        desk.log.reader.tender_head(ocid)
    except (InvalidArgumentError, NotFoundError) as exc:
        errors["ocid"] = str(exc.reason) if isinstance(exc, FieldError) else str(exc)
    return _event_form(desk, event_type=kind, ocid=ocid, first=False, values={}, errors=errors, status=200)


@dataclass(frozen=True, slots=True)
class _Parsed:
    event_type: str
    ocid: str
    first: bool
    payload: dict[str, Any]


def _parse(request: Request, form: dict[str, str]) -> _Parsed:
    """The event a form describes. Raises FieldError naming the form's field (``type``, ``ocid``, ``payload.<path>``)."""
    kind = form.get("type", "")
    first = form.get("first") == "1"
    if kind not in forms.FORMS or (first and kind not in forms.FIRST_TYPES):
        raise InvalidArgumentError("type", f"no form for event type {kind!r}")
    ocid = form.get("ocid", "").strip()
    if not ocid and first:
        ocid = f"{request.app.state.settings.ocid_prefix}-{uuid.uuid4().hex[:20]}"
    check_ocid(ocid, field="ocid")
    return _Parsed(kind, ocid, first, forms.payload_from_form(kind, form))


def _errors(exc: LedgerError, event_type: str, fmt: Formatter) -> dict[str, str]:
    """An error, and every other problem it carries, as ``{form field: text}`` ('' for the form as
    a whole), in ``fmt``'s language."""
    if not isinstance(exc, FieldError):
        return {"": str(exc)}
    errors: dict[str, str] = {}
    for problem in exc.all_problems():
        name, reason = problem.field.removeprefix("body."), forms.reason_text(fmt, problem.reason)
        field = "ocid" if name == "ocid" else forms.field_of(problem.field, event_type)
        if field is None:  # about the event as a whole (``type``: a tender rule), or a field the form lacks
            text = reason if name == "type" else f"{name}: {reason}"
            errors[""] = f"{errors['']} {text}" if "" in errors else text
        else:
            errors.setdefault(field, reason)
    return errors


@_form_post("/payload")
def _payload(request: Request, form: dict[str, str]) -> Response:
    """What the browser signs: the ocid, type and payload hash of the form as it is, or its errors (422)."""
    desk = Desk.of(request)
    if not desk.csrf_ok(form):
        return desk.finish(JSONResponse({"error": "csrf"}, status_code=403))
    if desk.principal is None:
        return desk.finish(JSONResponse({"error": "signed_out"}, status_code=401))
    settings = request.app.state.settings
    try:
        parsed = _parse(request, form)
        validate(parsed.event_type, parsed.payload)
    except FieldError as exc:
        errors = _errors(exc, form.get("type", ""), Formatter(_lang(request)))
        return desk.finish(JSONResponse({"errors": errors}, status_code=422))
    fields = privacy.committed_fields(privacy.places(parsed.event_type, parsed.payload))
    bound, disclosure = new_commitment(parsed.payload, fields, payload_bytes=payload_bytes(parsed.payload))
    return desk.finish(
        JSONResponse(
            {
                "ocid": parsed.ocid,
                "type": parsed.event_type,
                # the envelope v2's payload_commitment (docs/spec.md §2.5), signed with its disclosure
                "payloadSha256": bound,
                "disclosure": disclosure,
                "origin": settings.origin,
                "chainId": settings.chain_id_for_signatures,
                "officer": desk.principal.officer,
            }
        )
    )


@_form_post("/events")
def _record_event(request: Request, form: dict[str, str]) -> Response:
    desk = Desk.of(request)
    if not desk.csrf_ok(form):
        return _refused(desk)
    if desk.principal is None:
        return _signed_out(desk)
    kind, first = form.get("type", ""), form.get("first") == "1"
    fmt = Formatter(_lang(request))
    try:
        parsed = _parse(request, form)
        submission = json.loads(form["submission"]) if form.get("submission") else None
        disclosure = json.loads(form["disclosure"]) if submission is not None and form.get("disclosure") else None
        item = Submission(
            disclosure=disclosure,
            ocid=parsed.ocid,
            type=parsed.event_type,
            payload=parsed.payload,
            submission=submission,
            signature=form.get("signature") or None,
            prev=None if parsed.first else UNSET,
        )
        recorder = Recorder(request, desk.log, request.app.state.settings, request.app.state.now, None)
        response = recorder.record(desk.principal, [item], body=lambda: None)
    except json.JSONDecodeError:
        errors = {"": "submission: not JSON"}
    except LedgerError as exc:
        errors = _errors(exc, kind, fmt)
    else:
        done = json.loads(bytes(response.body))
        target = f"{PATH}/entries/{quote(done['ocid'], safe='')}/{done['seq']}"
        return desk.finish(RedirectResponse(target, status_code=303))
    if kind not in forms.FORMS:
        kind, first = "tender.published", True
    values = {key: value for key, value in form.items() if key not in ("csrf", "submission", "signature", "disclosure")}
    return _event_form(
        desk, event_type=kind, ocid=form.get("ocid", ""), first=first, values=values, errors=errors, status=422
    )


def entry_status(log: Log, chain: str | None, ocid: str, seq: int) -> dict[str, Any]:
    """Where event ``seq`` of ``ocid`` stands: ``pending`` (recorded), ``integrated`` (has a log
    index) or ``anchored`` (below a final anchor's tree size on ``chain``). Raises NotFoundError."""
    found = log.reader.tender_events(ocid, from_seq=seq, limit=1)
    if not found or found[0].seq != seq:
        raise NotFoundError(f"tender {ocid!r} has no event seq {seq}")
    event = found[0]
    out: dict[str, Any] = {"ocid": ocid, "seq": seq, "type": event.type, "index": event.index, "status": "pending"}
    if event.index is None:
        return out
    out["status"] = "integrated"
    if chain is not None:
        try:
            target = final_anchors(log.engine, chain)
        except NotFoundError:
            return out
        covering = next((a for a in target.anchors if a.tree_size > event.index), None)
        if covering is not None:
            out.update(
                status="anchored",
                tree_size=covering.tree_size,
                block_number=covering.block_number,
                tx_hash="0x" + covering.tx_hash.hex(),
            )
    return out


def _chain(request: Request) -> str | None:
    chains = request.app.state.settings.chains
    return chains[0].name if chains else None


@router.get("/entries/{ocid}/{seq}")
def entry(request: Request, ocid: str, seq: int) -> Response:
    desk = Desk.of(request)
    if desk.principal is None:
        return _signed_out(desk)
    try:
        status = entry_status(desk.log, _chain(request), ocid, seq)
    except NotFoundError as exc:
        return desk.page("error.html", status=404, title="Not found", message=str(exc))
    status_url = f"{PATH}/entries/{quote(ocid, safe='')}/{seq}/status"
    record_url = f"{PATH}/record?" + urlencode({"ocid": ocid})
    return desk.page("desk_entry.html", entry=status, status_url=status_url, record_url=record_url)


@router.get("/entries/{ocid}/{seq}/status")
def entry_status_json(request: Request, ocid: str, seq: int) -> Response:
    desk = Desk.of(request)
    if desk.principal is None:
        return desk.finish(JSONResponse({"error": "signed_out"}, status_code=401))
    try:
        return desk.finish(JSONResponse(entry_status(desk.log, _chain(request), ocid, seq)))
    except NotFoundError as exc:
        return desk.finish(JSONResponse({"error": str(exc)}, status_code=404))
