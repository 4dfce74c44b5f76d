// Memories: a table filtered by scope (wildcards and id lists), memory type, metadata and time range, page by page.

import { op } from "../api.js";
import { field, h, link, list, metadataText, parseObject, parseTime, scopeText, table, time } from "../dom.js";
import { renderListing } from "./listing.js";

export async function render(main, ctx) {
  const p = ctx.params;
  const wanted = { scope: p.get("scope") || ctx.defaultScope, types: p.get("types") || "",
    filters: p.get("filters") || "", start: p.get("start") || "", end: p.get("end") || "" };
  const limit = p.get("limit") || "20";
  const form = h("form", { class: "filters", id: "memory-filters" },
    field("Scope", h("input", { name: "scope", value: wanted.scope }), "app/tenant/agent/run; * any, [a,b] a list"),
    field("Memory types", h("input", { name: "types", value: wanted.types }), "comma-separated, e.g. fact,event"),
    field("Metadata filters", h("input", { name: "filters", value: wanted.filters }), 'JSON, e.g. {"topic": "food"}'),
    field("From", h("input", { name: "start", type: "datetime-local", value: wanted.start })),
    field("To", h("input", { name: "end", type: "datetime-local", value: wanted.end })),
    field("Per page", h("select", { name: "limit" }, ["20", "50", "100"].map((n) =>
      h("option", { value: n, selected: limit === n }, n)))),
    h("button", { type: "submit" }, "Show memories"));
  await renderListing(main, ctx, {
    view: "memories",
    title: `Memories in ${ctx.store || "(no store chosen)"}`,
    form,
    check: query,
    load: (cursor) => op(ctx.store, "list", { ...query(wanted), limit: Number(limit), cursor }),
    show: (items) => table([
      { title: "Text", class: "text",
        cell: (m) => link("memory", { store: ctx.store, scope: scopeText(m.scope), id: m.id }, m.text) },
      { title: "Type", cell: (m) => m.memory_type },
      { title: "Scope", cell: (m) => h("span", { class: "mono" }, scopeText(m.scope)) },
      { title: "Metadata", cell: (m) => h("span", { class: "mono" }, metadataText(m.metadata)) },
      { title: "Updated", cell: (m) => time(m.updated_at) },
    ], items, `Memories of ${wanted.scope}`),
  });
}

/** The list request's filters from the form's text, or InputError naming the field. */
function query(form) {
  return {
    scope: form.scope,
    memory_types: form.types ? list(form.types) : undefined,
    filters: parseObject("metadata filters", form.filters || ""),
    start_time: parseTime("from", form.start),
    end_time: parseTime("to", form.end),
  };
}
