// Verifies a C2SP signed checkpoint with sigstore-js (@sigstore/verify, the Sigstore project's
// verifier of Rekor checkpoints: an implementation Tenderproof did not write).
// stdin: {"note": "...", "public_key": "<base64 of the 32-byte Ed25519 key>",
//         "log_id": "<hex: the key hash the log's signature lines carry, then anything>",
//         "base_url": "https://<the log's key name>"}
// stdout: {"ok": true, "origin", "size", "root"} or {"ok": false, "error"}
"use strict";
const { createPublicKey } = require("node:crypto");
const { verifyCheckpoint } = require("@sigstore/verify/dist/tlog/checkpoint");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const q = JSON.parse(input);
  // An Ed25519 SubjectPublicKeyInfo: the fixed 12-byte prefix (RFC 8410), then the raw key.
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(q.public_key, "base64")]);
  const tlog = {
    logID: Buffer.from(q.log_id, "hex"),
    baseURL: q.base_url,
    publicKey: createPublicKey({ key: spki, format: "der", type: "spki" }),
  };
  try {
    const cp = verifyCheckpoint({ inclusionProof: { checkpoint: { envelope: q.note } } }, [tlog]);
    process.stdout.write(JSON.stringify({ ok: true, origin: cp.origin, size: cp.logSize.toString(), root: cp.logHash.toString("hex") }));
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(err.message || err) }));
  }
});
