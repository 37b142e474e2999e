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

export const BUNDLE_FORMAT = "tenderproof-bundle/1";
const HEX64 = /^[0-9a-f]{64}$/;
const utf8 = new TextEncoder();

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  const clean = text.startsWith("0x") ? text.slice(2) : text;
  if (clean.length % 2 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`not hex: ${text}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** RFC 9162 leaf hash: SHA-256(0x00 || data). */
export const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
/** RFC 9162 node hash: SHA-256(0x01 || left || right). */
export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/** The RFC 8785 (JCS) UTF-8 bytes of a JSON value. */
export const canonicalBytes = (value) => utf8.encode(canonicalize(value));

export class ProofError extends Error {}

function checkPath(path) {
  path.forEach((p, i) => {
    if (p.length !== 32) throw new ProofError(`proof element ${i} has wrong size: expected 32, got ${p.length}`);
  });
}

/** The root an RFC 9162 §2.1.3.2 inclusion path leads to (ledger/core/verify.py root_from_inclusion_proof). */
export async function rootFromInclusion(index, size, leaf, path) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (!(fn >= 0n && fn <= sn)) throw new ProofError(`needs 0 <= index < size, got index ${index}, size ${size}`);
  checkPath(path);
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) throw new ProofError(`inclusion proof is too long for index ${index} in size ${size}: got ${path.length} elements`);
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
  if (sn !== 0n) throw new ProofError(`inclusion proof is too short for index ${index} in size ${size}: got ${path.length} elements`);
  return r;
}

export async function verifyInclusion(index, size, leaf, path, root) {
  const calculated = await rootFromInclusion(index, size, leaf, path);
  if (!equal(calculated, root)) {
    throw new ProofError(`inclusion proof for index ${index} in size ${size}: root mismatch: expected ${toHex(root)}, calculated ${toHex(calculated)}`);
  }
}

/** RFC 9162 §2.1.4.2 (ledger/core/verify.py verify_consistency, degenerate cases included). */
export async function verifyConsistency(size1, size2, root1, root2, path) {
  const s1 = BigInt(size1);
  const s2 = BigInt(size2);
  if (!(s1 >= 0n && s1 <= s2)) throw new ProofError(`needs 0 <= size1 <= size2, got size1 ${size1}, size2 ${size2}`);
  checkPath(path);
  if (s1 === s2) {
    if (path.length) throw new ProofError(`consistency proof between equal sizes must be empty, got ${path.length} elements`);
    if (!equal(root1, root2)) throw new ProofError(`consistency between equal sizes ${size1}: roots differ`);
    return;
  }
  if (s1 === 0n) {
    if (path.length) throw new ProofError(`consistency proof from size 0 must be empty, got ${path.length} elements`);
    return;
  }
  if (!path.length) throw new ProofError(`consistency proof from ${size1} to ${size2} is empty`);
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
    if (sn === 0n) throw new ProofError(`consistency proof from ${size1} to ${size2} is too long: got ${path.length} elements`);
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
  if (sn !== 0n) throw new ProofError(`consistency proof from ${size1} to ${size2} is too short: got ${path.length} elements`);
  if (!equal(fr, root1)) throw new ProofError(`consistency proof from ${size1} to ${size2}: old root mismatch: expected ${toHex(root1)}, calculated ${toHex(fr)}`);
  if (!equal(sr, root2)) throw new ProofError(`consistency proof from ${size1} to ${size2}: new root mismatch: expected ${toHex(root2)}, calculated ${toHex(sr)}`);
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
  if (!/^0x[0-9a-f]{130}$/.test(signature)) throw new Error("signature must be 0x + 130 lowercase hex digits");
  const raw = fromHex(signature);
  const v = raw[64];
  if (v !== 27 && v !== 28) throw new Error(`signature v must be 27 or 28, got ${v}`);
  const s = BigInt("0x" + toHex(raw.slice(32, 64)));
  if (s > SECP256K1_N / 2n) throw new Error("signature s is not low (EIP-2)");
  const sig = secp256k1.Signature.fromBytes(raw.slice(0, 64), "compact").addRecoveryBit(v - 27);
  const point = sig.recoverPublicKey(digest);
  const uncompressed = point.toBytes(false);
  return "0x" + toHex(keccak(uncompressed.slice(1)).slice(12));
}

/** Checks a signed envelope like ledger/core/signing.verify_submission; returns the signer. */
export function verifySubmission(envelope) {
  const s = envelope.submission;
  if (!s || typeof s !== "object") throw new Error("submission: missing");
  const own = [
    ["submission.domain.name", s.domain && s.domain.name, envelope.origin],
    ["submission.domain.version", s.domain && s.domain.version, "1"],
    ["submission.ocid", s.ocid, envelope.ocid],
    ["submission.eventType", s.eventType, envelope.type],
    ["submission.payloadSha256", s.payloadSha256, envelope.payload_sha256],
  ];
  for (const [field, got, expected] of own) {
    if (got !== expected) throw new Error(`${field}: not the envelope's own: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
  }
  if (!HEX64.test(s.payloadSha256)) throw new Error("submission.payloadSha256: must be 64 lowercase hex digits");
  const signer = recoverAddress(submissionDigest(s), envelope.signature);
  if (signer.toLowerCase() !== String(s.officer).toLowerCase()) {
    throw new Error(`recovers ${signer}, not the officer ${s.officer}`);
  }
  return s.officer;
}

// --- The chain, over JSON-RPC ---------------------------------------------------------------

const ROOT_AT = toHex(keccakText("rootAt(uint64)").slice(0, 4));
const ANCHORED_TOPIC = "0x" + toHex(keccakText("Anchored(uint256,uint64,bytes32,uint64)"));

export class Rpc {
  constructor(url) {
    this.url = url;
    this.id = 0;
  }

  async call(method, params) {
    let response;
    try {
      response = await fetch(this.url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: ++this.id, method, params }),
      });
    } catch (err) {
      throw new Error(`the chain's RPC endpoint ${this.url} cannot be reached (${err.message})`);
    }
    if (!response.ok) throw new Error(`the chain's RPC endpoint answered HTTP ${response.status} to ${method}`);
    const body = await response.json();
    if (body.error) throw new Error(`${method}: ${body.error.message || JSON.stringify(body.error)}`);
    return body.result;
  }

  async chainId() {
    return Number(BigInt(await this.call("eth_chainId", [])));
  }

  /** The contract's ``rootAt(treeSize)``: [root (32 bytes), timestamp]. */
  async rootAt(contract, treeSize) {
    const data = "0x" + ROOT_AT + toHex(word(treeSize));
    const out = fromHex(await this.call("eth_call", [{ to: contract, data }, "latest"]));
    if (out.length < 64) throw new Error(`rootAt(${treeSize}) returned ${out.length} bytes, expected 64`);
    return [out.slice(0, 32), Number(BigInt("0x" + toHex(out.slice(32, 64))))];
  }

  receipt(txHash) {
    return this.call("eth_getTransactionReceipt", [txHash]);
  }

  block(number) {
    return this.call("eth_getBlockByNumber", ["0x" + number.toString(16), false]);
  }
}

// --- The bundle -----------------------------------------------------------------------------

function eventReport(event, position) {
  const env = (event && event.envelope) || {};
  return {
    seq: typeof env.seq === "number" ? env.seq : position,
    type: env.type || "?",
    index: event ? event.index : null,
    status: "valid",
    tree_size: null,
    block_number: null,
    block_timestamp: null,
    tx_hash: null,
    signer: null,
    withheld: null,
    problems: [],
  };
}

/**
 * Verifies a tenderproof-bundle/1 document (the parsed JSON) like `tenderproof verify`: payload and
 * leaf hashes, the seq/prev chain, signatures, inclusion paths, consistency links and, with ``rpc``,
 * the chain id and every anchor's root (rootAt), transaction and block. Never throws for a bad
 * bundle: every failure is in ``failures`` ({where, reason}) and on its event's ``problems``.
 */
export async function verifyBundle(bundle, { rpc = null } = {}) {
  const failures = [];
  const events = [];
  const fail = (where, reason, report) => {
    failures.push({ where, reason });
    if (report) {
      report.status = "invalid";
      report.problems.push(reason);
    }
  };
  const result = () => ({
    valid: failures.length === 0,
    origin: bundle && bundle.origin,
    ocid: bundle && bundle.ocid,
    chain: bundle && bundle.chain,
    chainChecked: rpc !== null,
    events,
    failures,
  });
  if (!bundle || typeof bundle !== "object" || bundle.format !== BUNDLE_FORMAT) {
    fail("format", `not a ${BUNDLE_FORMAT} document (format ${JSON.stringify(bundle && bundle.format)})`);
    return result();
  }
  if (!Array.isArray(bundle.events) || !Array.isArray(bundle.anchors) || !bundle.chain) {
    fail("bundle", "events, anchors and chain are required");
    return result();
  }
  const anchors = new Map();
  for (const a of bundle.anchors) {
    if (!a || !HEX64.test(a.root_hash)) {
      fail(`anchor of tree size ${a && a.tree_size}`, "root_hash must be 64 lowercase hex digits");
      continue;
    }
    anchors.set(a.tree_size, a);
  }
  let previousLeaf = null;
  let previousIndex = -1;
  for (const [position, event] of bundle.events.entries()) {
    const report = eventReport(event, position);
    events.push(report);
    const env = event && event.envelope;
    const where = `event seq ${report.seq} (events[${position}])`;
    if (!env || typeof env !== "object") {
      fail(where, "envelope missing", report);
      continue;
    }
    if (env.origin !== bundle.origin) fail(where, `envelope origin ${JSON.stringify(env.origin)} is not the bundle's ${JSON.stringify(bundle.origin)}`, report);
    if (env.ocid !== bundle.ocid) fail(where, `envelope ocid ${JSON.stringify(env.ocid)} is not the bundle's ${JSON.stringify(bundle.ocid)}`, report);
    if (env.seq !== position) fail(where, `expected seq ${position}: the history must be complete and in order from 0`, report);
    const expectedPrev = previousLeaf === null ? null : toHex(previousLeaf);
    if (position > 0 && env.prev !== expectedPrev) fail(where, `prev ${env.prev} is not the leaf hash of the event before (${expectedPrev})`, report);
    if (event.payload === null || event.payload === undefined) {
      report.withheld = event.withheld || null;
    } else {
      const digest = toHex(await sha256(canonicalBytes(event.payload)));
      if (digest !== env.payload_sha256) fail(where, `payload hashes to ${digest}, the envelope says ${env.payload_sha256}`, report);
    }
    const leaf = await leafHash(canonicalBytes(env));
    if (toHex(leaf) !== event.leaf_hash) fail(where, `envelope hashes to leaf ${toHex(leaf)}, the bundle says ${event.leaf_hash}`, report);
    previousLeaf = leaf;
    if (env.signature !== undefined && env.signature !== null) {
      try {
        report.signer = verifySubmission(env);
      } catch (err) {
        fail(where, `signature: ${err.message}`, report);
      }
    }
    if (event.index !== null && event.index !== undefined) {
      if (event.index <= previousIndex) fail(where, `log index ${event.index} is not after the previous event's (${previousIndex})`, report);
      previousIndex = event.index;
    }
    if (!event.inclusion) {
      if (report.status === "valid") report.status = "pending";
      continue;
    }
    const size = event.inclusion.tree_size;
    report.tree_size = size;
    const anchor = anchors.get(size);
    if (!anchor) {
      fail(where, `its inclusion proof is for tree size ${size}, which no anchor in the bundle has`, report);
      continue;
    }
    report.block_number = anchor.block_number;
    report.block_timestamp = anchor.block_timestamp;
    report.tx_hash = anchor.tx_hash;
    try {
      const path = event.inclusion.path.map(fromHex);
      await verifyInclusion(event.index, size, leaf, path, fromHex(anchor.root_hash));
    } catch (err) {
      fail(where, `inclusion in tree size ${size}: ${err.message}`, report);
    }
  }
  await checkAnchors(bundle, fail);
  if (rpc) await checkChain(bundle, rpc, fail);
  // A failure of an anchor invalidates the events that rest on it.
  for (const f of failures) {
    const m = /^anchor of tree size (\d+)$/.exec(f.where);
    if (!m) continue;
    for (const r of events) {
      if (r.tree_size === Number(m[1]) && !r.problems.includes(f.reason)) {
        r.status = "invalid";
        r.problems.push(f.reason);
      }
    }
  }
  return result();
}

async function checkAnchors(bundle, fail) {
  const ordered = bundle.anchors;
  for (let i = 1; i < ordered.length; i++) {
    if (ordered[i].tree_size <= ordered[i - 1].tree_size) {
      fail(`anchor of tree size ${ordered[i].tree_size}`, "anchors must be listed oldest (smallest) first, once each");
    }
  }
  const links = new Map();
  for (const link of bundle.consistency || []) {
    const key = `${link.from_size}->${link.to_size}`;
    if (links.has(key)) fail("consistency", "a link is listed twice");
    links.set(key, link);
  }
  const wanted = new Set();
  for (let i = 1; i < ordered.length; i++) wanted.add(`${ordered[i - 1].tree_size}->${ordered[i].tree_size}`);
  for (const key of links.keys()) {
    if (!wanted.has(key)) fail(`consistency ${key.replace("->", " -> ")}`, "does not link two consecutive anchors of the bundle");
  }
  for (let i = 1; i < ordered.length; i++) {
    const [a, b] = [ordered[i - 1], ordered[i]];
    const where = `consistency ${a.tree_size} -> ${b.tree_size}`;
    const link = links.get(`${a.tree_size}->${b.tree_size}`);
    if (!link) {
      fail(where, "missing: the anchors are not shown to be one history");
      continue;
    }
    try {
      await verifyConsistency(a.tree_size, b.tree_size, fromHex(a.root_hash), fromHex(b.root_hash), link.path.map(fromHex));
    } catch (err) {
      fail(where, err.message);
    }
  }
}

async function checkChain(bundle, rpc, fail) {
  let chainId;
  try {
    chainId = await rpc.chainId();
  } catch (err) {
    fail("chain", err.message);
    return;
  }
  if (chainId !== bundle.chain.chain_id) {
    fail("chain", `the endpoint is on chain ${chainId}, the bundle's anchors are on chain ${bundle.chain.chain_id}`);
    return;
  }
  const contract = bundle.chain.contract;
  await Promise.all(
    bundle.anchors.map(async (anchor) => {
      const where = `anchor of tree size ${anchor.tree_size}`;
      try {
        const [held] = await rpc.rootAt(contract, anchor.tree_size);
        if (held.every((b) => b === 0)) fail(where, `the contract ${contract} holds no checkpoint of that size`);
        else if (toHex(held) !== anchor.root_hash) fail(where, `the contract holds root ${toHex(held)}, the bundle says ${anchor.root_hash}`);
        const receipt = await rpc.receipt(anchor.tx_hash);
        if (!receipt) {
          fail(where, `transaction ${anchor.tx_hash} is not on the chain`);
          return;
        }
        if (Number(BigInt(receipt.status)) !== 1) fail(where, `transaction ${anchor.tx_hash} reverted`);
        const anchored = (receipt.logs || []).some((entry) => {
          if (String(entry.address).toLowerCase() !== contract.toLowerCase() || entry.topics[0] !== ANCHORED_TOPIC) return false;
          const data = fromHex(entry.data);
          return BigInt("0x" + toHex(data.slice(0, 32))) === BigInt(anchor.tree_size) && toHex(data.slice(32, 64)) === anchor.root_hash;
        });
        if (!anchored) fail(where, `transaction ${anchor.tx_hash} did not anchor this tree size and root`);
        const blockNumber = Number(BigInt(receipt.blockNumber));
        if (blockNumber !== anchor.block_number) fail(where, `transaction is in block ${blockNumber}, the bundle says ${anchor.block_number}`);
        const block = await rpc.block(blockNumber);
        const time = block ? Number(BigInt(block.timestamp)) : null;
        if (time !== anchor.block_timestamp) fail(where, `block time is ${time}, the bundle says ${anchor.block_timestamp}`);
      } catch (err) {
        fail(where, err.message);
      }
    }),
  );
}
