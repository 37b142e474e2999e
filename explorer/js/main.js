// The explorer's only script (bundled by esbuild into explorer/static/explorer.js, see package.json
// "build:explorer"). Pages are complete without it; it adds what must happen in the visitor's own
// browser: the "verified" badges of a tender's events and the bundle verifier.
import { Rpc, verifyBundle } from "./verify.js";

const config = JSON.parse(document.getElementById("tp-config").textContent);
const t = (key, values = {}) =>
  (config.messages[key] || key).replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));

const dateFormat = new Intl.DateTimeFormat(config.locale, { dateStyle: "medium", timeStyle: "medium", timeZone: "UTC" });
const when = (seconds) => `${dateFormat.format(new Date(seconds * 1000))} UTC`;
const numberFormat = new Intl.NumberFormat(config.locale);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function blockLink(report) {
  const text = t("block", { block: numberFormat.format(report.block_number) });
  if (!config.blockExplorer) return document.createTextNode(text);
  return el("a", { href: `${config.blockExplorer}/block/${report.block_number}`, rel: "noopener" }, text);
}

/** Sets one event's badge from its report. */
function showBadge(badge, report) {
  badge.replaceChildren();
  badge.classList.remove("badge-checking", "badge-claimed");
  if (report.status === "valid" && report.block_number !== null) {
    badge.className = "badge badge-ok";
    badge.append(t("anchored_in") + " ", blockLink(report), " " + t("at_time", { time: when(report.block_timestamp) }));
  } else if (report.status === "pending") {
    badge.className = "badge badge-pending";
    badge.append(t("pending"));
  } else {
    badge.className = "badge badge-failed";
    badge.append(t("failed") + ": " + report.problems.join("; "));
  }
  badge.dataset.status = report.status === "valid" ? "verified" : report.status;
}

async function fetchBundle(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (response.status === 404) return null; // nothing anchored on the chain yet
  if (!response.ok) throw new Error(t("http_error", { status: response.status }));
  return response.json();
}

async function tenderPage() {
  const badges = new Map(Array.from(document.querySelectorAll("[data-badge-seq]"), (b) => [Number(b.dataset.badgeSeq), b]));
  const summary = document.getElementById("verify-summary");
  try {
    const bundle = await fetchBundle(config.bundleUrl);
    if (bundle === null) {
      for (const badge of badges.values()) showBadge(badge, { status: "pending", problems: [] });
      summary.textContent = t("nothing_anchored");
      return;
    }
    const report = await verifyBundle(bundle, { rpc: new Rpc(config.rpcUrl) });
    for (const r of report.events) {
      const badge = badges.get(r.seq);
      if (badge) showBadge(badge, r);
    }
    // Events recorded since the bundle was built have no report yet: they are pending.
    for (const [seq, badge] of badges) {
      if (!report.events.some((r) => r.seq === seq)) showBadge(badge, { status: "pending", problems: [] });
    }
    const general = report.failures.filter((f) => !f.where.startsWith("event seq"));
    summary.textContent = report.valid ? t("all_verified") : t("some_failed", { count: report.failures.length });
    summary.className = report.valid ? "notice notice-ok" : "notice notice-failed";
    for (const f of general) summary.append(el("br"), `${f.where}: ${f.reason}`);
  } catch (err) {
    summary.textContent = t("could_not_verify", { reason: err.message });
    summary.className = "notice notice-failed";
    for (const badge of badges.values()) {
      badge.className = "badge badge-failed";
      badge.textContent = t("not_verified");
      badge.dataset.status = "error";
    }
  }
}

// --- The verify page ----------------------------------------------------------------------

const EXPLANATIONS = [
  [/^format|^bundle/, "explain_format"],
  [/payload hashes to|payload has no canonical/, "explain_payload"],
  [/envelope hashes to leaf/, "explain_leaf"],
  [/expected seq|prev .* is not the leaf hash|log index/, "explain_chain"],
  [/envelope (origin|ocid)/, "explain_origin"],
  [/^signature/, "explain_signature"],
  [/inclusion/, "explain_inclusion"],
  [/^consistency|missing: the anchors/, "explain_consistency"],
  [/contract holds|holds no checkpoint|transaction|block time|the endpoint is on chain|RPC/, "explain_chain_anchor"],
];

function explain(failure) {
  const text = `${failure.where}: ${failure.reason}`;
  for (const [pattern, key] of EXPLANATIONS) if (pattern.test(failure.reason) || pattern.test(failure.where)) return t(key);
  return t("explain_other", { text });
}

function renderReport(out, report) {
  out.replaceChildren();
  const heading = el("h2", { tabindex: "-1" }, report.valid ? t("bundle_valid") : t("bundle_invalid", { count: report.failures.length }));
  out.append(el("div", { class: report.valid ? "notice notice-ok" : "notice notice-failed", "data-result": report.valid ? "valid" : "invalid" }, heading));
  if (report.ocid) {
    const meta = el("p", {}, t("bundle_of", { ocid: report.ocid, chain: report.chain ? report.chain.chain_id : "?" }));
    out.append(meta);
  }
  if (report.failures.length) {
    const list = el("ul", { class: "failures" });
    for (const f of report.failures) {
      list.append(el("li", {}, el("strong", {}, f.where), ": " + f.reason, el("br"), el("span", { class: "explain" }, explain(f))));
    }
    out.append(el("h3", {}, t("problems")), list);
  }
  if (report.events.length) {
    const table = el("table", { class: "data" });
    table.append(el("caption", {}, t("events")));
    const head = el("tr", {});
    for (const key of ["col_seq", "col_type", "col_index", "col_status", "col_signer"]) head.append(el("th", { scope: "col" }, t(key)));
    table.append(el("thead", {}, head));
    const body = el("tbody");
    for (const r of report.events) {
      const badge = el("span", { class: "badge" });
      showBadge(badge, r);
      body.append(el("tr", {}, el("td", {}, String(r.seq)), el("td", {}, config.eventLabels[r.type] || r.type), el("td", {}, r.index === null ? "–" : String(r.index)), el("td", {}, badge), el("td", { class: "mono" }, r.signer || "–")));
    }
    table.append(body);
    out.append(el("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": t("events") }, table));
  }
  heading.focus();
}

async function verifyText(text, out) {
  let bundle;
  try {
    bundle = JSON.parse(text);
  } catch (err) {
    renderReport(out, { valid: false, events: [], failures: [{ where: "format", reason: t("not_json", { reason: err.message }) }] });
    return;
  }
  out.replaceChildren(el("p", { class: "notice" }, t("verifying")));
  renderReport(out, await verifyBundle(bundle, { rpc: new Rpc(config.rpcUrl) }));
}

function verifyPage() {
  const form = document.getElementById("verify-form");
  const text = document.getElementById("bundle-text");
  const file = document.getElementById("bundle-file");
  const drop = document.getElementById("drop-zone");
  const out = document.getElementById("verify-result");
  const ocidForm = document.getElementById("ocid-form");
  const readFile = async (f) => {
    text.value = await f.text();
    await verifyText(text.value, out);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    verifyText(text.value, out);
  });
  file.addEventListener("change", () => file.files[0] && readFile(file.files[0]));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("drop-active");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("drop-active"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("drop-active");
    const f = event.dataTransfer.files[0];
    if (f) readFile(f);
  });
  const verifyOcid = async (ocid) => {
    out.replaceChildren(el("p", { class: "notice" }, t("verifying")));
    try {
      const bundle = await fetchBundle(`${config.bundleBase}/${encodeURIComponent(ocid)}/bundle`);
      if (bundle === null) throw new Error(t("no_bundle", { ocid }));
      text.value = JSON.stringify(bundle, null, 2);
      renderReport(out, await verifyBundle(bundle, { rpc: new Rpc(config.rpcUrl) }));
    } catch (err) {
      renderReport(out, { valid: false, events: [], failures: [{ where: "ocid", reason: err.message }] });
    }
  };
  ocidForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const ocid = document.getElementById("ocid").value.trim();
    if (ocid) verifyOcid(ocid);
  });
  const initial = new URLSearchParams(location.search).get("ocid");
  if (initial) verifyOcid(initial);
}

if (document.body.dataset.page === "tender") tenderPage();
else if (document.body.dataset.page === "verify") verifyPage();
