// Signs a tlog-checkpoint as a C2SP signed note with @noble/curves' Ed25519 (not the code under
// test, which checks with WebCrypto): node sign_note.mjs NAME SEED_HEX < body; prints JSON
// {vkey, note}. Used by tests/explorer/test_browser_v2.py.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ed25519 } from "@noble/curves/ed25519.js";

const [name, seedHex] = process.argv.slice(2);
const body = readFileSync(0, "utf8");
const seed = Uint8Array.from(Buffer.from(seedHex, "hex"));
const publicKey = ed25519.getPublicKey(seed);
const raw = Buffer.concat([Buffer.from([1]), Buffer.from(publicKey)]);
const id = createHash("sha256").update(Buffer.concat([Buffer.from(name + "\n"), raw])).digest().subarray(0, 4);
const signature = ed25519.sign(new TextEncoder().encode(body), seed);
const line = `\u2014 ${name} ${Buffer.concat([id, Buffer.from(signature)]).toString("base64")}\n`;
process.stdout.write(JSON.stringify({ vkey: `${name}+${id.toString("hex")}+${raw.toString("base64")}`, note: `${body}\n${line}` }));
