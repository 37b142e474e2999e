// The explorer's only script (bundled by esbuild into explorer/static/explorer.js, see package.json
// "build:explorer"). Pages are complete without it; it adds what must happen in the visitor's own
// browser: the badges of a tender's events and the bundle verifier, with four honest outcomes:
// verified (checked against the chain), invalid, not checked (the chain could not be asked: grey,
// with a retry) and pending (not yet anchored).
import { DEFAULT_TIMEOUT, Rpc, verifyBundle } from "./verify.js";

const config = JSON.parse(document.getElementById("tp-config").textContent);
const fill = (template, values) =>
  template.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
const t = (key, values = {}) => fill(config.messages[key] || key, values);
/** A verifier message ({key, values}, values possibly messages themselves) in the page's language. */
const text = (m) => {
  if (m === null || typeof m !== "object" || !("key" in m)) return String(m);
  const values = {};
  for (const [name, value] of Object.entries(m.values || {})) values[name] = text(value);
  return t(m.key, values);
};

const dateFormat = new Intl.DateTimeFormat(config.locale, { dateStyle: "medium", timeStyle: "medium", timeZone: "UTC" });
const when = (seconds) => `${dateFormat.format(new Date(seconds * 1000))} UTC`;
const numberFormat = new Intl.NumberFormat(config.locale);

/** Seconds one chain call may take: ``?rpc_timeout=`` (for tests and slow links), else 10. */
function rpcTimeout() {
  const asked = Number(new URLSearchParams(location.search).get("rpc_timeout"));
  return Number.isFinite(asked) && asked >= 0.05 && asked <= 120 ? asked : DEFAULT_TIMEOUT;
}

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
  const label = t("block", { block: numberFormat.format(report.block_number) });
  if (!config.blockExplorer) return document.createTextNode(label);
  return el("a", { href: `${config.blockExplorer}/block/${report.block_number}`, rel: "noopener" }, label);
}

const BADGE_CLASS = { verified: "badge badge-ok", invalid: "badge badge-failed", unchecked: "badge badge-unchecked", pending: "badge badge-pending" };

/** Sets one event's badge from its report: block and time are the chain's, never the bundle's. */
function showBadge(badge, report) {
  badge.replaceChildren();
  badge.className = BADGE_CLASS[report.status];
  if (report.status === "verified") {
    badge.append(t("anchored_in") + " ", blockLink(report), " " + t("at_time", { time: when(report.block_timestamp) }));
  } else if (report.status === "pending") {
    badge.append(t("pending"));
  } else if (report.status === "unchecked") {
    badge.append(t("not_checked"));
  } else {
    badge.append(t("failed") + ": " + report.problems.map(text).join("; "));
  }
  badge.dataset.status = report.status;
}

class BundleUnavailable extends Error {}

async function fetchBundle(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
  } catch (err) {
    throw new BundleUnavailable(t("bundle_unreachable", { reason: err.message }));
  }
  if (response.status === 404) return null; // nothing anchored on the chain yet
  if (!response.ok) throw new BundleUnavailable(t("http_error", { status: response.status }));
  return response.json();
}

function retryButton(run) {
  const button = el("button", { type: "button", class: "button-quiet retry" }, t("retry"));
  button.addEventListener("click", run);
  return button;
}

/** The lines a bundle/2 adds: "complete as of tree size N, anchored at T", the signed checkpoint. */
function versionTwoLines(report, tag = "p") {
  const lines = [];
  const c = report.completeness;
  if (c && c.status === "complete") {
    lines.push(["complete", c.time !== null ? t("complete_as_of", { size: numberFormat.format(c.treeSize), time: when(c.time) }) : t("complete_unchecked", { size: numberFormat.format(c.treeSize) })]);
  } else if (c && c.status === "not_proven") {
    lines.push(["not_proven", t("not_proven")]);
  }
  const r = report.range;
  if (r) {
    // A range bundle: what part of the history it holds, never called complete.
    lines.unshift(["range", t("range_of", { first: numberFormat.format(r.from_seq), last: numberFormat.format(r.to_seq), of: numberFormat.format(r.of) })]);
    if (c && c.status === "range") lines.push(["range-committed", t("range_committed", { size: numberFormat.format(c.committed), n: numberFormat.format(c.treeSize) })]);
  }
  const k = report.checkpoint;
  if (k && k.status === "verified") lines.push(["checkpoint-verified", t("checkpoint_verified", { size: numberFormat.format(k.size), name: k.name })]);
  else if (k && k.status === "unchecked") lines.push(["checkpoint-unchecked", t("checkpoint_unchecked", { reason: text(k.reason) })]);
  else if (k && k.status === "absent") lines.push(["checkpoint-absent", t("checkpoint_absent")]);
  return lines.map(([kind, line]) => el(tag, { class: "small line", "data-line": kind }, line));
}

const STORED_KEY = "tenderproof.checkpointKey";

/** The checkpoint verifier key: the one the visitor pinned on /verify, else the one this site publishes. */
async function checkpointKey() {
  try {
    const pinned = localStorage.getItem(STORED_KEY);
    if (pinned) return pinned;
  } catch {
    // storage refused: the published key
  }
  try {
    const response = await fetch(config.checkpointKeyUrl || "/.well-known/tenderproof/checkpoint-key");
    return response.ok ? (await response.text()).trim() : null;
  } catch {
    return null;
  }
}

// --- A tender's page ------------------------------------------------------------------------

function tenderPage() {
  const badges = new Map(Array.from(document.querySelectorAll("[data-badge-seq]"), (b) => [Number(b.dataset.badgeSeq), b]));
  const summary = document.getElementById("verify-summary");
  const everyBadge = (report) => {
    for (const badge of badges.values()) showBadge(badge, { problems: [], ...report });
  };
  const run = async () => {
    summary.className = "notice";
    summary.dataset.result = "checking";
    summary.textContent = t("checking");
    let report;
    try {
      const bundle = await fetchBundle(config.bundleUrl);
      if (bundle === null) {
        everyBadge({ status: "pending" });
        summary.textContent = t("nothing_anchored");
        summary.dataset.result = "pending";
        return;
      }
      const key = bundle.format === "tenderproof-bundle/2" && bundle.checkpoint ? await checkpointKey() : null;
      report = await verifyBundle(bundle, { rpc: new Rpc(config.rpcUrl, { timeout: rpcTimeout() }), checkpointKey: key, confirmations: config.confirmations || 1 });
    } catch (err) {
      everyBadge({ status: "unchecked" });
      summary.className = "notice notice-unchecked";
      summary.dataset.result = "unchecked";
      summary.replaceChildren(t("could_not_verify", { reason: err.message }), " ", retryButton(run));
      return;
    }
    for (const r of report.events) {
      const badge = badges.get(r.seq);
      if (badge) showBadge(badge, r);
    }
    // Events recorded since the bundle was built have no report yet: they are pending.
    for (const [seq, badge] of badges) {
      if (!report.events.some((r) => r.seq === seq)) showBadge(badge, { status: "pending", problems: [] });
    }
    summary.dataset.result = report.status;
    if (report.status === "verified") {
      summary.className = "notice notice-ok";
      summary.textContent = t("all_verified");
    } else if (report.status === "pending") {
      summary.className = "notice";
      summary.textContent = t("nothing_anchored");
    } else if (report.status === "unchecked") {
      summary.className = "notice notice-unchecked";
      summary.replaceChildren(t("not_checked_summary"), " ", retryButton(run));
      for (const u of report.unavailable) summary.append(el("br"), `${text(u.where)}: ${text(u.reason)}`);
    } else {
      summary.className = "notice notice-failed";
      summary.textContent = t("some_failed", { count: report.failures.length });
      const general = report.failures.filter((f) => f.where.key !== "w_event");
      for (const f of general) summary.append(el("br"), `${text(f.where)}: ${text(f.reason)}`);
    }
    if (report.status === "verified" || report.status === "unchecked") summary.append(...versionTwoLines(report, "span"));
  };
  run();
}

// --- The verify page ------------------------------------------------------------------------

const EXPLANATIONS = {
  r_format: "explain_format",
  r_required: "explain_format",
  r_malformed: "explain_format",
  r_no_events: "explain_empty",
  r_payload: "explain_payload",
  r_commitment: "explain_payload",
  r_disclosure: "explain_payload",
  r_leaf: "explain_leaf",
  r_seq: "explain_chain",
  r_prev: "explain_chain",
  r_index: "explain_chain",
  r_index_order: "explain_chain",
  r_origin: "explain_origin",
  r_ocid: "explain_origin",
  r_signature: "explain_signature",
  r_inclusion: "explain_inclusion",
  r_no_anchor_for_proof: "explain_inclusion",
  r_escaped: "explain_escaped",
  r_escaped_chain: "explain_escaped",
  r_link_twice: "explain_consistency",
  r_link_unused: "explain_consistency",
  r_link_missing: "explain_consistency",
  r_not_one_history: "explain_consistency",
  r_anchor_order: "explain_consistency",
  c_at_commitment: "explain_incomplete",
  o_not_registered: "explain_officer",
  o_revoked: "explain_officer",
  r_withheld_missing: "explain_withheld",
  r_withheld_order: "explain_withheld",
  r_withheld_reference: "explain_withheld",
  r_withheld_earlier: "explain_withheld",
  r_withheld_shown: "explain_withheld",
  r_order_in_v1: "explain_withheld",
  r_withheld_no_order: "explain_withheld",
  r_order_not_carried: "explain_withheld",
  r_order_reference: "explain_withheld",
  r_order_not_target: "explain_withheld",
};
const WHERE_EXPLANATIONS = {
  w_completeness: "explain_incomplete",
  w_commitment: "explain_incomplete",
  w_heads_proof: "explain_incomplete",
  w_officer_event: "explain_officer",
  w_order_event: "explain_withheld",
  w_checkpoint: "explain_checkpoint",
  w_consistency: "explain_consistency",
};

function explain(failure) {
  const key = EXPLANATIONS[failure.reason.key] || WHERE_EXPLANATIONS[failure.where.key];
  if (key) return t(key);
  if (failure.where.key === "w_anchor" || failure.where.key === "w_chain") return t("explain_chain_anchor");
  return t("explain_other", { text: text(failure.reason) });
}

/** What an event's report says is withheld, and why (the CLI's "payload withheld: ..." lines). */
function withheldLines(r) {
  const lines = [];
  if (r.withheld !== null && typeof r.withheld === "object") lines.push(text(r.withheld));
  else if (r.withheld) lines.push(t("withheld_reason", { reason: r.withheld }));
  for (const [pointer, order] of Object.entries(r.withheld_fields || {})) lines.push(t("withheld_field", { pointer, order }));
  return lines.map((line) => el("span", { class: "small line withheld", "data-withheld": "" }, line));
}

const HEADINGS = { verified: "bundle_valid", invalid: "bundle_invalid", unchecked: "bundle_unchecked", pending: "bundle_pending" };
const NOTICES = { verified: "notice notice-ok", invalid: "notice notice-failed", unchecked: "notice notice-unchecked", pending: "notice" };

function renderReport(out, report, retry) {
  out.replaceChildren();
  const heading = el("h2", { tabindex: "-1" }, t(HEADINGS[report.status], { count: report.failures.length }));
  const notice = el("div", { class: NOTICES[report.status], "data-result": report.status }, heading);
  if (report.status === "unchecked" && retry) notice.append(retryButton(retry));
  out.append(notice);
  if (report.ocid) out.append(el("p", {}, t("bundle_of", { ocid: report.ocid, chain: report.chain ? report.chain.chain_id : "?" })));
  out.append(...versionTwoLines(report));
  if (report.failures.length) {
    const list = el("ul", { class: "failures" });
    for (const f of report.failures) {
      list.append(el("li", {}, el("strong", {}, text(f.where)), ": " + text(f.reason), el("br"), el("span", { class: "explain" }, explain(f))));
    }
    out.append(el("h3", {}, t("problems")), list);
  }
  if ((report.unavailable || []).length) {
    const list = el("ul", { class: "unavailable" });
    for (const u of report.unavailable) list.append(el("li", {}, el("strong", {}, text(u.where)), ": " + text(u.reason)));
    out.append(el("h3", {}, t("not_asked")), el("p", { class: "explain" }, t("explain_unavailable")), list);
  }
  if (report.events.length) {
    const table = el("table", { class: "data cards verify-events" });
    table.append(el("caption", {}, t("events")));
    const head = el("tr", {});
    const columns = ["col_seq", "col_type", "col_index", "col_status", "col_signer"];
    for (const key of columns) head.append(el("th", { scope: "col" }, t(key)));
    table.append(el("thead", {}, head));
    const body = el("tbody");
    for (const r of report.events) {
      const badge = el("span", { class: "badge" });
      showBadge(badge, r);
      // each cell names its column: on a phone the rows are stacked cards (site.css table.cards)
      const cell = (n, attrs, ...children) => el("td", { ...attrs, "data-label": t(columns[n]) }, ...children);
      body.append(el("tr", {}, cell(0, {}, String(r.seq)), cell(1, {}, config.eventLabels[r.type] || r.type), cell(2, {}, r.index === null ? "–" : String(r.index)), cell(3, { class: "status" }, badge, ...withheldLines(r)), cell(4, { class: "mono signer" }, r.officer ? `${r.officer} (${r.signer})` : r.signer || "–")));
    }
    table.append(body);
    out.append(table);
  }
  if (report.events.length && document.body.dataset.page === "verify") out.append(certificate(report));
  heading.focus();
}

const STORED_RPC = "tenderproof.rpcUrl";

function storedRpc() {
  try {
    return localStorage.getItem(STORED_RPC);
  } catch {
    return null; // storage refused (private mode, policy): the site's endpoint
  }
}

function verifyPage() {
  const form = document.getElementById("verify-form");
  const input = document.getElementById("bundle-text");
  const file = document.getElementById("bundle-file");
  const drop = document.getElementById("drop-zone");
  const out = document.getElementById("verify-result");
  const ocidForm = document.getElementById("ocid-form");
  const rpcForm = document.getElementById("rpc-form");
  const rpcInput = document.getElementById("rpc-url");
  const cli = document.getElementById("cli-command");
  let endpoint = storedRpc() || config.rpcUrl;
  const showEndpoint = () => {
    rpcInput.value = new URL(endpoint, location.href).href;
    cli.textContent = `tenderproof-verify bundle.json --rpc ${new URL(endpoint, location.href).href}`;
  };
  showEndpoint();
  const verify = async (bundle) => {
    out.replaceChildren(el("p", { class: "notice" }, t("verifying")));
    const key = bundle && bundle.format === "tenderproof-bundle/2" && bundle.checkpoint ? await checkpointKey() : null;
    const report = await verifyBundle(bundle, { rpc: new Rpc(endpoint, { timeout: rpcTimeout() }), checkpointKey: key, confirmations: config.confirmations || 1 });
    renderReport(out, report, () => verify(bundle));
  };
  const verifyText = async (value) => {
    let bundle;
    try {
      bundle = JSON.parse(value);
    } catch (err) {
      renderReport(out, { status: "invalid", events: [], failures: [{ where: { key: "w_format", values: {} }, reason: { key: "not_json", values: { reason: err.message } } }] });
      return;
    }
    await verify(bundle);
  };
  const readFile = async (f) => {
    input.value = await f.text();
    await verifyText(input.value);
  };
  rpcForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = rpcInput.value.trim();
    let url;
    try {
      url = new URL(chosen);
    } catch {
      url = null;
    }
    if (!url || !/^https?:$/.test(url.protocol)) {
      rpcInput.setCustomValidity(t("rpc_bad_url"));
      rpcInput.reportValidity();
      return;
    }
    rpcInput.setCustomValidity("");
    endpoint = url.href;
    try {
      localStorage.setItem(STORED_RPC, endpoint);
    } catch {
      // not remembered; still used on this page
    }
    showEndpoint();
  });
  document.getElementById("rpc-reset").addEventListener("click", () => {
    try {
      localStorage.removeItem(STORED_RPC);
    } catch {
      // nothing was stored
    }
    endpoint = config.rpcUrl;
    rpcInput.setCustomValidity("");
    showEndpoint();
  });
  const keyForm = document.getElementById("key-form");
  const keyInput = document.getElementById("checkpoint-key");
  try {
    keyInput.value = localStorage.getItem(STORED_KEY) || "";
  } catch {
    keyInput.value = "";
  }
  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      if (keyInput.value.trim()) localStorage.setItem(STORED_KEY, keyInput.value.trim());
      else localStorage.removeItem(STORED_KEY);
    } catch {
      // not remembered
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    verifyText(input.value);
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
    let bundle;
    try {
      bundle = await fetchBundle(`${config.bundleBase}/${encodeURIComponent(ocid)}/bundle`);
    } catch (err) {
      const failed = { status: "unchecked", events: [], failures: [], unavailable: [{ where: { key: "w_bundle", values: {} }, reason: err.message }] };
      renderReport(out, failed, () => verifyOcid(ocid));
      return;
    }
    if (bundle === null) {
      renderReport(out, { status: "pending", ocid, events: [], failures: [], unavailable: [] });
      out.append(el("p", {}, t("no_bundle", { ocid })));
      return;
    }
    input.value = JSON.stringify(bundle, null, 2);
    await verify(bundle);
  };
  ocidForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const ocid = document.getElementById("ocid").value.trim();
    if (ocid) verifyOcid(ocid);
  });
  const initial = new URLSearchParams(location.search).get("ocid");
  if (initial) verifyOcid(initial);
}

/** Copy-link buttons (hidden without this script): copy their field's URL to the clipboard. */
function copyButtons() {
  for (const button of document.querySelectorAll("[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    const said = button.parentElement.querySelector("[data-copied]");
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(field.value);
        if (said) said.textContent = t("copied");
      } catch {
        field.select(); // no clipboard permission: the link is selected for the visitor to copy
        if (said) said.textContent = t("copy_by_hand");
      }
    });
  }
}

/** The printable verification certificate of a report: what was verified, when, against which
 * chain and contract, and the command that re-checks it (print stylesheet: site.css @media print). */
function certificate(report) {
  const chain = report.chain || {};
  const rows = [
    [t("cert_what"), t("cert_what_value", { ocid: report.ocid || "?", count: report.events.length }), ""],
    [t("cert_result"), t(HEADINGS[report.status], { count: report.failures.length }), ""],
    [t("cert_when"), `${dateFormat.format(new Date())} UTC`, ""],
    [t("cert_chain"), `${config.chainName || "?"} (${t("chain_id")} ${chain.chain_id ?? "?"})`, ""],
    [t("cert_contract"), chain.contract || "?", "mono"],
    [t("cert_command"), document.getElementById("cli-command")?.textContent || `tenderproof-verify bundle.json --rpc ${config.rpcUrl}`, "mono"],
  ];
  const list = el("dl", { class: "proof" });
  for (const [term, value, kind] of rows) list.append(el("div", {}, el("dt", {}, term), el("dd", { class: kind }, value)));
  const print = el("button", { type: "button", class: "button-quiet no-print" }, t("cert_print"));
  print.addEventListener("click", () => window.print());
  return el("section", { class: "certificate", "data-certificate": report.status }, el("h3", {}, t("cert_title")), list, el("p", { class: "small" }, t("cert_means")), print);
}

copyButtons();
if (document.body.dataset.page === "tender") tenderPage();
else if (document.body.dataset.page === "verify") verifyPage();
