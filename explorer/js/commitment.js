// Envelope v2's salted, field-level payload commitment (docs/spec.md §2.5), as ledger/core/commitment.py
// recomputes it: the verifier's side only (the browser never draws salts). Every digest is WebCrypto's
// SHA-256 over RFC 8785 bytes (the `canonicalize` package, as verify.js).
import canonicalize from "canonicalize";
import { HEX64, concat, pyRepr, sha256, toHex, utf8 } from "./shared.js";

const INDEX = /^(0|[1-9][0-9]*)$/;

/** A malformed disclosure or a pointer naming no value: ``key`` and ``values`` as verify.js's messages. */
export class CommitmentError extends Error {
  constructor(detail) {
    super(detail);
    this.detail = detail;
  }
}

const unhex = (text) => Uint8Array.from(text.match(/../g) || [], (h) => parseInt(h, 16));

function tokens(pointer, where) {
  if (typeof pointer !== "string" || !pointer.startsWith("/")) throw new CommitmentError(`${where}: not a JSON Pointer`);
  return pointer
    .slice(1)
    .split("/")
    .map((t) => {
      if (/~(?![01])/.test(t)) throw new CommitmentError(`${where}: '~' not followed by 0 or 1`);
      return t.replace(/~1/g, "/").replace(/~0/g, "~");
    });
}

/** [container, key] of the value at ``pointer`` in ``doc``. */
function locate(doc, pointer, where) {
  const parts = tokens(pointer, where);
  let container = doc;
  for (let i = 0; i < parts.length; i++) {
    const token = parts[i];
    let key;
    if (Array.isArray(container)) {
      if (!INDEX.test(token) || Number(token) >= container.length) throw new CommitmentError(`${where}: names no value of the payload`);
      key = Number(token);
    } else if (container !== null && typeof container === "object") {
      if (!Object.prototype.hasOwnProperty.call(container, token)) throw new CommitmentError(`${where}: names no value of the payload`);
      key = token;
    } else {
      throw new CommitmentError(`${where}: names no value of the payload`);
    }
    if (i === parts.length - 1) return [container, key];
    container = container[key];
  }
  throw new CommitmentError(`${where}: names no value of the payload`);
}

/** The fields of a disclosure withheld by an order: pointer -> the order's log index. */
export function withheldFields(disclosure) {
  const out = {};
  for (const [pointer, entry] of Object.entries((disclosure && disclosure.fields) || {})) {
    if (entry && typeof entry === "object" && "digest" in entry) out[pointer] = entry.order;
  }
  return out;
}

/**
 * The payload_commitment (hex) of ``payload`` (nulls at withheld fields) and its ``disclosure``.
 * Throws CommitmentError naming the member or pointer when the disclosure is malformed.
 */
export async function recompute(payload, disclosure) {
  if (!disclosure || typeof disclosure !== "object" || Array.isArray(disclosure)) throw new CommitmentError("disclosure: not a JSON object");
  const extra = Object.keys(disclosure).filter((k) => k !== "salt" && k !== "fields");
  if (extra.length) throw new CommitmentError(`disclosure.${extra[0]}: unknown member`);
  if (!HEX64.test(disclosure.salt)) throw new CommitmentError("disclosure.salt: not 64 lowercase hex digits");
  const fields = disclosure.fields;
  if (!fields || typeof fields !== "object" || Array.isArray(fields)) throw new CommitmentError("disclosure.fields: not a JSON object");
  const pointers = Object.keys(fields).sort();
  const named = new Set(pointers);
  const digests = {};
  for (const pointer of pointers) {
    const where = `disclosure.fields[${pyRepr(pointer)}]`;
    tokens(pointer, where);
    for (let at = pointer.lastIndexOf("/"); at > 0; at = pointer.lastIndexOf("/", at - 1)) {
      if (named.has(pointer.slice(0, at))) throw new CommitmentError(`${where}: lies inside another committed field`);
    }
    const entry = fields[pointer];
    const keys = entry && typeof entry === "object" ? Object.keys(entry).sort().join(",") : "";
    const [container, key] = locate(payload, pointer, where);
    if (keys === "salt" && HEX64.test(entry.salt)) {
      const value = utf8.encode(canonicalize(container[key]));
      digests[pointer] = toHex(await sha256(concat(unhex(entry.salt), value)));
    } else if (keys === "digest,order" && HEX64.test(entry.digest) && Number.isSafeInteger(entry.order) && entry.order >= 0) {
      if (container[key] !== null) throw new CommitmentError(`${where}: withheld under order ${entry.order} but the payload shows a value there`);
      digests[pointer] = entry.digest;
    } else {
      throw new CommitmentError(`${where}: must be {salt} or {digest, order}`);
    }
  }
  const skeleton = structuredClone(payload);
  for (const pointer of pointers) {
    const [container, key] = locate(skeleton, pointer, pointer);
    container[key] = null;
  }
  const wrapped = { fields: digests, payload: skeleton, salt: disclosure.salt };
  return toHex(await sha256(utf8.encode(canonicalize(wrapped))));
}
