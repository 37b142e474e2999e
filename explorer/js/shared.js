// The small helpers every module of the browser verifier and the desk uses (bytes, hex, SHA-256,
// log sizes, Python's repr), in one leaf module that imports nothing of the project, so that
// commitment.js, verify.js, complete.js, orders.js and desk.js do not each carry a copy.

export const utf8 = new TextEncoder();
export const HEX64 = /^[0-9a-f]{64}$/;

/** A log index or tree size: a whole number from 0 to 2^53-1 (as the Python loader requires). */
export const isSize = (n) => Number.isSafeInteger(n) && n >= 0;

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** A string as Python's repr writes it, so messages read as the command line's. */
export const pyRepr = (text) =>
  text.includes("'") && !text.includes('"') ? `"${text}"` : `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
