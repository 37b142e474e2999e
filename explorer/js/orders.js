// Withholding orders in the browser (docs/spec.md §3.1, §15.2 step 6; docs/privacy.md): the checks of
// verifier/check.py _check_orders and of ledger/core/bundle.py's reading of ``withheld``, one for one.
// An event whose payload (or some of its v2 fields) is withheld must name an order the bundle
// carries, proven into a cited anchor, that targets it; anything else is a payload dropped without
// an order, and the bundle is invalid.
import { isSize, pyRepr } from "./shared.js";
import { checkIncluded, checkLeaf, msg, payloadProblem } from "./verify.js";

export const ORDERS_OCID = "ocds-tpreg0-orders";
export const ORDER_TYPE = "privacy.withholding";
const EARLIER = "earlier"; // an order of withheld.earlier: it withheld fields before the whole payload
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Why an event's ``payload``/``withheld`` pair is malformed (ledger/core/bundle.py _load_event), as a
 * message, or null: a null payload needs a non-empty reason or its order ({order, reference}); a
 * payload that is shown has no ``withheld``.
 */
export function withheldProblem(event) {
  const { payload, withheld } = event;
  if (payload === null || payload === undefined) {
    if (isObject(withheld)) {
      const { earlier, ...citation } = withheld;
      const problem = citationProblem(citation);
      if (problem || earlier === undefined) return problem;
      // the orders that withheld fields of it before: at least one, each once, in log order, all before its order
      if (!Array.isArray(earlier) || !earlier.length) return msg("r_withheld_earlier");
      for (const cited of earlier) {
        const problem = isObject(cited) ? citationProblem(cited) : msg("r_withheld_order");
        if (problem) return problem;
      }
      const orders = earlier.map((cited) => cited.order);
      if (orders.some((order, i) => (i > 0 && order <= orders[i - 1]) || order >= withheld.order)) return msg("r_withheld_earlier");
      return null;
    }
    return typeof withheld === "string" && withheld ? null : msg("r_withheld_missing");
  }
  return withheld === undefined || withheld === null ? null : msg("r_withheld_shown");
}

/** Why an order citation ({order, reference}) is malformed, or null. */
function citationProblem(citation) {
  const members = Object.keys(citation).sort().join(",");
  if (members !== "order,reference" || !isSize(citation.order) || typeof citation.order !== "number") return msg("r_withheld_order");
  if (typeof citation.reference !== "string" || !citation.reference) return msg("r_withheld_reference");
  return null;
}

/** How a withheld payload is reported: the bundle's reason, or its order (a message). */
export function withheldReport(withheld) {
  if (isObject(withheld)) return msg("withheld_under", { reference: withheld.reference, order: withheld.order });
  return typeof withheld === "string" ? withheld : null;
}

/**
 * verifier/check.py _check_orders: each order the bundle carries is a ``privacy.withholding`` event
 * of ``ocds-tpreg0-orders`` of this log, its payload and leaf hash hold, and it is included in a cited
 * anchor (or later than every anchor); each event withheld under an order (whole, or fields of a v2
 * payload) names an order so proven, which targets it (its reference too, for a whole payload).
 * ``events`` are verify.js's event reports, in the bundle's order.
 */
export async function checkOrders(bundle, anchors, events, fail) {
  const newest = Math.max(0, ...anchors.keys());
  const orders = new Map(); // log index -> the order's payload
  const carried = Array.isArray(bundle.orders) ? bundle.orders : [];
  for (const [i, event] of carried.entries()) {
    const where = msg("w_order_event", { position: i });
    const env = isObject(event) && isObject(event.envelope) ? event.envelope : null;
    if (!env) {
      fail(where, msg("r_env_missing"));
      continue;
    }
    if (env.ocid !== ORDERS_OCID || env.type !== ORDER_TYPE || env.origin !== bundle.origin) {
      fail(where, msg("w_not_order", { type: String(env.type), ocid: String(env.ocid), origin: String(env.origin) }));
      continue;
    }
    if (!isObject(event.payload) || !isSize(event.index)) {
      fail(where, msg("w_order_required"));
      continue;
    }
    const problem = await payloadProblem(env, event.payload, event.disclosure);
    if (problem) {
      fail(where, problem);
      continue;
    }
    const { leaf, held } = await checkLeaf(fail, where, event);
    if (!held) continue;
    if (!event.inclusion) {
      if (event.index < newest) {
        fail(where, msg("w_order_escaped", { index: event.index, size: newest }));
        continue;
      }
    } else if (!(await checkIncluded(fail, where, event, leaf, anchors, { noAnchor: "w_order_no_anchor" }))) continue;
    orders.set(event.index, event.payload);
  }
  for (const [position, event] of bundle.events.entries()) {
    const report = events[position];
    if (!report || !isObject(event)) continue;
    const whole = event.payload === null && isObject(event.withheld) ? event.withheld : null;
    // order's log index -> null (the whole payload), EARLIER (the fields it names) or [pointer, ...]
    const named = new Map();
    const claimed = new Map(); // order's log index -> the reference the bundle gives it
    if (whole) {
      named.set(whole.order, null);
      claimed.set(whole.order, whole.reference);
      for (const cited of Array.isArray(whole.earlier) ? whole.earlier : []) {
        named.set(cited.order, EARLIER);
        claimed.set(cited.order, cited.reference);
      }
    }
    for (const [pointer, order] of Object.entries(report.withheld_fields || {})) {
      if (!named.has(order)) named.set(order, []);
      named.get(order).push(pointer);
    }
    const where = msg("w_event", { seq: report.seq, position });
    for (const [order, fields] of named) {
      const payload = orders.get(order);
      if (payload === undefined) {
        fail(where, msg("r_order_not_carried", { order }), report);
        continue;
      }
      if (claimed.has(order) && payload.reference !== claimed.get(order)) {
        const said = typeof payload.reference === "string" ? pyRepr(payload.reference) : "None";
        fail(where, msg("r_order_reference", { got: pyRepr(String(claimed.get(order))), expected: said }), report);
      }
      const targets = (Array.isArray(payload.targets) ? payload.targets : []).filter((t) => isObject(t) && t.index === report.index);
      let ok;
      if (fields === null) ok = targets.some((t) => !("fields" in t));
      else if (fields === EARLIER) {
        // withheld whole since: the fields are those the order names (a field withheld first by an
        // earlier order stays reported under it)
        const pointers = targets.flatMap((t) => (Array.isArray(t.fields) ? t.fields : []));
        ok = pointers.length > 0 && (report.index === null || order > report.index);
        if (ok) report.withheld_fields = { ...Object.fromEntries(pointers.map((p) => [String(p), order])), ...(report.withheld_fields || {}) };
      } else
        ok = targets.some((t) => {
          const named = new Set(Array.isArray(t.fields) ? t.fields : []);
          return fields.every((f) => named.has(f));
        });
      if (!ok) {
        const what = fields === null ? msg("r_order_whole") : fields === EARLIER ? msg("r_order_fields") : fields.join(", ");
        fail(where, msg("r_order_not_target", { order, what, index: report.index }), report);
      }
    }
  }
}
