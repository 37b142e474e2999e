// The officers' desk's script (bundled by esbuild into explorer/static/desk.js, apart from the public
// explorer.js; see package.json "build:desk"). The desk's forms work without it (unsigned events, where
// the log accepts them); with it, each event is signed in this browser before it is sent:
//
//   1. the form's fields go to /desk/payload, which answers the ocid, type and payload hash the server
//      will record for exactly these fields (the same builder and rules as the recording);
//   2. the EIP-712 Submission of ledger/core/signing.py is signed (the digest is verify.js's
//      submissionDigest, the verifier's own) with the officer's key: decrypted from an encrypted
//      keystore file (JSON V3: scrypt or PBKDF2 from @noble/hashes, AES-128-CTR from WebCrypto, the
//      keccak MAC checked) just for this signature, or by a browser wallet (eth_signTypedData_v4);
//   3. the form is sent with `submission` and `signature`. The key never leaves the browser.
//
// On an entry's page it follows the entry (pending -> in the log -> anchored) by polling its status.
import { keccak_256 } from "@noble/hashes/sha3.js";
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { pbkdf2Async } from "@noble/hashes/pbkdf2.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { concat, toHex, utf8 } from "./shared.js";
import { fromHex, submissionDigest } from "./verify.js";

/** EIP-55 checksummed form of a 0x address. */
export function checksum(address) {
  const lower = address.toLowerCase().slice(2);
  const hash = toHex(keccak_256(utf8.encode(lower)));
  let out = "0x";
  for (let i = 0; i < 40; i++) out += parseInt(hash[i], 16) >= 8 ? lower[i].toUpperCase() : lower[i];
  return out;
}

export function addressOf(privateKey) {
  const point = secp256k1.getPublicKey(privateKey, false);
  return checksum("0x" + toHex(keccak_256(point.slice(1)).slice(12)));
}

class KeystoreError extends Error {
  constructor(message, { wrongPassword = false } = {}) {
    super(message);
    this.wrongPassword = wrongPassword;
  }
}

/** The private key of an encrypted keystore (Web3 Secret Storage, JSON V3). */
export async function decryptKeystore(text, password) {
  let json;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new KeystoreError(error.message);
  }
  const c = json && (json.crypto || json.Crypto);
  if (!c || json.version !== 3 || c.cipher !== "aes-128-ctr") throw new KeystoreError("version 3, aes-128-ctr expected");
  const params = c.kdfparams || {};
  const secret = utf8.encode(password.normalize("NFKC"));
  const salt = fromHex(params.salt || "");
  let derived;
  if (c.kdf === "scrypt") {
    derived = await scryptAsync(secret, salt, { N: params.n, r: params.r, p: params.p, dkLen: params.dklen });
  } else if (c.kdf === "pbkdf2" && params.prf === "hmac-sha256") {
    derived = await pbkdf2Async(sha256, secret, salt, { c: params.c, dkLen: params.dklen });
  } else {
    throw new KeystoreError(`unsupported kdf ${c.kdf}`);
  }
  const ciphertext = fromHex(c.ciphertext);
  const mac = toHex(keccak_256(concat(derived.slice(16, 32), ciphertext)));
  if (mac !== String(c.mac).toLowerCase()) throw new KeystoreError("MAC mismatch", { wrongPassword: true });
  const key = await crypto.subtle.importKey("raw", derived.slice(0, 16), "AES-CTR", false, ["decrypt"]);
  const counter = fromHex(c.cipherparams.iv);
  const plain = await crypto.subtle.decrypt({ name: "AES-CTR", counter, length: 128 }, key, ciphertext);
  return new Uint8Array(plain);
}

/** 0x + r || s || v (27 or 28), lowercase: the one encoding ledger/core/signing.py accepts. */
export function signDigest(digest, privateKey) {
  const raw = secp256k1.sign(digest, privateKey, { prehash: false, lowS: true, format: "recovered" });
  const sig = secp256k1.Signature.fromBytes(raw, "recovered");
  const word = (n) => n.toString(16).padStart(64, "0");
  return "0x" + word(sig.r) + word(sig.s) + (27 + sig.recovery).toString(16);
}

function typedData(s) {
  return {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
      ],
      Submission: [
        { name: "ocid", type: "string" },
        { name: "eventType", type: "string" },
        { name: "payloadSha256", type: "bytes32" },
        { name: "submissionId", type: "string" },
        { name: "officer", type: "address" },
        { name: "signedAt", type: "uint64" },
      ],
    },
    primaryType: "Submission",
    domain: s.domain,
    message: { ...s, domain: undefined, payloadSha256: "0x" + s.payloadSha256 },
  };
}

/** A wallet's signature in the encoding the log accepts (v 27/28, lowercase). */
function normalise(signature) {
  const raw = fromHex(signature.slice(2).toLowerCase());
  const v = raw[64] < 27 ? raw[64] + 27 : raw[64];
  return "0x" + toHex(raw.slice(0, 64)) + v.toString(16);
}

function setupEventForm(form) {
  // The texts, in the page's language (explorer/desk.py JS_TEXTS, through the catalog).
  const texts = JSON.parse(form.dataset.signing || "{}");
  const say = (key, values = {}) => {
    status.textContent = (texts[key] || key).replace(/\{(\w+)\}/g, (_, name) => values[name] ?? "");
  };
  const status = document.getElementById("signing-status");
  const fileInput = document.getElementById("keystore");
  const password = document.getElementById("keystore-password");
  const wallet = typeof window.ethereum === "object" && window.ethereum !== null ? window.ethereum : null;
  if (wallet) document.getElementById("wallet-note").hidden = false;
  let sending = false;

  // The first field with an error gets the focus (the server marks them aria-invalid).
  const invalid = form.querySelector('[aria-invalid="true"]');
  if (invalid) invalid.focus();

  form.addEventListener("submit", async (event) => {
    if (sending) return;
    event.preventDefault();
    const file = fileInput.files && fileInput.files[0];
    if (!file && !wallet) {
      say("no_key");
      return;
    }
    say("signing");
    const data = new URLSearchParams(new FormData(form));
    data.set("submission", "");
    data.set("signature", "");
    data.set("disclosure", "");
    let answer;
    try {
      const response = await fetch("/desk/payload", { method: "POST", body: data, credentials: "same-origin" });
      answer = await response.json();
      if (!response.ok) {
        // The server names the fields: let it show them on the page, beside each field.
        sending = true;
        form.submit();
        return;
      }
    } catch (error) {
      say("failed", { reason: error.message });
      return;
    }
    try {
      const officer = answer.officer;
      let signature;
      let address;
      const unsigned = (who) => ({
        domain: { name: answer.origin, version: "1", chainId: answer.chainId },
        ocid: answer.ocid,
        eventType: answer.type,
        payloadSha256: answer.payloadSha256,
        submissionId: crypto.randomUUID(),
        officer: who,
        signedAt: Math.floor(Date.now() / 1000),
      });
      let submission;
      if (file) {
        let key;
        try {
          key = await decryptKeystore(await file.text(), password.value);
        } catch (error) {
          say(error.wrongPassword ? "bad_password" : "bad_keystore", { reason: error.message });
          return;
        }
        address = addressOf(key);
        if (officer && officer !== address) {
          say("wrong_officer", { address, officer });
          return;
        }
        submission = unsigned(address);
        signature = signDigest(submissionDigest(submission), key);
        key.fill(0);
      } else {
        try {
          const accounts = await wallet.request({ method: "eth_requestAccounts" });
          address = checksum(accounts[0]);
          submission = unsigned(address);
          const signed = await wallet.request({
            method: "eth_signTypedData_v4",
            params: [accounts[0], JSON.stringify(typedData(submission))],
          });
          signature = normalise(signed);
        } catch (error) {
          say("wallet_refused", { reason: error.message });
          return;
        }
      }
      form.elements.ocid.value = answer.ocid;
      form.elements.submission.value = JSON.stringify(submission);
      form.elements.signature.value = signature;
      // What the signed payloadSha256 (the envelope v2's payload_commitment) was made with.
      form.elements.disclosure.value = JSON.stringify(answer.disclosure);
      say("sending", { address });
      sending = true;
      form.submit();
    } catch (error) {
      say("failed", { reason: error.message });
    }
  });
}

function followEntry(box) {
  const url = box.dataset.statusUrl;
  const show = (entry) => {
    box.dataset.status = entry.status;
    for (const part of box.querySelectorAll("[data-when]")) part.hidden = part.dataset.when !== entry.status;
    const index = box.querySelector(".desk-index");
    if (index && entry.index !== null && entry.index !== undefined) index.textContent = String(entry.index);
    const block = box.querySelector(".desk-block");
    if (block && entry.block_number) block.textContent = String(entry.block_number);
  };
  const poll = async () => {
    if (box.dataset.status === "anchored") return;
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) show(await response.json());
    } catch {
      // try again at the next tick
    }
    setTimeout(poll, 2000);
  };
  setTimeout(poll, 1000);
}

const eventForm = document.getElementById("desk-event");
if (eventForm) setupEventForm(eventForm);
const statusBox = document.getElementById("desk-status");
if (statusBox) followEntry(statusBox);
if (!eventForm) {
  const invalid = document.querySelector('[aria-invalid="true"]');
  if (invalid) invalid.focus();
}
