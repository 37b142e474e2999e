"""The explorer's pages, server-rendered (complete without JavaScript), and its static files.

:func:`install` mounts them on the application at ``/`` (outside the OpenAPI schema: they are a
site, not the API). Data comes from the same modules as the API (ledger.procurement.query,
ledger.procurement.stats, anchoring.bundles, anchoring.store); nothing here asserts that anything is
verified: the badges are computed in the visitor's browser (explorer/js).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from babel.numbers import format_percent
from fastapi import APIRouter, FastAPI, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from anchoring import embedded, store
from anchoring.bundles import final_anchors
from ledger.core.envelope import parse_timestamp
from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.log import Log
from ledger.procurement import cardinal, export, importer, ocds, profiles, query, redflags, stats, withholding
from ledger.store.reader import StoredEvent
from settings import EMBEDDED_CHAIN_ID, EMBEDDED_LABEL, Settings

from . import chains, rpc, share
from .assets import Assets
from .describe import EVENT_LABELS, FLAG_EVIDENCE, ROLE_LABELS, STATUS_LABELS, Described, describe, describe_release
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
#: Strings the in-browser verifier shows, by key (translated into the page's language): main.js's
#: own (``t("key")``) and the verifier's messages (verify.js ``msg("key")`` and its errors), every
#: failure reason included, so a Spanish page says why in Spanish.
JS_MESSAGES: dict[str, str] = {
    "anchored_in": "Verified: anchored in",
    "block": "block {block}",
    "at_time": "at {time}",
    "pending": "Pending: not yet anchored",
    "failed": "Verification failed",
    "not_checked": "Not checked: the chain could not be asked",
    "http_error": "the server answered HTTP {status}",
    "bundle_unreachable": "the server could not be reached ({reason})",
    "retry": "Try again",
    "checking": "Checking every event against the log and the chain, in your browser…",
    "nothing_anchored": "Nothing of this tender is anchored yet: every event is pending.",
    "all_verified": "Every anchored event was verified in your browser against the chain.",
    "not_checked_summary": "Not checked: the chain could not be asked, so nothing here is confirmed or refuted.",
    "some_failed": "Verification found {count} problem(s).",
    "could_not_verify": "Could not verify: {reason}",
    "bundle_valid": "The bundle is valid",
    "bundle_invalid": "The bundle is NOT valid: {count} problem(s)",
    "bundle_unchecked": "Not checked: the chain could not be asked",
    "bundle_pending": "Nothing in this bundle is anchored yet: its events are pending, not verified",
    "bundle_of": "Tender {ocid}, anchored on chain {chain}.",
    "problems": "Problems found",
    "not_asked": "What could not be asked",
    "events": "Events",
    "col_seq": "Seq",
    "col_type": "Event",
    "col_index": "Log index",
    "col_status": "Status",
    "col_signer": "Signer",
    "copied": "Link copied.",
    "copy_by_hand": "The link is selected: copy it with your keyboard or menu.",
    "cert_title": "Verification certificate",
    "cert_what": "What was verified",
    "cert_what_value": "the proof bundle of tender {ocid}: {count} event(s)",
    "cert_result": "Result",
    "cert_when": "Verified at",
    "cert_chain": "Against the chain",
    "cert_contract": "Anchor contract",
    "cert_command": "Re-check it with",
    "cert_means": "Verified in this browser from the bundle's proofs and the chain's answers. Anyone can re-check it with the command above and an endpoint of their own.",
    "cert_print": "Print this certificate",
    "chain_id": "chain id",
    "verifying": "Verifying…",
    "not_json": "the text is not JSON ({reason})",
    "rpc_bad_url": "Give an http:// or https:// address.",
    "no_bundle": "no bundle for {ocid}: unknown tender or nothing anchored yet",
    "explain_format": "This is not a Tenderproof proof bundle (tenderproof-bundle/1 or /2), or a required part is missing or malformed.",
    "explain_empty": "A bundle without events proves nothing: an empty history is never verified.",
    "explain_payload": "The event's content was changed: it no longer matches the hash its envelope recorded.",
    "explain_leaf": "The event's envelope was changed: it no longer hashes to the entry of the log.",
    "explain_chain": "The tender's history is incomplete or reordered: an event was removed, inserted or moved.",
    "explain_origin": "An event belongs to another log or another tender than the bundle says.",
    "explain_signature": "The officer's signature does not match: the event was not signed as shown, or by someone else.",
    "explain_inclusion": "The proof does not lead from this event to the anchored root: the event is not in the log as anchored.",
    "explain_escaped": "The log had already anchored this event, yet the bundle shows it without its proof, as if pending: it may have been rewritten.",
    "explain_consistency": "The anchored checkpoints are not shown to be one history: the log may have been rewritten.",
    "explain_chain_anchor": "The chain contradicts the bundle: the contract, root, transaction or block differs from what the bundle says.",
    "explain_unavailable": "The chain could not be asked, so these anchors are neither confirmed nor refuted. Try again, or name another endpoint.",
    "explain_other": "{text}",
    "w_format": "format",
    "w_bundle": "bundle",
    "w_event": "event seq {seq} (events[{position}])",
    "w_anchor": "anchor of tree size {size}",
    "w_consistency": "consistency {from} -> {to}",
    "w_consistency_all": "consistency",
    "w_chain": "chain",
    "r_format": "not a Tenderproof bundle (format {format}; this verifier reads tenderproof-bundle/1 and /2)",
    "r_required": "events, anchors and chain are required",
    "r_malformed": "malformed: {detail}",
    "r_no_events": "the bundle holds no events: an empty history is never verified",
    "r_anchor_size": "tree_size must be a whole number from 1 to 2^53-1",
    "r_root_hex": "root_hash must be 64 lowercase hex digits",
    "r_env_missing": "envelope missing",
    "r_origin": "envelope origin {got} is not the bundle's {expected}",
    "r_ocid": "envelope ocid {got} is not the bundle's {expected}",
    "r_seq": "expected seq {expected}: the history must be complete and in order from 0",
    "r_prev": "prev {got} is not the leaf hash of the event before ({expected})",
    "r_payload": "payload hashes to {got}, the envelope says {expected}",
    "r_commitment": "payload and disclosure commit to {got}, the envelope says {expected}",
    "r_disclosure": "payload cannot be checked against its commitment: {detail}",
    "r_leaf": "envelope hashes to leaf {got}, the bundle says {expected}",
    "r_signature": "signature: {reason}",
    "r_index": "log index {got} is not a whole number from 0 to 2^53-1",
    "r_index_order": "log index {index} is not after the previous event's ({previous})",
    "r_escaped": "log index {index} lies below tree size {size}, which the bundle cites as anchored, but the event carries no inclusion proof",
    "r_escaped_chain": "log index {index} lies below tree size {size}, the contract's latest anchor, but the event carries no inclusion proof",
    "r_no_anchor_for_proof": "its inclusion proof is for tree size {size}, which no anchor in the bundle has",
    "r_inclusion": "inclusion in tree size {size}: {reason}",
    "r_anchor_order": "anchors must be listed oldest (smallest) first, once each",
    "r_link_twice": "a link is listed twice",
    "r_link_unused": "does not link two consecutive anchors of the bundle",
    "r_link_missing": "missing: the anchors are not shown to be one history",
    "r_not_one_history": "not shown to extend the anchor of tree size {from} (consistency {from} -> {to} does not hold)",
    "r_chain_id": "the endpoint is on chain {got}, the bundle's anchors are on chain {expected}",
    "r_no_contract": "no anchor contract answers at {contract} (it returned {got} bytes)",
    "r_no_checkpoint": "the contract {contract} holds no checkpoint of that size",
    "r_root_differs": "the contract holds root {got}, the bundle says {expected}",
    "r_tx_missing": "transaction {tx} is not on the chain",
    "r_tx_reverted": "transaction {tx} reverted",
    "r_tx_not_anchor": "transaction {tx} did not anchor this tree size and root",
    "r_block_missing": "block {block} is not on the chain",
    "r_block": "transaction is in block {got}, the bundle says {expected}",
    "r_time": "block time is {got}, the bundle says {expected}",
    "r_chain_answer": "the chain's answer does not fit an anchor ({detail})",
    "p_element": "proof element {i} has wrong size: expected 32, got {got}",
    "p_index": "needs 0 <= index < size, got index {index}, size {size}",
    "p_too_long": "the proof is too long ({count} elements)",
    "p_too_short": "the proof is too short ({count} elements)",
    "p_root": "root mismatch: expected {expected}, calculated {got}",
    "p_sizes": "needs 0 <= size1 <= size2, got size1 {size1}, size2 {size2}",
    "p_not_empty": "the proof must be empty, got {count} elements",
    "p_equal_roots": "two roots of the same size {size} differ",
    "p_empty": "the proof is empty",
    "p_old_root": "old root mismatch: expected {expected}, calculated {got}",
    "p_new_root": "new root mismatch: expected {expected}, calculated {got}",
    "p_path": "the proof's path must be a list of hex hashes",
    "not_hex": "not hex: {text}",
    "s_format": "the signature must be 0x and 130 lowercase hex digits",
    "s_v": "v must be 27 or 28, got {got}",
    "s_low": "s is not low (EIP-2)",
    "s_missing": "the submission is missing",
    "s_field": "{field} is not the envelope's own: expected {expected}, got {got}",
    "s_field_hex": "{field} must be 64 lowercase hex digits",
    "s_recovers": "recovers {signer}, not the officer {officer}",
    "s_malformed": "malformed ({detail})",
    "u_timeout": "the chain's RPC endpoint {url} did not answer {method} within {seconds} s",
    "u_unreachable": "the chain's RPC endpoint {url} cannot be reached ({detail})",
    "u_http": "the chain's RPC endpoint {url} answered HTTP {status} to {method}",
    "u_bad_answer": "the chain's RPC endpoint {url} gave no usable answer to {method}",
    "u_refused": "the chain's RPC endpoint {url} refused {method}: {detail}",
    "w_completeness": "completeness",
    "w_commitment": "heads commitment",
    "w_heads_proof": "heads proof",
    "w_officer_event": "officers[{position}]",
    "w_checkpoint": "signed checkpoint",
    "r_required_v2": "a tenderproof-bundle/2 needs completeness, officers and checkpoint",
    "r_required_completeness": "completeness needs a commitment, its payload and a head",
    "c_encoding": "{field} is not in the compact encoding of completeness proofs",
    "r_required_officer": "a registry event needs a payload with an address",
    "r_field_hex": "{field} must be 64 lowercase hex digits",
    "r_field_size": "{field} must be a whole number from 0 to 2^53-1",
    "c_type": "the commitment must have ocid ocds-tplog0-heads and type log.heads, got {ocid} and {type}",
    "c_index": "the commitment is at log index {got}; the newest anchor (tree size {size}) needs it at {expected}",
    "c_tree_size": "the commitment's payload says tree size {got}, expected {expected}",
    "c_no_inclusion": "the commitment carries no inclusion proof into the anchor of tree size {size}",
    "c_at_commitment": "no event of the tender can be at log index {index}: the commitment is there",
    "c_short": "history stops at seq {last} ({count} events), the log committed {size} events as of tree size {n}",
    "c_long": "the bundle holds {count} events below the commitment, the log committed {size} as of tree size {n}",
    "c_head": "the committed head is not the bundle's last anchored event (seq {seq} of {size})",
    "w_range": "range",
    "w_range_before": "the event before the range",
    "r_range_shape": "a range needs from_seq <= to_seq < of, as many events as it spans, and the event before it exactly when from_seq is above 0 (its payload null)",
    "r_range_before": "is seq {seq} of another tender or log, expected seq {expected} of this tender",
    "r_seq_range": "expected seq {expected}: the range must be complete and in order from seq {first}",
    "r_prev_range": "prev {got} is not the leaf hash of the event before the range ({expected})",
    "c_range_of": "the log committed {size} events as of tree size {n}, the range says {of} in all",
    "c_range_not_among": "the log committed {size} events as of tree size {n}, yet this event is not among them",
    "c_range_below": "the log committed {size} events as of tree size {n}, yet this event is below the commitment",
    "range_of": "Events {first} to {last} of a history of {of}: a part of the history, not all of it.",
    "range_committed": "The log committed {size} events of this tender as of tree size {n}.",
    "h_shape": "the proof has {count} siblings, at most 256",
    "h_head_shape": "size 0 comes without a head, any other size with one (and no other leaf)",
    "h_bad_other": "the other leaf must have another key sharing the first {depth} bits",
    "h_not_canonical": "not canonical: the leaf's sibling is empty (it should be lifted)",
    "o_not_registry": "not an event of the officers' registry (ocid {ocid}, type {type})",
    "o_not_registered": "signer {address} was not a registered officer at log index {index}",
    "o_revoked": "signer {address} ({name}) was revoked at log index {revoked}, before signing at {index}",
    "w_order_event": "orders[{position}]",
    "w_not_order": "is a {type} event of {ocid} ({origin}), not a withholding order of this log",
    "w_order_required": "a withholding order must carry its payload and log index",
    "w_order_escaped": "log index {index} lies below the anchored tree size {size}, yet no inclusion proof",
    "w_order_no_anchor": "its inclusion proof is for tree size {size}, no anchor has it",
    "r_withheld_missing": "a null payload needs a non-empty withheld reason or its order ({order, reference})",
    "r_withheld_order": "withheld: the order must be {order, reference}, its log index a whole number",
    "r_withheld_reference": "withheld.reference: must be the order's reference, a non-empty string",
    "r_withheld_earlier": "withheld.earlier: must list at least one order, each once, in log order, all before withheld.order",
    "r_withheld_shown": "withheld: only a withheld (null) payload has a reason",
    "r_withheld_no_order": "payload left out without a withholding order of this log: {reason}",
    "r_order_in_v1": "names a withholding order, which only a tenderproof-bundle/2 carries (proven)",
    "r_order_not_carried": "withheld under the order at log index {order}, which the bundle does not carry (proven)",
    "r_order_reference": "names order reference {got}, the order says {expected}",
    "r_order_not_target": "the order at log index {order} does not withhold {what} of log index {index}",
    "r_order_whole": "its payload",
    "r_order_fields": "fields",
    "withheld_under": "withheld under order {reference} (log index {order})",
    "withheld_reason": "payload withheld: {reason}",
    "withheld_field": "field {pointer} withheld under the order at log index {order}",
    "explain_withheld": "The event's content is missing without a lawful order of this log that withholds it: it may have been dropped or hidden.",
    "k_format": "not a C2SP signed checkpoint ({detail})",
    "k_bad_key": "{key} is not a C2SP Ed25519 verifier key (name+hash+base64)",
    "k_no_sig": "the checkpoint carries no signature by the key {name}",
    "k_bad_sig": "the signature by {name} does not verify",
    "k_size_root": "the signed checkpoint is of tree size {size} and root {root}, not the newest anchor's (tree size {anchor})",
    "k_no_key": "no verifier key given",
    "k_unsupported": "this browser cannot check Ed25519 signatures",
    "complete_as_of": "Complete as of tree size {size}, anchored at {time}.",
    "complete_unchecked": "Complete as of tree size {size} (the anchor's time was not read from the chain).",
    "not_proven": "Completeness not proven: this bundle carries no heads commitment.",
    "checkpoint_verified": "Signed checkpoint of tree size {size}: the signature by {name} verifies.",
    "checkpoint_unchecked": "Signed checkpoint: signature not checked ({reason}).",
    "checkpoint_absent": "This bundle carries no signed checkpoint.",
    "explain_incomplete": "The bundle leaves out part of the tender's history, or its proof of completeness does not hold.",
    "explain_officer": "The signer was not a registered officer when the event was signed.",
    "explain_checkpoint": "The log's signed checkpoint does not hold: wrong key, bad signature, or another size or root.",
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
        #: One path segment or query value, every reserved character encoded (``/`` included):
        #: ocids refuse URL-breaking characters (docs/spec.md §2.2), links encode them anyway.
        self.env.filters["segment"] = lambda value: quote(str(value), safe="")
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
        policy = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src {connect}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        )
        self.csp = policy.format(connect=" ".join(connect))
        #: /verify lets visitors name their own JSON-RPC endpoint: its page may connect anywhere.
        self.csp_any_endpoint = policy.format(connect="'self' https: http:")


def _instance(request: Request) -> str | None:
    """The chain instance whose anchors the pages list: for the embedded chain, this process's
    (its earlier instances vanished with their processes); None for a real chain."""
    site = _site(request)
    if not site.embedded:
        return None
    return (site.dev_chain or embedded.chain()).instance


def _site(request: Request) -> Site:
    site: Site = request.app.state.explorer
    return site


def _log(request: Request) -> Log:
    """The log the page reads from: the replica the server chose for this request
    (``api.replicas.ReadRoutingMiddleware``), else the primary."""
    chosen: Log | None = request.scope.get("state", {}).get("read_log")
    if chosen is not None:
        return chosen
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
    path = quote(request.url.path, safe="/")  # the decoded path (an ocid in it), encoded again
    return path + (f"?{encoded}" if encoded else "")


def render(
    request: Request, template: str, *, status: int = 200, page: str, csp: str | None = None, **context: Any
) -> HTMLResponse:
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
        role_label=lambda role: fmt.gettext(ROLE_LABELS.get(role) or str(role)),
        flag_evidence=lambda code, evidence: flag_evidence(fmt, code, evidence),
        flag_info={flag.code: flag for flag in redflags.FLAGS},
        origin=site.settings.origin,
        org_href=lambda name: "/organisations?" + urlencode({"name": name}),
        org_url=organisation_url,
        qr_code=lambda url, label: share.qr_svg(url, label=label),
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = csp or site.csp
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie"
    if chosen in LOCALES:
        response.set_cookie(COOKIE, lang, max_age=COOKIE_MAX_AGE, path="/", samesite="lax")
    return response


def _formatter(request: Request) -> Formatter:
    """The formatter of the request's language (as :func:`render` negotiates it)."""
    return Formatter(
        negotiate(
            query=request.query_params.get("lang"),
            cookie=request.cookies.get(COOKIE),
            accept_language=request.headers.get("accept-language"),
        )
    )


def not_found(request: Request, message: str) -> HTMLResponse:
    return render(request, "error.html", status=404, page="error", title="Not found", message=message)


def js_config(request: Request, **extra: Any) -> str:
    """The verifier's configuration, as the JSON of a non-executed ``<script type="application/json">``."""
    site = _site(request)
    fmt = _formatter(request)
    lang = fmt.lang
    config = {
        "locale": lang,
        "rpcUrl": site.rpc_url,
        "blockExplorer": _chain_facts(request)["block_explorer"],
        "bundleBase": "/api/v1/tenders",
        # An anchor counts (no event below its size escapes its proof) once final.
        "confirmations": site.chain.confirmations if site.chain else 1,
        "messages": {key: fmt.gettext(text) for key, text in JS_MESSAGES.items()},
        "eventLabels": {kind: fmt.gettext(label) for kind, label in EVENT_LABELS.items()},
        "chainName": _chain_name(request, fmt),
        **extra,
    }
    # "</" never appears inside the element: the JSON stays one text node whatever it holds.
    return json.dumps(config, ensure_ascii=False).replace("</", "<\\/")


def _chain_name(request: Request, fmt: Formatter) -> str | None:
    """The first chain in words, in ``fmt``'s language."""
    chain = _chain_facts(request)
    if chain["embedded"] or chain["words"] == chains.LOCAL:
        return fmt.gettext(chains.LOCAL)
    words: str | None = chain["words"] or chain["name"]
    return words


def _chain_facts(request: Request) -> dict[str, Any]:
    site = _site(request)
    chain = site.chain
    chain_id = EMBEDDED_CHAIN_ID if site.embedded else chain.chain_id if chain else None
    named = chains.describe(site.settings, chain_id, embedded=site.embedded)
    return {
        "name": chain.name if chain else None,
        "embedded": site.embedded,
        "embedded_label": EMBEDDED_LABEL,
        "rpc_url": site.rpc_url,
        "block_explorer": named.explorer,
        "chain_id": chain_id,
        "words": named.name,
    }


router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    log, site = _log(request), _site(request)
    head = log.reader.tree_head()
    totals = site.cache.get("totals", lambda: stats.totals(log.engine))
    chain = _chain_facts(request)
    anchors = (
        store.listing(log.engine, chain=chain["name"], instance=_instance(request), limit=5) if chain["name"] else []
    )
    last = store.latest_final(log.engine, chain["name"]) if chain["name"] else None
    contract = anchors[0].target.contract if anchors else None
    recent = stats.recent_events(log.reader, size=head.size, limit=10)
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
        recent=recent,
        titles=stats.titles(log.engine, [e.ocid for e in recent]),
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


#: The list's query parameters (short names, as people share them) and the search filter each sets.
FILTERS = {
    "q": "q",
    "status": "status",
    "method": "method",
    "buyer": "buyer",
    "supplier": "supplier",
    "flag": "flag",
    "year": "year",
    "currency": "currency",
    "from": "published_from",
    "to": "published_to",
    "min": "value_min",
    "max": "value_max",
    "amin": "awarded_min",
    "amax": "awarded_max",
}
#: The filters folded under "More filters" (the search box stays in view).
MORE_FILTERS = tuple(key for key in FILTERS if key != "q")
#: The search's downloads: (key, API path, title, kind); they take the API's names of the filters.
RESULT_EXPORTS = (
    ("tenders_csv", "/api/v1/export/tenders.csv", "These tenders (CSV)", "CSV"),
    ("awards_csv", "/api/v1/export/awards.csv", "Their awards (CSV)", "CSV"),
    ("records", "/api/v1/export/records", "Their OCDS records (JSON)", "JSON"),
)
SORT_LABELS = {
    "relevance": "Best match first (newest without words)",
    "published_desc": "Newest first",
    "published_asc": "Oldest first",
    "value_desc": "Highest value first",
    "value_asc": "Lowest value first",
}
FACET_TITLES = {
    "status": "Status",
    "method": "Method",
    "flag": "Red flag",
    "year": "Year",
    "currency": "Currency",
    "buyer": "Buyer",
    "supplier": "Supplier",
}


def _year(text: str) -> int | None:
    if not text:
        return None
    if not (len(text) == 4 and text.isdigit()):
        raise InvalidArgumentError("year", f"must be a year such as 2026, got {text!r}")
    return int(text)


def _filters(params: dict[str, str]) -> query.Filters:
    """The search filters of the list's parameters. Raises :class:`InvalidArgumentError` naming
    the parameter as the form does."""
    if params["currency"] and not (len(params["currency"]) == 3 and params["currency"].isalpha()):
        raise InvalidArgumentError("currency", f"must be a 3-letter ISO 4217 code, got {params['currency']!r}")
    filters = query.Filters(
        q=params["q"][:200] or None,
        status=params["status"] or None,
        method=params["method"][:32] or None,
        buyer=params["buyer"][:256] or None,
        supplier=params["supplier"][:1024] or None,
        flag=params["flag"][:64] or None,
        year=_year(params["year"]),
        currency=params["currency"].upper() or None,
        published_from=_day(params["from"], "from", end=False),
        published_to=_day(params["to"], "to", end=True),
        value_min=_amount(params["min"], "min"),
        value_max=_amount(params["max"], "max"),
        awarded_min=_amount(params["amin"], "amin"),
        awarded_max=_amount(params["amax"], "amax"),
    )
    try:
        filters.check()
    except InvalidArgumentError as exc:
        short = {name: key for key, name in FILTERS.items()}
        raise exc.renamed(short.get(exc.field, exc.field)) from exc
    return filters


def _api_query(params: dict[str, str]) -> str:
    """The API's query string for the same search (its names of the filters)."""
    pairs = {FILTERS[key]: params[key] for key in FILTERS if params[key]}
    if "currency" in pairs:
        pairs["currency"] = pairs["currency"].upper()
    return urlencode(pairs)


@router.get("/tenders", response_class=HTMLResponse)
def tenders(request: Request) -> Response:
    params = {key: (request.query_params.get(key) or "").strip() for key in (*FILTERS, "sort", "cursor")}
    error: InvalidArgumentError | None = None
    page = query.Page([], None)
    found = None
    flags: dict[str, list[str]] = {}
    engine = _log(request).engine
    try:
        filters = _filters(params)
        # best match first by default; without words to search for, that is the newest first
        sort = params["sort"] or "relevance"
        if sort not in query.SORTS:
            raise InvalidArgumentError("sort", f"must be one of {', '.join(query.SORTS)}, got {sort!r}")
        page = query.search_tenders(
            engine,
            sort="published_desc" if sort == "relevance" and not filters.words() else sort,  # type: ignore[arg-type]
            cursor=params["cursor"] or None,
            limit=PAGE_SIZE,
            **dataclasses.asdict(filters),
        )
        found = query.facets(engine, **dataclasses.asdict(filters))
        flags = query.flags_of(engine, [t.ocid for t in page.items])
    except InvalidArgumentError as exc:
        error = exc
        sort = params["sort"] or "relevance"
    api_query = _api_query(params)
    return render(
        request,
        "tenders.html",
        status=400 if error else 200,
        page="tenders",
        params=params,
        error=error,
        results=page,
        found=found,
        flags=flags,
        sort=sort,
        sorts=query.SORTS,
        sort_labels=SORT_LABELS,
        facet_titles=FACET_TITLES,
        statuses=tuple(STATUS_LABELS),
        flag_catalogue=redflags.FLAGS,
        more_open=any(params[key] for key in MORE_FILTERS),
        downloads=[
            (key, f"{href}?{api_query}" if api_query else href, title, kind)
            for key, href, title, kind in RESULT_EXPORTS
        ],
        filtered=any(params[key] for key in FILTERS),
    )


def _covering(sizes: list[int], index: int | None) -> int | None:
    """Position of the first anchor whose tree covers log index ``index``."""
    if index is None:
        return None
    at = bisect.bisect_right(sizes, index)
    return at if at < len(sizes) else None


def _timeline_item(
    event: StoredEvent, imported: set[int], target: Any, sizes: list[int], orders: dict[int, str] | None = None
) -> dict[str, Any]:
    """One event as the tender and event pages show it (``orders``: the reference of each
    withholding order by log index, for the events withheld in whole or part)."""
    envelope = event.parsed_envelope
    at = _covering(sizes, event.index)
    submission = envelope.submission if envelope.signature else None
    payload, problem = event.readable_payload
    withheld = None
    if event.withheld_by is not None:
        problem = None if payload is not None else problem
        withheld = {
            "order": event.withheld_by,
            "reference": (orders or {}).get(event.withheld_by, "?"),
            "whole": payload is None,
        }
    is_release = event.event_id in imported and isinstance(payload, dict)
    released = ocds.parse_datetime(payload.get("date")) if is_release else None
    return {
        "seq": event.seq,
        "type": event.type,
        "index": event.index,
        "recorded_at": parse_timestamp(envelope.recorded_at),
        # an imported release's own date (when it happened, as published); the recording
        # time stays beside it
        "released_at": released if released is None or released.tzinfo else released.replace(tzinfo=UTC),
        "release_id": payload.get("id") if is_release else None,
        "what": _describe_stored(event, payload, problem, release=is_release),
        "signer": submission.get("officer") if isinstance(submission, dict) else None,
        "leaf_hash": event.leaf_hash.hex(),
        "payload_sha256": envelope.payload_sha256,
        "payload_commitment": envelope.payload_commitment,
        "claimed": None if target is None or at is None else target.anchors[at],
        "withheld": withheld,
    }


def _page_url(request: Request, path: str) -> str:
    """The absolute URL of this site's page at ``path`` (what its link and QR code give)."""
    return str(request.base_url).rstrip("/") + path


def _preview(fmt: Formatter, summary: query.TenderSummary) -> str:
    """A tender in one line, for link previews (Open Graph, Twitter cards)."""
    parts = [summary.buyer_name or "", fmt.gettext(STATUS_LABELS.get(summary.status) or summary.status)]
    if summary.value_amount is not None:
        parts.append(fmt.money(summary.value_amount, summary.currency))
    return " · ".join(part for part in parts if part)


#: Most events one tender page shows (?from= pages through the rest).
TENDER_EVENTS_PAGE = 200


@router.get("/tenders/{ocid}", response_class=HTMLResponse)
def tender(request: Request, ocid: str) -> Response:
    log, site = _log(request), _site(request)
    count = 0
    try:
        summary = query.tender_summary(log.engine, ocid)
        count, _head = log.reader.tender_head(ocid)
        first_text = request.query_params.get("from", "")
        first = int(first_text) if first_text.isdigit() and int(first_text) < count else 0
        stored = log.reader.tender_events(ocid, from_seq=first, limit=TENDER_EVENTS_PAGE)
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
        orders = withholding.references(conn, [e.withheld_by for e in stored if e.withheld_by is not None])
        # events withheld whole: the tender moved as their types imply, their data is not shown
        withheld_events = query.tender_state(conn, ocid).withheld
        withheld_orders = withholding.references(conn, list(withheld_events.values()))
    timeline = [_timeline_item(event, imported, target, sizes, orders) for event in stored]
    withheld_data = [
        {
            "order": order,
            "reference": withheld_orders.get(order, "?"),
            "seqs": sorted(s for s, o in withheld_events.items() if o == order),
        }
        for order in sorted(set(withheld_events.values()))
    ]
    # The compiled release merges every event, only for tenders small enough to hold in memory: the
    # tender's releases as the export gives them (imported ones as published), so the compiled
    # release on the page is the export's, and ocdsmerge's.
    compiled = None
    if count <= TENDER_EVENTS_PAGE:
        releases = next((r for o, r in export.iter_tenders(log.engine, ocid=ocid) if o == ocid), [])
        compiled = ocds.compiled_release(releases) if releases else ocds.compiled_release(ocds.releases(stored))
    # A tender in pages: each page's proof bundle is the range bundle of its entries (docs/spec.md
    # §15.3), what the browser verifies there; a whole one is served only for small tenders.
    shown = (first, first + len(stored) - 1) if count > TENDER_EVENTS_PAGE and stored else None
    bundle_query = {
        **({"chain": chain["name"]} if chain["name"] else {}),
        **({"from_seq": shown[0], "to_seq": shown[1]} if shown else {}),
    }
    bundle_url = f"/api/v1/tenders/{quote(ocid, safe='')}/bundle" + (
        f"?{urlencode(bundle_query)}" if bundle_query else ""
    )
    return render(
        request,
        "tender.html",
        page="tender",
        summary=summary,
        timeline=timeline,
        compiled=None if compiled is None else json.dumps(compiled, indent=2, ensure_ascii=False),
        previous_from=max(0, first - TENDER_EVENTS_PAGE) if first > 0 else None,
        next_from=first + TENDER_EVENTS_PAGE if first + TENDER_EVENTS_PAGE < count else None,
        chain=chain,
        contract=target.contract if target else None,
        bundle_url=bundle_url,
        bundle_range=shown,
        config=js_config(request, bundleUrl=bundle_url) if site.rpc_url else None,
        flags=redflags.tender_flags(log.engine, ocid),
        party_flags=redflags.tender_party_flags(log.engine, ocid),
        organisation_flag_info={flag.code: flag for flag in redflags.ORGANISATION_FLAGS},
        notes=notes,
        withheld_data=withheld_data,
        awarded=[] if compiled is None else awarded_by_currency(compiled),
        preview=_preview(_formatter(request), summary),
        known_names=profiles.tender_party_names(log.engine, ocid),
        page_url=_page_url(request, f"/tenders/{quote(ocid, safe='')}"),
    )


@router.get("/tenders/{ocid}/events/{seq}", response_class=HTMLResponse)
def tender_event(request: Request, ocid: str, seq: str) -> Response:
    """One event of a tender, on a page of its own (what its QR code and link point to)."""
    log = _log(request)
    try:
        summary = query.tender_summary(log.engine, ocid)
        count, _head = log.reader.tender_head(ocid)
        if not seq.isdigit() or int(seq) >= count:
            raise NotFoundError(f"event {seq!r} of tender {ocid!r}: not found")
        stored = log.reader.tender_events(ocid, from_seq=int(seq), limit=1)
    except NotFoundError as exc:
        return not_found(request, str(exc))
    chain = _chain_facts(request)
    target = None
    if chain["name"]:
        try:
            target = final_anchors(log.engine, chain["name"])
        except NotFoundError:
            target = None
    with log.engine.connect() as conn:
        imported = importer.imported_event_ids(conn, ocid)
        orders = withholding.references(conn, [e.withheld_by for e in stored if e.withheld_by is not None])
    item = _timeline_item(stored[0], imported, target, [a.tree_size for a in target.anchors] if target else [], orders)
    path = f"/tenders/{quote(ocid, safe='')}/events/{int(seq)}"
    fmt = _formatter(request)
    label = fmt.gettext(EVENT_LABELS.get(item["type"]) or item["type"])
    return render(
        request,
        "event.html",
        page="event",
        summary=summary,
        e=item,
        count=count,
        chain=chain,
        contract=target.contract if target else None,
        preview=f"{label} · {_preview(fmt, summary)}",
        known_names=profiles.tender_party_names(log.engine, ocid),
        config=js_config(request) if _site(request).rpc_url else None,
        page_url=_page_url(request, path),
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


@router.get("/about", response_class=HTMLResponse)
def about(request: Request) -> Response:
    chain = _chain_facts(request)
    listed = (
        store.listing(_log(request).engine, chain=chain["name"], instance=_instance(request), limit=1)
        if chain["name"]
        else []
    )
    return render(
        request, "about.html", page="about", chain=chain, contract=listed[0].target.contract if listed else None
    )


@router.get("/organisations", response_class=HTMLResponse)
def organisation_named(request: Request) -> Response:
    """The organisation most often named ``?name=`` (lists hold names only): a redirect to its page."""
    name = (request.query_params.get("name") or "")[:1024]
    try:
        key = profiles.key_of_name(_log(request).engine, name)
    except NotFoundError as exc:
        return not_found(request, str(exc))
    return RedirectResponse(organisation_url(key), status_code=303)


def organisation_url(key: str) -> str:
    """The page of the organisation ``key`` (its ``/`` kept: a key is ``scheme/id``)."""
    return "/organisations/" + quote(key, safe="/:")


@router.get("/organisations/{key:path}", response_class=HTMLResponse)
def organisation(request: Request, key: str) -> Response:
    try:
        before = request.query_params.get("before") or None
        profile = profiles.organisation_profile(_log(request).engine, key[:1024], before=before)
    except NotFoundError as exc:
        return not_found(request, str(exc))
    except InvalidArgumentError as exc:
        message = f"{exc.field}: {exc.reason}"
        return render(request, "error.html", status=400, page="error", title="Bad request", message=message)
    return render(
        request,
        "organisation.html",
        page="organisation",
        profile=profile,
        organisation_flag_info={flag.code: flag for flag in redflags.ORGANISATION_FLAGS},
        roles=profiles.ROLES,
    )


@router.get("/anchors", response_class=HTMLResponse)
def anchors(request: Request) -> Response:
    log = _log(request)
    chain = _chain_facts(request)
    before_text = request.query_params.get("before", "")
    before = int(before_text) if before_text.isdigit() and 0 < int(before_text) < 2**63 else None
    found = (
        store.listing(log.engine, chain=chain["name"], instance=_instance(request), before=before, limit=PAGE_SIZE + 1)
        if chain["name"]
        else []
    )
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
        csp=site.csp_any_endpoint,
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


def _describe_stored(event: StoredEvent, payload: Any, problem: str | None, *, release: bool) -> Described:
    """What the event says (an imported release read as published), or (a payload too deep to
    read, stored before input was bounded) that its content cannot be shown, and why: the rest of
    the page is shown."""
    if payload is None and event.withheld_by is not None:  # said by the page: withheld under its order
        return Described(EVENT_LABELS.get(event.type, event.type))
    if problem is not None:
        return Described(EVENT_LABELS.get(event.type, event.type), detail=f"content not shown: {problem}")
    return describe_release(event.type, payload) if release else describe(event.type, payload)
