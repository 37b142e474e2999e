// Tenderproof's in-browser verifier: the checks of verifier/check.py, in the visitor's browser.
//
// Hashing is WebCrypto's SHA-256; the RFC 9162 inclusion and consistency algorithms mirror
// ledger/core/verify.py step for step (tree sizes as BigInt: JavaScript's bit operators are 32-bit);
// RFC 8785 canonical JSON is the `canonicalize` package; EIP-712 hashing is written out for the one
// typed struct of ledger/core/signing.py and recovery uses @noble/curves (secp256k1) and
// @noble/hashes (keccak-256). The chain is read with JSON-RPC `eth_call`s to the contract's rootAt.
import canonicalize from "canonicalize";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { CommitmentError, recompute, withheldFields } from "./commitment.js";
import { HEX64, concat, equal, isSize, sha256, toHex, utf8 } from "./shared.js";
import { checkCheckpoint, checkCompleteness, checkOfficers } from "./complete.js";
import { checkOrders, withheldProblem, withheldReport } from "./orders.js";

export const BUNDLE_FORMAT = "tenderproof-bundle/1";
export { sha256, toHex } from "./shared.js";

export function fromHex(text) {
  if (typeof text !== "string") throw new VerifyError("not_hex", { text: JSON.stringify(text ?? null).slice(0, 80) });
  const clean = text.startsWith("0x") ? text.slice(2) : text;
  if (clean.length % 2 || /[^0-9a-fA-F]/.test(clean)) throw new VerifyError("not_hex", { text: String(text).slice(0, 80) });
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Why ``payload`` is not the one ``env`` binds, as a message, or null: version 1, its RFC 8785 SHA-256
 * must be payload_sha256; version 2, the commitment recomputed with ``disclosure`` must be
 * payload_commitment (ledger/core/commitment.py).
 */
export async function payloadProblem(env, payload, disclosure) {
  if (env.v === 2) {
    let bound;
    try {
      bound = await recompute(payload, disclosure);
    } catch (err) {
      return msg("r_disclosure", { detail: String(err instanceof CommitmentError ? err.detail : err.message).slice(0, 200) });
    }
    return bound === env.payload_commitment ? null : msg("r_commitment", { got: bound, expected: String(env.payload_commitment) });
  }
  const digest = toHex(await sha256(canonicalBytes(payload)));
  return digest === env.payload_sha256 ? null : msg("r_payload", { got: digest, expected: String(env.payload_sha256) });
}

/** RFC 9162 leaf hash: SHA-256(0x00 || data). */
export const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
/** RFC 9162 node hash: SHA-256(0x01 || left || right). */
export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/** The RFC 8785 (JCS) UTF-8 bytes of a JSON value. */
export const canonicalBytes = (value) => utf8.encode(canonicalize(value));

/**
 * An error whose text is a message of the explorer's catalogue: ``key`` names it, ``values`` fill its
 * placeholders (a value may itself be a message). The page translates it (main.js); the English
 * ``message`` is for consoles and tests.
 */
export class VerifyError extends Error {
  constructor(key, values = {}) {
    super(`${key} ${JSON.stringify(values)}`);
    this.key = key;
    this.values = values;
  }
}

/** A message of the catalogue, to be translated where it is shown. */
export const msg = (key, values = {}) => ({ key, values });

export class ProofError extends VerifyError {}

function checkPath(path) {
  path.forEach((p, i) => {
    if (p.length !== 32) throw new ProofError("p_element", { i, got: p.length });
  });
}

/** The root an RFC 9162 §2.1.3.2 inclusion path leads to (ledger/core/verify.py root_from_inclusion_proof). */
export async function rootFromInclusion(index, size, leaf, path) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (!(fn >= 0n && fn <= sn)) throw new ProofError("p_index", { index: String(index), size: String(size) });
  checkPath(path);
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) throw new ProofError("p_too_long", { count: path.length });
    if (fn & 1n || fn === sn) {
      r = await nodeHash(p, r);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError("p_too_short", { count: path.length });
  return r;
}

export async function verifyInclusion(index, size, leaf, path, root) {
  const calculated = await rootFromInclusion(index, size, leaf, path);
  if (!equal(calculated, root)) {
    throw new ProofError("p_root", { expected: toHex(root), got: toHex(calculated) });
  }
}

/** RFC 9162 §2.1.4.2 (ledger/core/verify.py verify_consistency, degenerate cases included). */
export async function verifyConsistency(size1, size2, root1, root2, path) {
  const s1 = BigInt(size1);
  const s2 = BigInt(size2);
  if (!(s1 >= 0n && s1 <= s2)) throw new ProofError("p_sizes", { size1: String(size1), size2: String(size2) });
  checkPath(path);
  if (s1 === s2) {
    if (path.length) throw new ProofError("p_not_empty", { count: path.length });
    if (!equal(root1, root2)) throw new ProofError("p_equal_roots", { size: String(size1) });
    return;
  }
  if (s1 === 0n) {
    if (path.length) throw new ProofError("p_not_empty", { count: path.length });
    return;
  }
  if (!path.length) throw new ProofError("p_empty", {});
  const steps = (s1 & (s1 - 1n)) === 0n ? [root1, ...path] : [...path];
  let fn = s1 - 1n;
  let sn = s2 - 1n;
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = steps[0];
  let sr = steps[0];
  for (const c of steps.slice(1)) {
    if (sn === 0n) throw new ProofError("p_too_long", { count: path.length });
    if (fn & 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError("p_too_short", { count: path.length });
  if (!equal(fr, root1)) throw new ProofError("p_old_root", { expected: toHex(root1), got: toHex(fr) });
  if (!equal(sr, root2)) throw new ProofError("p_new_root", { expected: toHex(root2), got: toHex(sr) });
}

// --- EIP-712 (ledger/core/signing.py: the typed data officers sign) ------------------------

const keccak = (bytes) => keccak_256(bytes);
const keccakText = (text) => keccak(utf8.encode(text));
const DOMAIN_TYPEHASH = keccakText("EIP712Domain(string name,string version,uint256 chainId)");
const SUBMISSION_TYPEHASH = keccakText(
  "Submission(string ocid,string eventType,bytes32 payloadSha256,string submissionId,address officer,uint64 signedAt)",
);
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

function word(value) {
  return fromHex(BigInt(value).toString(16).padStart(64, "0"));
}

/** The EIP-712 digest of a submission (keccak256(0x1901 || domainSeparator || hashStruct)). */
export function submissionDigest(s) {
  const domain = keccak(
    concat(DOMAIN_TYPEHASH, keccakText(s.domain.name), keccakText(s.domain.version), word(s.domain.chainId)),
  );
  const struct = keccak(
    concat(
      SUBMISSION_TYPEHASH,
      keccakText(s.ocid),
      keccakText(s.eventType),
      fromHex(s.payloadSha256),
      keccakText(s.submissionId),
      word(BigInt(s.officer)),
      word(s.signedAt),
    ),
  );
  return keccak(concat(Uint8Array.of(0x19, 0x01), domain, struct));
}

/** The address that signed ``digest`` with the 65-byte r || s || v ``signature`` (0x hex). */
export function recoverAddress(digest, signature) {
  if (!/^0x[0-9a-f]{130}$/.test(signature)) throw new VerifyError("s_format", {});
  const raw = fromHex(signature);
  const v = raw[64];
  if (v !== 27 && v !== 28) throw new VerifyError("s_v", { got: v });
  const s = BigInt("0x" + toHex(raw.slice(32, 64)));
  if (s > SECP256K1_N / 2n) throw new VerifyError("s_low", {});
  const sig = secp256k1.Signature.fromBytes(raw.slice(0, 64), "compact").addRecoveryBit(v - 27);
  const point = sig.recoverPublicKey(digest);
  const uncompressed = point.toBytes(false);
  return "0x" + toHex(keccak(uncompressed.slice(1)).slice(12));
}

/** Checks a signed envelope like ledger/core/signing.verify_submission; returns the signer. */
export function verifySubmission(envelope) {
  const s = envelope.submission;
  if (!s || typeof s !== "object") throw new VerifyError("s_missing", {});
  const own = [
    ["submission.domain.name", s.domain && s.domain.name, envelope.origin],
    ["submission.domain.version", s.domain && s.domain.version, "1"],
    ["submission.ocid", s.ocid, envelope.ocid],
    ["submission.eventType", s.eventType, envelope.type],
    ["submission.payloadSha256", s.payloadSha256, envelope.v === 2 ? envelope.payload_commitment : envelope.payload_sha256],
  ];
  for (const [field, got, expected] of own) {
    if (got !== expected) throw new VerifyError("s_field", { field, expected: JSON.stringify(expected), got: JSON.stringify(got) });
  }
  if (!HEX64.test(s.payloadSha256)) throw new VerifyError("s_field_hex", { field: "submission.payloadSha256" });
  const signer = recoverAddress(submissionDigest(s), envelope.signature);
  if (signer.toLowerCase() !== String(s.officer).toLowerCase()) {
    throw new VerifyError("s_recovers", { signer, officer: String(s.officer) });
  }
  return s.officer;
}

// --- The chain, over JSON-RPC ---------------------------------------------------------------

const selector = (signature) => toHex(keccakText(signature).slice(0, 4));
const ROOT_AT = selector("rootAt(uint64)");
const LATEST = selector("latest()");
const ANCHORED_TOPIC = "0x" + toHex(keccakText("Anchored(uint256,uint64,bytes32,uint64)"));
/** How long one chain call may take by default (seconds) before the chain counts as not asked. */
export const DEFAULT_TIMEOUT = 10;

/** The chain could not be asked (unreachable, timed out, refused, answered nonsense): "not checked". */
export class ChainUnavailable extends VerifyError {}

const uint = (bytes) => BigInt("0x" + (toHex(bytes) || "0"));

export class Rpc {
  constructor(url, { timeout = DEFAULT_TIMEOUT } = {}) {
    this.url = url;
    this.timeout = timeout;
    this.id = 0;
  }

  async call(method, params) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.timeout * 1000);
    const url = this.url;
    try {
      let response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: ++this.id, method, params }),
          signal: abort.signal,
        });
      } catch (err) {
        if (abort.signal.aborted) throw new ChainUnavailable("u_timeout", { url, method, seconds: this.timeout });
        throw new ChainUnavailable("u_unreachable", { url, detail: err.message });
      }
      if (!response.ok) throw new ChainUnavailable("u_http", { url, method, status: response.status });
      let body;
      try {
        body = await response.json();
      } catch (err) {
        if (abort.signal.aborted) throw new ChainUnavailable("u_timeout", { url, method, seconds: this.timeout });
        throw new ChainUnavailable("u_bad_answer", { url, method });
      }
      if (!body || typeof body !== "object") throw new ChainUnavailable("u_bad_answer", { url, method });
      if (body.error) {
        const detail = String((body.error && body.error.message) || JSON.stringify(body.error)).slice(0, 300);
        throw new ChainUnavailable("u_refused", { url, method, detail });
      }
      return body.result;
    } finally {
      clearTimeout(timer);
    }
  }

  async quantity(method, params) {
    const result = await this.call(method, params);
    if (typeof result !== "string" || !/^0x[0-9a-fA-F]{1,64}$/.test(result)) {
      throw new ChainUnavailable("u_bad_answer", { url: this.url, method });
    }
    return BigInt(result);
  }

  async chainId() {
    return await this.quantity("eth_chainId", []);
  }

  async ethCall(contract, data, words, block = "latest") {
    const result = await this.call("eth_call", [{ to: contract, data: "0x" + data }, block]);
    let out;
    try {
      out = fromHex(result);
    } catch {
      throw new ChainUnavailable("u_bad_answer", { url: this.url, method: "eth_call" });
    }
    // Fewer bytes than the function returns: no anchor contract at that address (a contradiction).
    if (out.length < 32 * words) throw new VerifyError("r_no_contract", { contract, got: out.length });
    return Array.from({ length: words }, (_, i) => out.slice(32 * i, 32 * i + 32));
  }

  /**
   * The contract's ``rootAt(treeSize)``: [root (32 bytes)]. Only the first word is read: version 1
   * answers (root, timestamp), version 2 the root alone; an anchor's time is always its block's.
   */
  async rootAt(contract, treeSize) {
    const [root] = await this.ethCall(contract, ROOT_AT + toHex(word(treeSize)), 1);
    return [root];
  }

  /**
   * The tree size of the contract's latest final anchor: ``latest()`` (0 when nothing is anchored)
   * as of the block ``confirmations - 1`` below the chain's head, so that an anchor still within
   * its confirmations (which the server's bundle does not cite yet) is not counted.
   */
  async latestSize(contract, confirmations = 1) {
    let block = "latest";
    if (confirmations > 1) {
      const head = await this.quantity("eth_blockNumber", []);
      const final = head - BigInt(confirmations - 1);
      block = "0x" + (final > 0n ? final : 0n).toString(16);
    }
    const [, size] = await this.ethCall(contract, LATEST, 4, block);
    return uint(size);
  }

  receipt(txHash) {
    return this.call("eth_getTransactionReceipt", [txHash]);
  }

  block(number) {
    return this.call("eth_getBlockByNumber", ["0x" + number.toString(16), false]);
  }
}

// --- The bundle -----------------------------------------------------------------------------

export const BUNDLE_FORMATS = ["tenderproof-bundle/1", "tenderproof-bundle/2"];

function eventReport(event, position) {
  const env = (event && typeof event === "object" && event.envelope) || {};
  return {
    seq: isSize(env.seq) ? env.seq : position,
    position,
    type: typeof env.type === "string" ? env.type : "?",
    index: event && isSize(event.index) ? event.index : null,
    // verified | invalid | unchecked | pending
    status: null,
    tree_size: null,
    block_number: null,
    block_timestamp: null,
    signer: null,
    officer: null,
    withheld: null,
    withheld_fields: {},
    problems: [],
  };
}

/**
 * An entry's envelope leaf hash, recomputed (what the later checks use, never the bundle's word),
 * and whether it is the bundle's ``leaf_hash`` (docs/spec.md §10 step 4; verifier/check.py
 * _check_leaf): {leaf, held}, with a failure at ``where`` (and in ``report``) when not. For an
 * event, the event before a range, an officers' or orders' entry and the heads commitment.
 */
export async function checkLeaf(fail, where, entry, report) {
  const leaf = await leafHash(canonicalBytes(entry.envelope));
  const held = toHex(leaf) === entry.leaf_hash;
  if (!held) fail(where, msg("r_leaf", { got: toHex(leaf), expected: String(entry.leaf_hash) }), report);
  return { leaf, held };
}

/**
 * Whether an entry's inclusion proof (an event, the event before a range, an officers' or orders'
 * entry) leads from ``leaf`` to the root of the anchor the bundle cites for its tree size
 * (docs/spec.md §10 step 7): the one place this is checked (verifier/check.py _check_included), so
 * that every entry the verifier relies on is held to the same proof. When it does not hold,
 * records at ``where`` (and in ``report``) why: no anchor has that tree size (message
 * ``noAnchor``), the entry has no log index, or the path does not lead to the root; returns
 * false. ``anchors`` maps tree size to anchor. Rethrows what is not a VerifyError (input of a
 * shape no check expected).
 */
export async function checkIncluded(fail, where, entry, leaf, anchors, { report, noAnchor = "r_no_anchor_for_proof" } = {}) {
  const size = entry.inclusion.tree_size;
  const anchor = anchors.get(size);
  if (!anchor) {
    fail(where, msg(noAnchor, { size: JSON.stringify(size ?? null).slice(0, 40) }), report);
    return false;
  }
  if (!isSize(entry.index)) {
    fail(where, msg("r_index", { got: JSON.stringify(entry.index ?? null).slice(0, 40) }), report);
    return false;
  }
  try {
    if (!Array.isArray(entry.inclusion.path)) throw new ProofError("p_path", {});
    await verifyInclusion(entry.index, size, leaf, entry.inclusion.path.map(fromHex), fromHex(anchor.root_hash));
    return true;
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    fail(where, msg("r_inclusion", { size, reason: msg(err.key, err.values) }), report);
    return false;
  }
}

/**
 * Verifies a tenderproof-bundle document (the parsed JSON) like `tenderproof verify`: payload and
 * leaf hashes, the seq/prev chain, signatures, inclusion paths, consistency links, that no event
 * below an anchored tree size escapes its proof and, with ``rpc``, the chain id, the contract's
 * latest anchored size and every anchor's root (rootAt), transaction and block. Never throws for a
 * bad bundle.
 *
 * The result's ``status`` and each event's are one of four outcomes: "verified" (checked against
 * the chain; block and time as the chain says), "invalid" (a proof or the chain contradicts the
 * bundle: ``failures``), "unchecked" (the chain could not be asked: ``unavailable``), "pending"
 * (nothing anchored yet). An empty bundle is invalid; one with nothing anchored is at best pending.
 * Failures and reasons are messages ({key, values}) of the explorer's catalogue.
 */
export async function verifyBundle(bundle, { rpc = null, checkpointKey = null, confirmations = 1 } = {}) {
  const failures = [];
  const unavailable = [];
  const events = [];
  const anchorState = new Map(); // tree size -> {status, block_number, block_timestamp}
  const fail = (where, reason, report) => {
    failures.push({ where, reason });
    if (report) report.problems.push(reason);
  };
  fail.count = () => failures.length;
  let completeness = null;
  let checkpoint = null;
  const result = (status) => ({
    status,
    valid: status === "verified",
    origin: bundle && bundle.origin,
    ocid: bundle && bundle.ocid,
    chain: bundle && bundle.chain,
    chainChecked: rpc !== null && unavailable.length === 0,
    latestSize: null,
    events,
    failures,
    unavailable,
    anchors: anchorState,
    // bundle/2 only: {status: complete | not_proven | invalid, treeSize, time (the chain's)} and
    // {status: verified | unchecked | invalid | absent, name, reason}
    completeness,
    checkpoint,
    // A range bundle's part of the history ({from_seq, to_seq, of}), or null: never complete.
    range: rangeOf(bundle),
  });
  if (!bundle || typeof bundle !== "object" || !BUNDLE_FORMATS.includes(bundle.format)) {
    fail(msg("w_format"), msg("r_format", { format: JSON.stringify(bundle && typeof bundle === "object" ? bundle.format ?? null : null).slice(0, 80) }));
    return result("invalid");
  }
  if (!Array.isArray(bundle.events) || !Array.isArray(bundle.anchors) || !bundle.chain || typeof bundle.chain !== "object") {
    fail(msg("w_bundle"), msg("r_required"));
    return result("invalid");
  }
  const v2 = bundle.format === "tenderproof-bundle/2";
  if (v2 && (!Array.isArray(bundle.officers) || !("completeness" in bundle) || !("checkpoint" in bundle))) {
    fail(msg("w_bundle"), msg("r_required_v2"));
    return result("invalid");
  }
  if (v2 && "range" in bundle && !rangeOf(bundle)) {
    fail(msg("w_range"), msg("r_range_shape"));
    return result("invalid");
  }
  let latest = null;
  try {
    latest = await checkAll(bundle, rpc, { fail, unavailable, events, anchorState, confirmations });
    if (v2) {
      const anchors = new Map(bundle.anchors.filter((a) => a && isSize(a.tree_size) && HEX64.test(a.root_hash)).map((a) => [a.tree_size, a]));
      const cited = Math.max(0, ...anchors.keys());
      completeness = await checkCompleteness(bundle, anchors, events, fail);
      const state = anchorState.get(completeness.treeSize);
      completeness.time = state && state.status === "verified" ? state.block_timestamp : null;
      await checkOfficers(bundle, anchors, events, fail, cited);
      await checkOrders(bundle, anchors, events, fail);
      checkpoint = await checkCheckpoint(bundle, anchors.get(cited), checkpointKey, fail);
    }
  } catch (err) {
    // Input of the wrong shape where the checks expected another: refused, named, never thrown.
    const detail = err instanceof VerifyError ? msg(err.key, err.values) : String(err && err.message).slice(0, 200);
    fail(msg("w_bundle"), msg("r_malformed", { detail }));
  }
  // Each event's outcome.
  const cited = Math.max(0, ...bundle.anchors.map((a) => (a && isSize(a.tree_size) ? a.tree_size : 0)));
  for (const r of events) {
    if (r.problems.length) r.status = "invalid";
    else if (r.tree_size === null) r.status = "pending";
    else {
      const a = anchorState.get(r.tree_size) || { status: rpc ? "unchecked" : "unchecked" };
      r.status = a.status;
      if (a.status === "verified") {
        r.block_number = a.block_number;
        r.block_timestamp = a.block_timestamp;
      }
    }
  }
  if (bundle.events.length === 0) fail(msg("w_bundle"), msg("r_no_events"));
  let status;
  if (failures.length) status = "invalid";
  else if (rpc === null || unavailable.length) status = "unchecked";
  else if (!events.some((r) => r.status === "verified") || cited === 0) status = "pending";
  else status = "verified";
  const out = result(status);
  out.latestSize = latest === null ? null : Number(latest);
  return out;
}

/**
 * A tenderproof-bundle/2's ``range`` (docs/spec.md §15.3) if it is well formed: from_seq <= to_seq
 * < of, as many events as the range says, ``before`` (its payload null) exactly when from_seq > 0;
 * null for a whole-history bundle or a malformed range (which verifyBundle refuses).
 */
export function rangeOf(bundle) {
  const r = bundle && typeof bundle === "object" && bundle.format === "tenderproof-bundle/2" ? bundle.range : undefined;
  if (!r || typeof r !== "object") return null;
  const { from_seq: first, to_seq: last, of } = r;
  if (!isSize(first) || !isSize(last) || !isSize(of) || first > last || last >= of) return null;
  if (!Array.isArray(bundle.events) || bundle.events.length !== last - first + 1) return null;
  const before = r.before;
  if ((first === 0) !== (before === null)) return null;
  if (before !== null && (typeof before !== "object" || before.payload !== null || !before.envelope)) return null;
  return { from_seq: first, to_seq: last, of };
}

/** The event before a range (its envelope is this tender's seq from_seq - 1, hashing to its leaf,
 * included where it says); returns its leaf hash and log index for the first event's checks. */
async function checkBefore(bundle, before, anchors, cited, fail) {
  const where = msg("w_range_before");
  const env = before.envelope;
  const wanted = bundle.range.from_seq - 1;
  if (env.origin !== bundle.origin || env.ocid !== bundle.ocid || env.seq !== wanted) {
    fail(where, msg("r_range_before", { seq: JSON.stringify(env.seq ?? null), expected: wanted }));
  }
  const { leaf } = await checkLeaf(fail, where, before);
  const index = isSize(before.index) ? before.index : null;
  if (!before.inclusion) {
    if (index !== null && index < cited) fail(where, msg("r_escaped", { index, size: cited }));
  } else await checkIncluded(fail, where, before, leaf, anchors);
  return { leaf, index: index === null ? -1 : index };
}

async function checkAll(bundle, rpc, { fail, unavailable, events, anchorState, confirmations }) {
  const anchors = new Map();
  for (const a of bundle.anchors) {
    const size = a && typeof a === "object" ? a.tree_size : null;
    if (!isSize(size) || size === 0) {
      fail(msg("w_anchor", { size: JSON.stringify(size ?? null).slice(0, 40) }), msg("r_anchor_size"));
      continue;
    }
    if (!HEX64.test(a.root_hash)) {
      fail(msg("w_anchor", { size }), msg("r_root_hex"));
      continue;
    }
    anchors.set(size, a);
  }
  const cited = Math.max(0, ...anchors.keys());
  let previousLeaf = null;
  let previousIndex = -1;
  const range = rangeOf(bundle);
  const first = range ? range.from_seq : 0;
  if (range && bundle.range.before !== null) {
    ({ leaf: previousLeaf, index: previousIndex } = await checkBefore(bundle, bundle.range.before, anchors, cited, fail));
  }
  for (const [position, event] of bundle.events.entries()) {
    const report = eventReport(event, position);
    events.push(report);
    const where = msg("w_event", { seq: report.seq, position });
    const env = event && typeof event === "object" ? event.envelope : null;
    if (!env || typeof env !== "object") {
      fail(where, msg("r_env_missing"), report);
      continue;
    }
    if (env.origin !== bundle.origin) fail(where, msg("r_origin", { got: JSON.stringify(env.origin ?? null), expected: JSON.stringify(bundle.origin ?? null) }), report);
    if (env.ocid !== bundle.ocid) fail(where, msg("r_ocid", { got: JSON.stringify(env.ocid ?? null), expected: JSON.stringify(bundle.ocid ?? null) }), report);
    if (env.seq !== first + position) fail(where, range ? msg("r_seq_range", { expected: first + position, first }) : msg("r_seq", { expected: position }), report);
    const expectedPrev = previousLeaf === null ? null : toHex(previousLeaf);
    if ((position > 0 || first > 0) && env.prev !== expectedPrev) {
      const values = { got: String(env.prev), expected: String(expectedPrev) };
      fail(where, position > 0 ? msg("r_prev", values) : msg("r_prev_range", values), report);
    }
    const shape = withheldProblem(event);
    if (shape) fail(where, shape, report);
    else if (event.payload === null || event.payload === undefined) {
      report.withheld = withheldReport(event.withheld);
      // Only a bundle/2 carries orders (and their proofs): a bundle/1 cannot name one.
      if (bundle.format !== "tenderproof-bundle/2" && report.withheld && typeof report.withheld === "object") {
        fail(where, msg("r_order_in_v1"), report);
      } else if (bundle.format === "tenderproof-bundle/2" && env.v === 2 && typeof event.withheld === "string") {
        // docs/spec.md §9.1: a version 2 entry's payload is left out only under an order of the log
        fail(where, msg("r_withheld_no_order", { reason: event.withheld }), report);
      }
    } else {
      const problem = await payloadProblem(env, event.payload, event.disclosure);
      if (problem) fail(where, problem, report);
      else if (env.v === 2) report.withheld_fields = withheldFields(event.disclosure);
    }
    const { leaf } = await checkLeaf(fail, where, event, report);
    previousLeaf = leaf;
    if (env.signature !== undefined && env.signature !== null) {
      try {
        report.signer = verifySubmission(env);
      } catch (err) {
        const reason = err instanceof VerifyError ? msg(err.key, err.values) : msg("s_malformed", { detail: String(err.message).slice(0, 200) });
        fail(where, msg("r_signature", { reason }), report);
      }
    }
    if (event.index !== null && event.index !== undefined) {
      if (!isSize(event.index)) {
        fail(where, msg("r_index", { got: JSON.stringify(event.index).slice(0, 40) }), report);
        continue;
      }
      if (event.index <= previousIndex) fail(where, msg("r_index_order", { index: event.index, previous: previousIndex }), report);
      previousIndex = event.index;
    }
    if (!event.inclusion) {
      // No event escapes its proof: below a tree size the bundle cites as anchored, it must have one.
      if (report.index !== null && report.index < cited) fail(where, msg("r_escaped", { index: report.index, size: cited }), report);
      continue;
    }
    const size = event.inclusion.tree_size;
    report.tree_size = isSize(size) ? size : null;
    await checkIncluded(fail, where, event, leaf, anchors, { report });
  }
  const anchorFail = (size) => (reason) => {
    fail(msg("w_anchor", { size }), reason);
    const state = anchorState.get(size) || {};
    anchorState.set(size, { ...state, status: "invalid" });
    for (const r of events) if (r.tree_size === size && !r.problems.includes(reason)) r.problems.push(reason);
  };
  await checkAnchors(bundle, anchors, fail, anchorFail);
  if (rpc === null) {
    for (const size of anchors.keys()) if (!anchorState.has(size)) anchorState.set(size, { status: "unchecked" });
    return null;
  }
  return await checkChain(bundle, anchors, rpc, { fail, unavailable, events, anchorState, anchorFail, confirmations });
}

async function checkAnchors(bundle, anchors, fail, anchorFail) {
  const ordered = bundle.anchors.filter((a) => a && anchors.get(a.tree_size) === a);
  for (let i = 1; i < ordered.length; i++) {
    if (ordered[i].tree_size <= ordered[i - 1].tree_size) anchorFail(ordered[i].tree_size)(msg("r_anchor_order"));
  }
  const links = new Map();
  const consistency = Array.isArray(bundle.consistency) ? bundle.consistency : [];
  for (const link of consistency) {
    const key = `${link && link.from_size}->${link && link.to_size}`;
    if (links.has(key)) fail(msg("w_consistency_all"), msg("r_link_twice"));
    links.set(key, link);
  }
  const wanted = new Set();
  for (let i = 1; i < ordered.length; i++) wanted.add(`${ordered[i - 1].tree_size}->${ordered[i].tree_size}`);
  for (const [key, link] of links) {
    if (!wanted.has(key)) fail(msg("w_consistency", { from: String(link && link.from_size), to: String(link && link.to_size) }), msg("r_link_unused"));
  }
  for (let i = 1; i < ordered.length; i++) {
    const [a, b] = [ordered[i - 1], ordered[i]];
    const where = msg("w_consistency", { from: a.tree_size, to: b.tree_size });
    const link = links.get(`${a.tree_size}->${b.tree_size}`);
    let reason = null;
    if (!link) reason = msg("r_link_missing");
    else {
      try {
        if (!Array.isArray(link.path)) throw new ProofError("p_path", {});
        await verifyConsistency(a.tree_size, b.tree_size, fromHex(a.root_hash), fromHex(b.root_hash), link.path.map(fromHex));
      } catch (err) {
        if (!(err instanceof VerifyError)) throw err;
        reason = msg(err.key, err.values);
      }
    }
    if (reason) {
      fail(where, reason);
      // The later anchor is not shown to extend the earlier one: what rests on it is not verified.
      anchorFail(b.tree_size)(msg("r_not_one_history", { from: a.tree_size, to: b.tree_size }));
    }
  }
}

async function checkChain(bundle, anchors, rpc, { fail, unavailable, events, anchorState, anchorFail, confirmations }) {
  const notAsked = (err) => {
    unavailable.push({ where: msg("w_chain"), reason: msg(err.key, err.values) });
    for (const size of anchors.keys()) if (!anchorState.has(size)) anchorState.set(size, { status: "unchecked" });
    return null;
  };
  const contract = String(bundle.chain.contract);
  let latest;
  try {
    const chainId = await rpc.chainId();
    if (chainId !== BigInt(isSize(bundle.chain.chain_id) ? bundle.chain.chain_id : -1)) {
      fail(msg("w_chain"), msg("r_chain_id", { got: String(chainId), expected: JSON.stringify(bundle.chain.chain_id ?? null) }));
      for (const size of anchors.keys()) anchorState.set(size, { status: "invalid" });
      return null;
    }
    latest = await rpc.latestSize(contract, Number.isSafeInteger(confirmations) && confirmations > 0 ? confirmations : 1);
  } catch (err) {
    if (err instanceof ChainUnavailable) return notAsked(err);
    if (err instanceof VerifyError) {
      fail(msg("w_chain"), msg(err.key, err.values));
      for (const size of anchors.keys()) anchorState.set(size, { status: "invalid" });
      return null;
    }
    throw err;
  }
  // No event escapes its proof, even when the bundle drops its anchors: below the contract's latest
  // anchored size, an event must carry an inclusion proof.
  for (const r of events) {
    if (r.tree_size === null && r.index !== null && BigInt(r.index) < latest && !r.problems.length) {
      const reason = msg("r_escaped_chain", { index: r.index, size: String(latest) });
      fail(msg("w_event", { seq: r.seq, position: r.position }), reason, r);
    }
  }
  await Promise.all(
    Array.from(anchors.values(), async (anchor) => {
      const size = anchor.tree_size;
      const bad = anchorFail(size);
      const before = anchorState.get(size);
      try {
        const [held] = await rpc.rootAt(contract, size);
        if (held.every((b) => b === 0)) return bad(msg("r_no_checkpoint", { contract }));
        if (toHex(held) !== anchor.root_hash) return bad(msg("r_root_differs", { got: toHex(held), expected: anchor.root_hash }));
        const receipt = await rpc.receipt(String(anchor.tx_hash));
        if (!receipt || typeof receipt !== "object") return bad(msg("r_tx_missing", { tx: String(anchor.tx_hash) }));
        if (Number(BigInt(receipt.status)) !== 1) return bad(msg("r_tx_reverted", { tx: String(anchor.tx_hash) }));
        const anchored = (Array.isArray(receipt.logs) ? receipt.logs : []).some((entry) => {
          if (String(entry.address).toLowerCase() !== contract.toLowerCase() || !Array.isArray(entry.topics) || entry.topics[0] !== ANCHORED_TOPIC) return false;
          const data = fromHex(entry.data);
          return uint(data.slice(0, 32)) === BigInt(size) && toHex(data.slice(32, 64)) === anchor.root_hash;
        });
        if (!anchored) return bad(msg("r_tx_not_anchor", { tx: String(anchor.tx_hash) }));
        const blockNumber = Number(BigInt(receipt.blockNumber));
        const block = await rpc.block(blockNumber);
        if (!block || typeof block !== "object") return bad(msg("r_block_missing", { block: blockNumber }));
        const time = Number(BigInt(block.timestamp));
        // What the badge shows comes from the chain; the bundle's own figures must agree with it.
        if (blockNumber !== anchor.block_number) return bad(msg("r_block", { got: blockNumber, expected: JSON.stringify(anchor.block_number ?? null) }));
        if (time !== anchor.block_timestamp) return bad(msg("r_time", { got: time, expected: JSON.stringify(anchor.block_timestamp ?? null) }));
        if (!before || before.status !== "invalid") anchorState.set(size, { status: "verified", block_number: blockNumber, block_timestamp: time });
      } catch (err) {
        if (err instanceof ChainUnavailable) {
          unavailable.push({ where: msg("w_anchor", { size }), reason: msg(err.key, err.values) });
          if (!anchorState.has(size)) anchorState.set(size, { status: "unchecked" });
          return;
        }
        // The endpoint answered, with something that is not what an anchored checkpoint has.
        const reason = err instanceof VerifyError ? msg(err.key, err.values) : msg("r_chain_answer", { detail: String(err && err.message).slice(0, 200) });
        bad(reason);
      }
    }),
  );
  return latest;
}
