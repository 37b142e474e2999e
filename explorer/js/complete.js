// Bundle version 2 in the browser (docs/spec.md §14-§15, ledger/core/heads.py): the heads
// commitment's sparse Merkle proof that the bundle holds the tender's whole history, the officers'
// registry events behind every signature, and the log's signed checkpoint (a C2SP signed note,
// Ed25519 by WebCrypto). Failures are messages of the explorer's catalogue, like verify.js's.
import { HEX64, concat, equal, isSize, sha256, toHex, utf8 } from "./shared.js";
import { ProofError, VerifyError, canonicalBytes, checkIncluded, checkLeaf, fromHex, leafHash, msg, payloadProblem, rangeOf, verifyInclusion } from "./verify.js";

export const HEADS_OCID = "ocds-tplog0-heads";
export const HEADS_TYPE = "log.heads";
export const REGISTRY_OCID = "ocds-tpreg0-officers";
const KEY_BITS = 256;
const EMPTY = new Uint8Array(32);

const bit = (key, i) => (key[i >> 3] >> (7 - (i & 7))) & 1;
function samePrefix(a, b, bits) {
  for (let i = 0; i < bits; i++) if (bit(a, i) !== bit(b, i)) return false;
  return true;
}

/** SHA-256 of an ocid's UTF-8 bytes: its key in the heads map. */
export const headsKey = (ocid) => sha256(utf8.encode(ocid));

/** leaf(key, size, head) = SHA-256(0x00 || key || uint64 big-endian size || head). */
export async function headsLeaf(key, size, head) {
  const n = new Uint8Array(8);
  new DataView(n.buffer).setBigUint64(0, BigInt(size));
  return sha256(concat(Uint8Array.of(0), key, n, head));
}

const headsNode = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/**
 * Checks that the map with root ``root`` holds (size, head) for ``key`` (size 0, head null: that
 * it holds nothing for it), ``siblings`` bottom-up, ``other`` a non-membership proof's other leaf
 * ({key, size, leaf_hash} as bytes and number). Throws ProofError.
 */
export async function verifyHeadsProof(root, key, size, head, siblings, other) {
  const d = siblings.length;
  if (d > KEY_BITS) throw new ProofError("h_shape", { count: d });
  siblings.forEach((s, i) => {
    if (s.length !== 32) throw new ProofError("p_element", { i, got: s.length });
  });
  let h;
  if (size === 0) {
    if (head !== null) throw new ProofError("h_head_shape", {});
    if (other === null) h = EMPTY;
    else {
      if (equal(other.key, key) || !samePrefix(other.key, key, d)) throw new ProofError("h_bad_other", { depth: d });
      if (!isSize(other.size) || other.size < 1) throw new ProofError("h_head_shape", {});
      h = await headsLeaf(other.key, other.size, other.leaf_hash);
    }
  } else {
    if (head === null || other !== null) throw new ProofError("h_head_shape", {});
    if (d > 0 && equal(siblings[0], EMPTY)) throw new ProofError("h_not_canonical", {});
    h = await headsLeaf(key, size, head);
  }
  for (let i = 0; i < d; i++) {
    const depth = d - i;
    h = bit(key, depth - 1) ? await headsNode(siblings[i], h) : await headsNode(h, siblings[i]);
  }
  if (!equal(h, root)) throw new ProofError("p_root", { expected: toHex(root), got: toHex(h) });
}

const hash32 = (text, field) => {
  if (typeof text !== "string" || !HEX64.test(text)) throw new VerifyError("r_field_hex", { field });
  return fromHex(text);
};

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Hashes concatenated and base64-encoded (RFC 4648 §4, padded, canonical), at most ``limit``. */
function hashesFromBase64(text, field, limit) {
  const bad = () => new VerifyError("c_encoding", { field });
  if (typeof text !== "string" || text.length % 4 || !B64.test(text) || text.length > 4 * Math.ceil((limit * 32) / 3)) throw bad();
  let raw;
  try {
    raw = Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
  } catch {
    throw bad();
  }
  if (raw.length % 32 || btoa(String.fromCharCode(...raw)) !== text) throw bad();
  const out = [];
  for (let i = 0; i < raw.length; i += 32) out.push(raw.slice(i, i + 32));
  return out;
}

/**
 * The compact ``completeness`` (docs/spec.md §15.1, ``"v": 2``) expanded into the full form the
 * checks below read: the commitment entry of index ``n-1``, proven into the anchor of size ``n``.
 */
async function expandCompact(bundle, c, n) {
  const bad = (field) => new VerifyError("c_encoding", { field: `completeness.${field}` });
  const keys = ["commitment", "empty", "head", "other", "path", "siblings", "v"];
  if (c.v !== 2) throw bad("v");
  const unknown = Object.keys(c).filter((k) => !keys.includes(k));
  if (unknown.length) throw bad(unknown[0]);
  const e = c.commitment;
  if (!e || typeof e !== "object" || Array.isArray(e)) throw bad("commitment");
  if (!Number.isSafeInteger(e.seq) || e.seq < 0) throw bad("commitment.seq");
  if (!(e.prev === null && e.seq === 0) && !(typeof e.prev === "string" && HEX64.test(e.prev))) throw bad("commitment.prev");
  if (typeof e.recorded_at !== "string") throw bad("commitment.recorded_at");
  if (typeof e.heads_root !== "string" || !HEX64.test(e.heads_root)) throw bad("commitment.heads_root");
  if (!isSize(e.tenders)) throw bad("commitment.tenders");
  if (n < 1) throw bad("commitment");
  const payload = { heads_root: e.heads_root, tenders: e.tenders, tree_size: n - 1 };
  const envelope = {
    v: 1,
    origin: bundle.origin,
    ocid: HEADS_OCID,
    seq: e.seq,
    prev: e.prev,
    type: HEADS_TYPE,
    recorded_at: e.recorded_at,
    payload_sha256: toHex(await sha256(canonicalBytes(payload))),
  };
  const path = hashesFromBase64(c.path, "completeness.path", 63);
  const present = hashesFromBase64(c.siblings, "completeness.siblings", 256);
  if (present.some((s) => equal(s, EMPTY))) throw bad("siblings");
  if (!Array.isArray(c.empty)) throw bad("empty");
  const depth = present.length + c.empty.length;
  if (depth > KEY_BITS) throw bad("empty");
  c.empty.forEach((i, j) => {
    if (!isSize(i) || i >= depth || (j > 0 && i <= c.empty[j - 1])) throw bad(`empty[${j}]`);
  });
  let next = 0;
  const siblings = [];
  for (let i = 0; i < depth; i++) siblings.push(toHex(c.empty.includes(i) ? EMPTY : present[next++]));
  return {
    commitment: {
      index: n - 1,
      envelope,
      payload,
      leaf_hash: toHex(await leafHash(canonicalBytes(envelope))),
      inclusion: { tree_size: n, path: path.map(toHex) },
    },
    head: c.head,
    siblings,
    other: c.other,
  };
}

/**
 * Rules 1-3 of docs/spec.md §15 for ``bundle`` (a tenderproof-bundle/2): returns
 * {status: "complete" | "not_proven" | "invalid", treeSize}. ``anchors`` maps tree size to anchor,
 * ``fail(where, reason, report)`` records a failure, ``events`` are verify.js's event reports.
 */
export async function checkCompleteness(bundle, anchors, events, fail) {
  const where = msg("w_completeness");
  const newest = Math.max(0, ...anchors.keys());
  let c = bundle.completeness;
  const range = rangeOf(bundle);
  if (c === null || c === undefined) return { status: "not_proven", treeSize: newest || null };
  if (typeof c === "object" && !Array.isArray(c) && "v" in c) {
    try {
      c = await expandCompact(bundle, c, newest);
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      fail(where, msg(err.key, err.values));
      return { status: "invalid", treeSize: newest };
    }
  }
  if (typeof c !== "object" || !c.commitment || typeof c.commitment !== "object" || !c.head || typeof c.head !== "object") {
    fail(where, msg("r_required_completeness"));
    return { status: "invalid", treeSize: newest };
  }
  const before = failureCount(fail);
  const n = newest;
  const commitment = c.commitment;
  const env = commitment.envelope;
  const at = msg("w_commitment");
  if (!env || typeof env !== "object") {
    fail(at, msg("r_env_missing"));
    return { status: "invalid", treeSize: n };
  }
  if (env.ocid !== HEADS_OCID || env.type !== HEADS_TYPE) fail(at, msg("c_type", { ocid: JSON.stringify(env.ocid ?? null), type: JSON.stringify(env.type ?? null) }));
  if (env.origin !== bundle.origin) fail(at, msg("r_origin", { got: JSON.stringify(env.origin ?? null), expected: JSON.stringify(bundle.origin ?? null) }));
  if (commitment.index !== n - 1) fail(at, msg("c_index", { got: JSON.stringify(commitment.index ?? null), size: n, expected: n - 1 }));
  const payload = commitment.payload;
  if (!payload || typeof payload !== "object") {
    fail(at, msg("r_required_completeness"));
    return { status: "invalid", treeSize: n };
  }
  if (payload.tree_size !== n - 1) fail(at, msg("c_tree_size", { got: JSON.stringify(payload.tree_size ?? null), expected: n - 1 }));
  const problem = await payloadProblem(env, payload, commitment.disclosure);
  if (problem) fail(at, problem);
  const { leaf } = await checkLeaf(fail, at, commitment);
  const inclusion = commitment.inclusion;
  if (!inclusion || inclusion.tree_size !== n || !Array.isArray(inclusion.path) || !anchors.has(n)) {
    fail(at, msg("c_no_inclusion", { size: n }));
  } else {
    try {
      await verifyInclusion(n - 1, n, leaf, inclusion.path.map(fromHex), fromHex(anchors.get(n).root_hash));
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      fail(at, msg("r_inclusion", { size: n, reason: msg(err.key, err.values) }));
    }
  }
  // The heads proof for the bundle's ocid.
  const head = c.head;
  const size = head.size;
  try {
    if (!isSize(size)) throw new VerifyError("r_field_size", { field: "completeness.head.size" });
    const headHash = head.leaf_hash === null ? null : hash32(head.leaf_hash, "completeness.head.leaf_hash");
    if (!Array.isArray(c.siblings)) throw new VerifyError("p_path", {});
    const siblings = c.siblings.map((s, i) => hash32(s, `completeness.siblings[${i}]`));
    let other = null;
    if (c.other !== null && c.other !== undefined) {
      if (typeof c.other !== "object") throw new VerifyError("r_required_completeness", {});
      other = { key: hash32(c.other.key, "completeness.other.key"), size: c.other.size, leaf_hash: hash32(c.other.leaf_hash, "completeness.other.leaf_hash") };
    }
    const root = hash32(payload.heads_root, "commitment.payload.heads_root");
    await verifyHeadsProof(root, await headsKey(String(bundle.ocid)), size, headHash, siblings, other);
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    fail(msg("w_heads_proof"), msg(err.key, err.values));
    return { status: "invalid", treeSize: n };
  }
  if (range) return checkRangeHead(bundle, range, events, { size, leaf: head.leaf_hash, n }, fail, before);
  // The whole history: the events below the commitment are exactly seq 0 .. size-1.
  const committed = events.filter((r) => r.index !== null && r.index < n - 1);
  for (const r of events) {
    if (r.index === n - 1) fail(msg("w_event", { seq: r.seq, position: r.position }), msg("c_at_commitment", { index: r.index }), r);
  }
  if (committed.length < size) {
    const last = committed.length ? committed[committed.length - 1].seq : -1;
    fail(where, msg("c_short", { last, count: committed.length, size, n }));
  } else if (committed.length > size) {
    fail(where, msg("c_long", { count: committed.length, size, n }));
  } else if (size > 0) {
    const last = committed[committed.length - 1];
    const event = bundle.events[last.position];
    if (!event || event.leaf_hash !== head.leaf_hash) fail(where, msg("c_head", { seq: last.seq, size }));
  }
  return { status: failureCount(fail) === before ? "complete" : "invalid", treeSize: n };
}

const failureCount = (fail) => fail.count();

/**
 * Rule 3 for a range bundle (docs/spec.md §15.3): within the range, the events below the
 * commitment are exactly those whose seq is below the committed head's size, and the committed
 * head, when in the range (or the event before it), is that event. Never "complete": status
 * "range" (the committed count and tree size said beside the range) or "invalid".
 */
function checkRangeHead(bundle, range, events, { size, leaf, n }, fail, before) {
  if (size > range.of) {
    fail(msg("w_range"), msg("c_range_of", { size, n, of: range.of }));
    return { status: "invalid", treeSize: n };
  }
  for (const r of events) {
    const committed = r.seq < size;
    const below = r.index !== null && r.index < n - 1;
    if (committed !== below) {
      const reason = committed ? msg("c_range_not_among", { size, n }) : msg("c_range_below", { size, n });
      fail(msg("w_event", { seq: r.seq, position: r.position }), reason, r);
      return { status: "invalid", treeSize: n };
    }
  }
  const headSeq = size - 1;
  let holder = null;
  if (headSeq === range.from_seq - 1) holder = bundle.range.before;
  else if (headSeq >= range.from_seq && headSeq <= range.to_seq) holder = bundle.events[headSeq - range.from_seq];
  if (holder && holder.leaf_hash !== leaf) {
    fail(msg("w_completeness"), msg("c_head", { seq: headSeq, size }));
    return { status: "invalid", treeSize: n };
  }
  return { status: failureCount(fail) === before ? "range" : "invalid", treeSize: n, committed: size };
}

/**
 * Rule 5: every signer was a registered officer, not revoked, at the signed event's log index;
 * names the officer (report.officer). ``cited`` is the largest tree size the bundle cites.
 */
export async function checkOfficers(bundle, anchors, events, fail, cited) {
  const officers = Array.isArray(bundle.officers) ? bundle.officers : [];
  const registry = new Map(); // address (lower case) -> [{index, type, name}]
  for (const [i, event] of officers.entries()) {
    const where = msg("w_officer_event", { position: i });
    const env = event && typeof event === "object" ? event.envelope : null;
    if (!env || typeof env !== "object") {
      fail(where, msg("r_env_missing"));
      continue;
    }
    const before = fail.count();
    if (env.ocid !== REGISTRY_OCID || (env.type !== "officer.registered" && env.type !== "officer.revoked")) {
      fail(where, msg("o_not_registry", { ocid: JSON.stringify(env.ocid ?? null), type: JSON.stringify(env.type ?? null) }));
      continue;
    }
    if (env.origin !== bundle.origin) fail(where, msg("r_origin", { got: JSON.stringify(env.origin ?? null), expected: JSON.stringify(bundle.origin ?? null) }));
    const payload = event.payload;
    if (!payload || typeof payload !== "object" || typeof payload.address !== "string") {
      fail(where, msg("r_required_officer"));
      continue;
    }
    const problem = await payloadProblem(env, payload, event.disclosure);
    if (problem) fail(where, problem);
    const { leaf } = await checkLeaf(fail, where, event);
    if (!isSize(event.index)) {
      fail(where, msg("r_index", { got: JSON.stringify(event.index ?? null).slice(0, 40) }));
      continue;
    }
    if (!event.inclusion) {
      if (event.index < cited) fail(where, msg("r_escaped", { index: event.index, size: cited }));
    } else await checkIncluded(fail, where, event, leaf, anchors);
    if (fail.count() !== before) continue; // a registry event that does not hold vouches for no one
    const address = payload.address.toLowerCase();
    if (!registry.has(address)) registry.set(address, []);
    registry.get(address).push({ index: event.index, type: env.type, name: typeof payload.name === "string" ? payload.name : null });
  }
  for (const r of events) {
    if (!r.signer || r.index === null) continue;
    const address = String(r.signer).toLowerCase();
    const where = msg("w_event", { seq: r.seq, position: r.position });
    const history = (registry.get(address) || []).filter((e) => e.index < r.index).sort((a, b) => a.index - b.index);
    const registered = history.filter((e) => e.type === "officer.registered");
    if (!registered.length) {
      fail(where, msg("o_not_registered", { address: r.signer, index: r.index }), r);
      continue;
    }
    const last = history[history.length - 1];
    const name = registered[registered.length - 1].name;
    if (last.type === "officer.revoked") {
      fail(where, msg("o_revoked", { address: r.signer, name: String(name), revoked: last.index, index: r.index }), r);
      continue;
    }
    r.officer = name;
  }
}

// --- Signed checkpoints: C2SP signed-note over tlog-checkpoint, Ed25519 -----------------------

const b64decode = (text) => {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) throw new VerifyError("k_format", { detail: "base64" });
  return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
};

/** A C2SP verifier key ``name+hash+base64(0x01 || key)``: {name, id (4 bytes), key (32 bytes)}. */
export async function parseVerifierKey(vkey) {
  // name + 8 hex digits + base64 (which may itself hold "+"): split at the first two only.
  const m = /^([^+\s\u2014]+)\+([0-9a-f]{8})\+(\S+)$/.exec(String(vkey).trim());
  if (!m) throw new VerifyError("k_bad_key", { key: String(vkey).slice(0, 120) });
  const parts = m.slice(1);
  const name = parts[0];
  let raw;
  try {
    raw = b64decode(parts[2]);
  } catch {
    throw new VerifyError("k_bad_key", { key: String(vkey).slice(0, 120) });
  }
  if (raw.length !== 33 || raw[0] !== 1) throw new VerifyError("k_bad_key", { key: String(vkey).slice(0, 120) });
  const id = (await sha256(concat(utf8.encode(name), Uint8Array.of(0x0a), raw))).slice(0, 4);
  if (toHex(id) !== parts[1]) throw new VerifyError("k_bad_key", { key: String(vkey).slice(0, 120) });
  return { name, id, key: raw.slice(1) };
}

/** A C2SP signed note: its text (up to and with the newline before the blank line) and signatures. */
export function parseSignedNote(note) {
  if (typeof note !== "string") throw new VerifyError("k_format", { detail: "not text" });
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new VerifyError("k_format", { detail: "no blank line before the signatures" });
  const text = note.slice(0, split + 1);
  const signatures = [];
  for (const line of note.slice(split + 2, -1).split("\n")) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new VerifyError("k_format", { detail: "signature line" });
    const blob = b64decode(m[2]);
    if (blob.length < 5) throw new VerifyError("k_format", { detail: "signature line" });
    signatures.push({ name: m[1], id: blob.slice(0, 4), signature: blob.slice(4) });
  }
  return { text, signatures };
}

/** A tlog-checkpoint body: origin, tree size, base64 root (then optional extension lines). */
export function parseCheckpoint(text) {
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3 || !/^(0|[1-9][0-9]{0,19})$/.test(lines[1])) throw new VerifyError("k_format", { detail: "origin, size and root lines" });
  const root = b64decode(lines[2]);
  if (root.length !== 32) throw new VerifyError("k_format", { detail: "root hash" });
  return { origin: lines[0], size: BigInt(lines[1]), root };
}

/**
 * Whether ``note`` (parsed) carries a valid Ed25519 signature by ``key`` (parsed verifier key):
 * "verified", "missing" (no signature line of that key), "bad", or "unsupported" (no WebCrypto Ed25519).
 */
export async function noteSignedBy(note, key) {
  const signature = note.signatures.find((s) => s.name === key.name && equal(s.id, key.id));
  if (!signature) return "missing";
  try {
    const publicKey = await crypto.subtle.importKey("raw", key.key, { name: "Ed25519" }, false, ["verify"]);
    const valid = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, signature.signature, utf8.encode(note.text));
    return valid ? "verified" : "bad";
  } catch {
    return "unsupported";
  }
}

/**
 * Rule 7 (docs/spec.md §15.2): the signed checkpoint against ``vkey`` (null: not checked) and
 * anchor ``anchor`` (the newest the bundle cites). Returns {status: "verified" | "unchecked" | "invalid" | "absent",
 * name?, reason?}; a contradiction is also recorded with ``fail``.
 */
export async function checkCheckpoint(bundle, anchor, vkey, fail) {
  const where = msg("w_checkpoint");
  if (bundle.checkpoint === null || bundle.checkpoint === undefined) return { status: "absent" };
  let note;
  let body;
  try {
    note = parseSignedNote(bundle.checkpoint);
    body = parseCheckpoint(note.text);
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    fail(where, msg(err.key, err.values));
    return { status: "invalid" };
  }
  if (!anchor || body.size !== BigInt(anchor.tree_size) || toHex(body.root) !== anchor.root_hash) {
    fail(where, msg("k_size_root", { size: String(body.size), root: toHex(body.root), anchor: anchor ? anchor.tree_size : "–" }));
    return { status: "invalid" };
  }
  if (body.origin !== bundle.origin) {
    fail(where, msg("r_origin", { got: JSON.stringify(body.origin), expected: JSON.stringify(bundle.origin ?? null) }));
    return { status: "invalid" };
  }
  if (!vkey) return { status: "unchecked", reason: msg("k_no_key") };
  let key;
  try {
    key = await parseVerifierKey(vkey);
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    return { status: "unchecked", reason: msg(err.key, err.values) };
  }
  const signed = await noteSignedBy(note, key);
  if (signed === "unsupported") return { status: "unchecked", name: key.name, reason: msg("k_unsupported") };
  if (signed !== "verified") {
    fail(where, signed === "missing" ? msg("k_no_sig", { name: key.name }) : msg("k_bad_sig", { name: key.name }));
    return { status: "invalid", name: key.name };
  }
  return { status: "verified", name: key.name, size: Number(body.size) };
}
