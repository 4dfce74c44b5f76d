// Audit: the store's request records, newest first, filtered by operation, scope, outcome and access key.

import { InputError, isKeyId, op } from "../api.js";
import { field, h, scopeText, table, time } from "../dom.js";
import { renderListing } from "./listing.js";

// The audit's operation names (memory_plugin.ops.base.OPERATION_NAMES).
const OPERATIONS = ["AddMemories", "SearchMemories", "ListMemories", "GetMemory", "UpdateMemory", "DeleteMemory",
  "GetHistory", "ListMessages", "DeleteMessages", "DeleteAll", "PruneStore", "ListRequests", "Flush", "ExtractMemories",
  "ListExtractionJobs", "RetryExtraction", "ListScopes", "StoreStats", "ActivityStats"];

export async function render(main, ctx) {
  const p = ctx.params;
  const wanted = { operation: p.get("operation") || "", scope: p.get("scope") || ctx.defaultScope,
    outcome: p.get("outcome") || "", key: p.get("key") || "" };
  const form = h("form", { class: "filters", id: "audit-filters" },
    field("Operation", h("select", { name: "operation" }, h("option", { value: "" }, "any"),
      OPERATIONS.map((o) => h("option", { value: o, selected: o === wanted.operation }, o)))),
    field("Scope", h("input", { name: "scope", value: wanted.scope })),
    field("Outcome", h("input", { name: "outcome", value: wanted.outcome, list: "outcomes" }),
      "ok, error, or an error class such as ForbiddenError"),
    h("datalist", { id: "outcomes" }, ["ok", "error", "InvalidArgumentError", "ForbiddenError", "MemoryNotFoundError"]
      .map((o) => h("option", { value: o }))),
    field("Access key id", h("input", { name: "key", value: wanted.key, placeholder: "mpk_…" })),
    h("button", { type: "submit" }, "Show requests"));
  await renderListing(main, ctx, {
    view: "audit",
    title: `Audit of ${ctx.store || "(no store chosen)"}`,
    form,
    check: (asked) => {
      if (asked.key && !isKeyId(asked.key)) {
        throw new InputError("access key id", "must be mpk_ followed by 20 characters, as `memory-plugin keys list` shows");
      }
    },
    load: (cursor) => op(ctx.store, "requests", { scope: wanted.scope, operation: wanted.operation || undefined,
      outcome: wanted.outcome || undefined, key_id: wanted.key || undefined, limit: 50, cursor }),
    show: (items) => table([
      { title: "When", cell: (r) => time(r.time) },
      { title: "Operation", cell: (r) => r.operation },
      { title: "Scope", cell: (r) => h("span", { class: "mono" }, scopeText(r.scope)) },
      { title: "Outcome", cell: (r) => h("span", { class: r.outcome === "ok" ? "outcome-ok" : "outcome-error" },
        r.outcome, r.error ? `: ${r.error}` : "") },
      { title: "Latency ms", class: "num", cell: (r) => r.latency_ms.toFixed(1) },
      { title: "Counts", cell: (r) => Object.entries(r.counts).map(([k, v]) => `${k} ${v}`).join(", ") },
      { title: "Key", cell: (r) => h("span", { class: "mono" }, r.key_id || "in-process") },
      { title: "Request", cell: (r) => h("span", { class: "mono" }, r.request_id) },
    ], items, "Requests, newest first"),
  });
}
