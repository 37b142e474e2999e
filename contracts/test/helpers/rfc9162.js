// RFC 9162 §2.1 reference for the contract tests, straight from the RFC's recursive
// definitions (MTH, PATH, PROOF). Leaves are given as data; hashes are 0x-prefixed hex.
const { createHash } = require("crypto");

const sha256 = (...parts) => createHash("sha256").update(Buffer.concat(parts)).digest();
const leafHash = (data) => sha256(Buffer.from([0]), Buffer.from(data));
const nodeHash = (left, right) => sha256(Buffer.from([1]), left, right);
const split = (n) => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};

function mth(leaves) {
  if (leaves.length === 0) return sha256(Buffer.alloc(0));
  if (leaves.length === 1) return leafHash(leaves[0]);
  const k = split(leaves.length);
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

function path(m, leaves) {
  if (leaves.length <= 1) return [];
  const k = split(leaves.length);
  if (m < k) return [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))];
  return [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

function subproof(m, leaves, complete) {
  const n = leaves.length;
  if (m === n) return complete ? [] : [mth(leaves)];
  const k = split(n);
  if (m <= k) return [...subproof(m, leaves.slice(0, k), complete), mth(leaves.slice(k))];
  return [...subproof(m - k, leaves.slice(k), false), mth(leaves.slice(0, k))];
}

const proof = (m, leaves) => (m === 0 || m === leaves.length ? [] : subproof(m, leaves, true));
const hex = (buf) => "0x" + buf.toString("hex");
const leaves = (n) => Array.from({ length: n }, (_, i) => Buffer.from(String(i)));

module.exports = { leafHash, nodeHash, mth, path, proof, hex, leaves };
