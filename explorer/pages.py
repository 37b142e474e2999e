"""The explorer's pages, server-rendered (complete without JavaScript), and its static files.

:func:`install` mounts them on the application at ``/`` (outside the OpenAPI schema: they are a
site, not the API). Data comes from the same modules as the API (ledger.procurement.query,
ledger.procurement.stats, anchoring.bundles, anchoring.store); nothing here asserts that anything is
verified: the badges are computed in the visitor's browser (explorer/js).
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urlsplit

from babel.numbers import format_percent
from fastapi import APIRouter, FastAPI, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, Response

from anchoring import store
from anchoring.bundles import final_anchors
from ledger.core.envelope import parse_timestamp
from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.log import Log
from ledger.procurement import cardinal, export, importer, ocds, query, redflags, stats
from settings import EMBEDDED_LABEL, Settings

from . import rpc
from .assets import Assets
from .describe import EVENT_LABELS, FLAG_EVIDENCE, STATUS_LABELS, describe, describe_release
from .i18n import COOKIE, COOKIE_MAX_AGE, LANGUAGE_NAMES, LOCALES, Formatter, negotiate

if TYPE_CHECKING:
    from anchoring.embedded import EmbeddedChain

T = TypeVar("T")
log = logging.getLogger(__name__)
PAGE_SIZE = 25
BATCH_PAGE = 50
#: The export routes of the open data page (served by the API).
EXPORTS = (
    ("releases", "/api/v1/export/releases", "OCDS release package (all tenders)", "JSON"),
    ("records", "/api/v1/export/records", "OCDS record package (all tenders)", "JSON"),
    ("tenders_csv", "/api/v1/export/tenders.csv", "Tenders", "CSV"),
    ("awards_csv", "/api/v1/export/awards.csv", "Awards", "CSV"),
    ("contracts_csv", "/api/v1/export/contracts.csv", "Contracts", "CSV"),
)
#: Strings the in-browser verifier shows, by key (translated into the page's language).
JS_MESSAGES: dict[str, str] = {
    "anchored_in": "Verified: anchored in",
    "block": "block {block}",
    "at_time": "at {time}",
    "pending": "Pending: not yet anchored",
    "failed": "Verification failed",
    "not_verified": "Not verified",
    "http_error": "the server answered HTTP {status}",
    "nothing_anchored": "Nothing of this tender is anchored yet: every event is pending.",
    "all_verified": "Every anchored event was verified in your browser against the chain.",
    "some_failed": "Verification found {count} problem(s).",
    "could_not_verify": "Could not verify: {reason}",
    "bundle_valid": "The bundle is valid",
    "bundle_invalid": "The bundle is NOT valid: {count} problem(s)",
    "bundle_of": "Tender {ocid}, anchored on chain {chain}.",
    "problems": "Problems found",
    "events": "Events",
    "col_seq": "Seq",
    "col_type": "Event",
    "col_index": "Log index",
    "col_status": "Status",
    "col_signer": "Signer",
    "verifying": "Verifying…",
    "not_json": "the text is not JSON ({reason})",
    "no_bundle": "no bundle for {ocid}: unknown tender or nothing anchored yet",
    "explain_format": "This is not a Tenderproof proof bundle (tenderproof-bundle/1), or a required part is missing.",
    "explain_payload": "The event's content was changed: it no longer matches the hash its envelope recorded.",
    "explain_leaf": "The event's envelope was changed: it no longer hashes to the entry of the log.",
    "explain_chain": "The tender's history is incomplete or reordered: an event was removed, inserted or moved.",
    "explain_origin": "An event belongs to another log or another tender than the bundle says.",
    "explain_signature": "The officer's signature does not match: the event was not signed as shown, or by someone else.",
    "explain_inclusion": "The proof does not lead from this event to the anchored root: the event is not in the log as anchored.",
    "explain_consistency": "The anchored checkpoints are not shown to be one history: the log may have been rewritten.",
    "explain_chain_anchor": "The chain does not confirm this anchor: the root, transaction or block differs from what the bundle says.",
    "explain_other": "{text}",
}


class TtlCache:
    """Ledger-wide figures, recomputed at most every ``ttl`` seconds (per process).

    Only the very first request of a key waits for its computation. Once a value is older than
    ``ttl``, the next request still gets it at once and starts one recomputation in a background
    thread (stale-while-revalidate), so no visitor pays the aggregate's cost (~0.1-0.3 s at
    100,000 tenders, see bench/RESULTS-explorer.md). With ``ttl`` 0 every request recomputes.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._values: dict[str, tuple[float, Any]] = {}
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def get(self, key: str, compute: Callable[[], T]) -> T:
        now = self.clock()
        with self._lock:
            found = self._values.get(key)
            stale = found is not None and self.ttl > 0 and found[0] <= now
            start = stale and key not in self._refreshing
            if start:
                self._refreshing.add(key)
        if found is not None and (found[0] > now or stale):
            if start:
                threading.Thread(target=self._refresh, args=(key, compute), daemon=True).start()
            value: T = found[1]
            return value
        value = compute()
        with self._lock:
            self._values[key] = (self.clock() + self.ttl, value)
        return value

    def _refresh(self, key: str, compute: Callable[[], Any]) -> None:
        try:
            value = compute()
            with self._lock:
                self._values[key] = (self.clock() + self.ttl, value)
        except Exception:  # keep serving the stale value; the next request tries again
            log.exception("recomputing the explorer's %s failed", key)
        finally:
            with self._lock:
                self._refreshing.discard(key)


class Site:
    """What the pages share: templates, static files, figures cache, chain facts."""

    def __init__(self, settings: Settings, *, dev_chain: EmbeddedChain | None = None) -> None:
        self.settings = settings
        self.assets = Assets()
        self.cache = TtlCache(settings.explorer_stats_ttl)
        self.dev_chain = dev_chain
        self.env = Environment(
            loader=PackageLoader("explorer", "templates"),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        first = settings.chains[0] if settings.chains else None
        self.chain = first
        self.embedded = first is not None and first.embedded
        if settings.public_rpc_url:
            self.rpc_url: str | None = settings.public_rpc_url
        elif first is None:
            self.rpc_url = None
        elif first.embedded:
            self.rpc_url = "/rpc"
        else:
            self.rpc_url = first.rpc_url
        connect = ["'self'"]
        if self.rpc_url and self.rpc_url.startswith("http"):
            parts = urlsplit(self.rpc_url)
            connect.append(f"{parts.scheme}://{parts.netloc}")
        self.csp = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {' '.join(connect)}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        )


def _site(request: Request) -> Site:
    site: Site = request.app.state.explorer
    return site


def _log(request: Request) -> Log:
    opened: Log | None = request.app.state.log
    if opened is None:
        raise RuntimeError("the log is not open")
    return opened


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.now()
    return now


def _url(request: Request, **changes: object) -> str:
    """The current page's URL with query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    encoded = urlencode(params)
    return request.url.path + (f"?{encoded}" if encoded else "")


def render(request: Request, template: str, *, status: int = 200, page: str, **context: Any) -> HTMLResponse:
    site = _site(request)
    chosen = request.query_params.get("lang")
    lang = negotiate(
        query=chosen, cookie=request.cookies.get(COOKIE), accept_language=request.headers.get("accept-language")
    )
    fmt = Formatter(lang)
    html = site.env.get_template(template).render(
        request=request,
        page=page,
        lang=lang,
        languages=[(code, LANGUAGE_NAMES[code]) for code in LOCALES],
        _=fmt.gettext,
        fmt=fmt,
        asset=site.assets.url,
        url=lambda **changes: _url(request, **changes),
        event_label=lambda kind: fmt.gettext(EVENT_LABELS.get(kind) or str(kind)),
        status_label=lambda status: fmt.gettext(STATUS_LABELS.get(status) or str(status)),
        flag_evidence=lambda code, evidence: flag_evidence(fmt, code, evidence),
        flag_info={flag.code: flag for flag in redflags.FLAGS},
        origin=site.settings.origin,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = site.csp
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie"
    if chosen in LOCALES:
        response.set_cookie(COOKIE, lang, max_age=COOKIE_MAX_AGE, path="/", samesite="lax")
    return response


def not_found(request: Request, message: str) -> HTMLResponse:
    return render(request, "error.html", status=404, page="error", title="Not found", message=message)


def js_config(request: Request, **extra: Any) -> str:
    """The verifier's configuration, as the JSON of a non-executed ``<script type="application/json">``."""
    site = _site(request)
    lang = negotiate(
        query=request.query_params.get("lang"),
        cookie=request.cookies.get(COOKIE),
        accept_language=request.headers.get("accept-language"),
    )
    fmt = Formatter(lang)
    config = {
        "locale": lang,
        "rpcUrl": site.rpc_url,
        "blockExplorer": site.settings.block_explorer_url,
        "bundleBase": "/api/v1/tenders",
        "messages": {key: fmt.gettext(text) for key, text in JS_MESSAGES.items()},
        "eventLabels": {kind: fmt.gettext(label) for kind, label in EVENT_LABELS.items()},
        **extra,
    }
    # "</" never appears inside the element: the JSON stays one text node whatever it holds.
    return json.dumps(config, ensure_ascii=False).replace("</", "<\\/")


def _chain_facts(request: Request) -> dict[str, Any]:
    site = _site(request)
    chain = site.chain
    return {
        "name": chain.name if chain else None,
        "embedded": site.embedded,
        "embedded_label": EMBEDDED_LABEL,
        "rpc_url": site.rpc_url,
        "block_explorer": site.settings.block_explorer_url,
    }


router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    log, site = _log(request), _site(request)
    head = log.reader.tree_head()
    totals = site.cache.get("totals", lambda: stats.totals(log.engine))
    chain = _chain_facts(request)
    anchors = store.listing(log.engine, chain=chain["name"], limit=5) if chain["name"] else []
    last = store.latest_final(log.engine, chain["name"]) if chain["name"] else None
    contract = anchors[0].target.contract if anchors else None
    age = None
    if last is not None and last.block_timestamp is not None:
        age = _now(request) - datetime.fromtimestamp(last.block_timestamp, UTC)
    return render(
        request,
        "home.html",
        page="home",
        head=head,
        pending=log.reader.pending_count(),
        totals=totals,
        chain=chain,
        contract=contract,
        last=last,
        age=age,
        anchors=anchors,
        recent=stats.recent_events(log.reader, size=head.size, limit=10),
    )


def _day(text: str | None, name: str, *, end: bool) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidArgumentError(name, f"must be a date YYYY-MM-DD, got {text!r}") from exc
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start + timedelta(days=1, microseconds=-1) if end else start


def _amount(text: str | None, name: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidArgumentError(name, f"must be a number, got {text!r}") from exc
    if value < 0 or value != value or value in (float("inf"), float("-inf")):
        raise InvalidArgumentError(name, f"must be a finite number >= 0, got {text!r}")
    return value


FILTERS = ("q", "status", "buyer", "currency", "from", "to", "min", "max", "sort")


@router.get("/tenders", response_class=HTMLResponse)
def tenders(request: Request) -> Response:
    params = {key: (request.query_params.get(key) or "").strip() for key in (*FILTERS, "cursor")}
    error: InvalidArgumentError | None = None
    page = query.Page([], None)
    try:
        sort = params["sort"] or "published_desc"
        if sort not in query.SORTS:
            raise InvalidArgumentError("sort", f"must be one of {', '.join(query.SORTS)}, got {sort!r}")
        if params["currency"] and not (len(params["currency"]) == 3 and params["currency"].isalpha()):
            raise InvalidArgumentError("currency", f"must be a 3-letter ISO 4217 code, got {params['currency']!r}")
        page = query.search_tenders(
            _log(request).engine,
            q=params["q"][:200] or None,
            status=params["status"] or None,
            buyer=params["buyer"][:256] or None,
            currency=params["currency"].upper() or None,
            published_from=_day(params["from"], "from", end=False),
            published_to=_day(params["to"], "to", end=True),
            value_min=_amount(params["min"], "min"),
            value_max=_amount(params["max"], "max"),
            sort=sort,  # type: ignore[arg-type]
            cursor=params["cursor"] or None,
            limit=PAGE_SIZE,
        )
    except InvalidArgumentError as exc:
        error = exc
    return render(
        request,
        "tenders.html",
        status=400 if error else 200,
        page="tenders",
        params=params,
        error=error,
        results=page,
        sorts=query.SORTS,
        statuses=tuple(STATUS_LABELS),
        filtered=any(params[key] for key in FILTERS if key != "sort"),
    )


def _covering(sizes: list[int], index: int | None) -> int | None:
    """Position of the first anchor whose tree covers log index ``index``."""
    if index is None:
        return None
    at = bisect.bisect_right(sizes, index)
    return at if at < len(sizes) else None


@router.get("/tenders/{ocid}", response_class=HTMLResponse)
def tender(request: Request, ocid: str) -> Response:
    log, site = _log(request), _site(request)
    try:
        summary = query.tender_summary(log.engine, ocid)
        stored = log.reader.tender_events(ocid)
    except NotFoundError:
        return not_found(request, f"tender {ocid!r}: not found")
    chain = _chain_facts(request)
    target = None
    if chain["name"]:
        try:
            target = final_anchors(log.engine, chain["name"])
        except NotFoundError:
            target = None
    sizes = [a.tree_size for a in target.anchors] if target else []
    with log.engine.connect() as conn:
        imported = importer.imported_event_ids(conn, ocid)
        notes = importer.release_notes(conn, ocid)
    timeline = []
    for event in stored:
        envelope = event.parsed_envelope
        at = _covering(sizes, event.index)
        submission = envelope.submission if envelope.signature else None
        payload = event.parsed_payload
        is_release = event.event_id in imported and isinstance(payload, dict)
        released = ocds.parse_datetime(payload.get("date")) if is_release else None
        timeline.append(
            {
                "seq": event.seq,
                "type": event.type,
                "index": event.index,
                "recorded_at": parse_timestamp(envelope.recorded_at),
                # an imported release's own date (when it happened, as published); the recording
                # time stays beside it
                "released_at": released if released is None or released.tzinfo else released.replace(tzinfo=UTC),
                "release_id": payload.get("id") if is_release else None,
                "what": describe_release(event.type, payload) if is_release else describe(event.type, payload),
                "signer": submission.get("officer") if isinstance(submission, dict) else None,
                "leaf_hash": event.leaf_hash.hex(),
                "payload_sha256": envelope.payload_sha256,
                "claimed": None if target is None or at is None else target.anchors[at],
            }
        )
    # the tender's releases as the export gives them (imported ones as published): the compiled
    # release on the page is the export's, and ocdsmerge's
    releases = next((r for o, r in export.iter_tenders(log.engine, ocid=ocid) if o == ocid), [])
    compiled = ocds.compiled_release(releases) if releases else ocds.compiled_release(ocds.releases(stored))
    bundle_url = f"/api/v1/tenders/{ocid}/bundle" + (f"?chain={chain['name']}" if chain["name"] else "")
    return render(
        request,
        "tender.html",
        page="tender",
        summary=summary,
        timeline=timeline,
        compiled=json.dumps(compiled, indent=2, ensure_ascii=False),
        chain=chain,
        contract=target.contract if target else None,
        bundle_url=bundle_url,
        config=js_config(request, bundleUrl=bundle_url) if site.rpc_url else None,
        flags=redflags.tender_flags(log.engine, ocid),
        notes=notes,
        awarded=awarded_by_currency(compiled),
    )


def awarded_by_currency(compiled: dict[str, Any]) -> list[tuple[str | None, float]]:
    """The live awards' total per currency (never summed across currencies), largest first."""
    totals: dict[str | None, float] = {}
    for award in redflags.live_awards(compiled):
        value = award.get("value")
        amount = value.get("amount") if isinstance(value, dict) else None
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            currency = value.get("currency") if isinstance(value, dict) else None
            key = currency if isinstance(currency, str) else None
            totals[key] = totals.get(key, 0.0) + float(amount)
    return sorted(totals.items(), key=lambda item: -item[1])


@router.get("/anchors", response_class=HTMLResponse)
def anchors(request: Request) -> Response:
    log = _log(request)
    chain = _chain_facts(request)
    before_text = request.query_params.get("before", "")
    before = int(before_text) if before_text.isdigit() and 0 < int(before_text) < 2**63 else None
    found = store.listing(log.engine, chain=chain["name"], before=before, limit=PAGE_SIZE + 1) if chain["name"] else []
    shown = found[:PAGE_SIZE]
    next_before = shown[-1].anchor.id if len(found) > PAGE_SIZE else None
    return render(request, "anchors.html", page="anchors", chain=chain, anchors=shown, next_before=next_before)


@router.get("/anchors/{chain_name}/{anchor_id}", response_class=HTMLResponse)
def anchor(request: Request, chain_name: str, anchor_id: str) -> Response:
    log = _log(request)
    if not anchor_id.isdigit() or not 0 < int(anchor_id) < 2**63:
        return not_found(request, f"anchor {anchor_id!r} of chain {chain_name!r}: not found")
    try:
        listed = store.find(log.engine, chain=chain_name, anchor_id=int(anchor_id))
    except NotFoundError as exc:
        return not_found(request, str(exc))
    start = store.batch_start(log.engine, listed.anchor)
    end = listed.anchor.tree_size
    offset_text = request.query_params.get("from", "")
    offset = int(offset_text) if offset_text.isdigit() and start <= int(offset_text) < end else start
    entries = []
    for event in log.reader.entries(offset, min(end, offset + BATCH_PAGE)):
        entries.append({"event": event, "recorded_at": parse_timestamp(event.parsed_envelope.recorded_at)})
    return render(
        request,
        "anchor.html",
        page="anchors",
        chain=_chain_facts(request),
        listed=listed,
        start=start,
        end=end,
        offset=offset,
        entries=entries,
        next_offset=offset + BATCH_PAGE if offset + BATCH_PAGE < end else None,
        previous_offset=max(start, offset - BATCH_PAGE) if offset > start else None,
    )


@router.get("/verify", response_class=HTMLResponse)
def verify(request: Request) -> Response:
    site = _site(request)
    return render(
        request,
        "verify.html",
        page="verify",
        chain=_chain_facts(request),
        ocid=request.query_params.get("ocid", "")[:256],
        config=js_config(request) if site.rpc_url else None,
    )


@router.get("/data", response_class=HTMLResponse)
def open_data(request: Request) -> Response:
    log, site = _log(request), _site(request)
    since = (_now(request) - timedelta(days=365)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    by_buyer = site.cache.get("by_buyer", lambda: stats.spend_by_buyer(log.engine, limit=10))
    by_month = site.cache.get(f"by_month:{since.date()}", lambda: stats.spend_by_month(log.engine, since=since))
    head = log.reader.tree_head()
    return render(
        request,
        "data.html",
        page="data",
        exports=EXPORTS,
        buyer_charts=charts_by_currency([(b.buyer_name or b.buyer_id or "?", b.currency, b.amount) for b in by_buyer]),
        month_charts=charts_by_currency([(m.month, m.currency, m.amount) for m in by_month], months=True),
        size=head.size,
        entries_max=10_000,
        flag_counts=site.cache.get("flag_counts", lambda: redflags.flag_counts(log.engine)),
        flag_catalogue=redflags.FLAGS,
        tender_count=site.cache.get("totals", lambda: stats.totals(log.engine)).tenders,
    )


def flag_evidence(fmt: Formatter, code: str, evidence: dict[str, Any]) -> str:
    """The sentence saying what one tender's data showed for the red flag ``code``, in ``fmt``'s
    language (the evidence's keys are those of :func:`ledger.procurement.redflags.evaluate`)."""
    if code in cardinal.EXPLANATIONS:  # Cardinal's indicators: their own words, in English and Spanish
        english, spanish = cardinal.EXPLANATIONS[code]
        return spanish if fmt.lang.startswith("es") else english
    template = FLAG_EVIDENCE.get(code)
    if template is None:
        return ""
    threshold = evidence.get("threshold_days", evidence.get("threshold_wins", ""))
    if code == "award_above_estimate":
        currency = evidence.get("currency")
        values = {
            "awarded": fmt.money(evidence.get("awarded"), currency),
            "estimate": fmt.money(evidence.get("estimate"), currency),
            "ratio": format_percent(float(evidence.get("ratio", 0)), locale=fmt.lang),
        }
    elif code == "repeat_supplier":
        names = [str(s.get("supplier")) for s in evidence.get("suppliers", []) if isinstance(s, dict)]
        values = {"suppliers": ", ".join(names), "threshold": threshold}
    else:
        days = evidence.get("days")
        values = {
            "method": str(evidence.get("procurementMethod", "")),
            "days": fmt.number(days) if isinstance(days, int | float) else "",
            "threshold": threshold,
            "contract": str(evidence.get("contract") or ""),
        }
    return fmt.gettext(template, **values)


def charts_by_currency(
    rows: list[tuple[str, str, float]], *, months: bool = False, limit: int = 3
) -> list[dict[str, Any]]:
    """Bar charts, one per currency (amounts of different currencies never share an axis), the
    ``limit`` currencies of largest total first; each bar's length relative to the largest."""
    by_currency: dict[str, list[tuple[str, float]]] = {}
    for label, currency, amount in rows:
        by_currency.setdefault(currency, []).append((label, amount))
    ranked = sorted(by_currency.items(), key=lambda item: -sum(a for _, a in item[1]))[:limit]
    charts = []
    for currency, bars in ranked:
        top = max(amount for _, amount in bars) or 1.0
        charts.append(
            {
                "currency": currency,
                "months": months,
                "bars": [{"label": label, "amount": amount, "share": amount / top} for label, amount in bars],
            }
        )
    return charts


@router.get("/static/{name}")
def static(request: Request, name: str) -> Response:
    found = _site(request).assets.response(request, name)
    return found if found is not None else not_found(request, f"file {name!r}: not found")


@router.post("/rpc")
async def json_rpc(request: Request) -> Response:
    site = _site(request)
    if not site.embedded:
        return not_found(request, "this deployment's chain has its own public RPC endpoint")
    return await rpc.handle(request, site.dev_chain)


def install(app: FastAPI, settings: Settings, *, dev_chain: EmbeddedChain | None = None) -> None:
    """Mount the explorer on ``app`` at ``/``; ``dev_chain`` is the embedded chain ``/rpc``
    serves (default: this process's)."""
    app.state.explorer = Site(settings, dev_chain=dev_chain)
    app.state.not_found_page = not_found  # unknown paths asked for by a browser get the site's 404 page
    app.include_router(router)
