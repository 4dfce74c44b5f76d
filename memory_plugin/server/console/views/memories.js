// Memories: a table filtered by scope (wildcards and id lists), memory type, metadata and time range, page by page.

import { op } from "../api.js";
import { errorBox, field, go, h, href, link, list, metadataText, onSubmit, parseObject, parseTime, replace, scopeText,
  table, time } from "../dom.js";

export async function render(main, ctx) {
  const p = ctx.params;
  const scope = p.get("scope") || ctx.defaultScope;
  const out = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "filters", id: "memory-filters" },
    field("Scope", h("input", { name: "scope", value: scope }), "app/tenant/agent/run; * any, [a,b] a list"),
    field("Memory types", h("input", { name: "types", value: p.get("types") || "" }), "comma-separated, e.g. fact,event"),
    field("Metadata filters", h("input", { name: "filters", value: p.get("filters") || "" }), 'JSON, e.g. {"topic": "food"}'),
    field("From", h("input", { name: "start", type: "datetime-local", value: p.get("start") || "" })),
    field("To", h("input", { name: "end", type: "datetime-local", value: p.get("end") || "" })),
    field("Per page", h("select", { name: "limit" }, ["20", "50", "100"].map((n) =>
      h("option", { value: n, selected: (p.get("limit") || "20") === n }, n)))),
    h("button", { type: "submit" }, "Show memories"));
  onSubmit(form, out, async (data) => {
    const wanted = Object.fromEntries([...data.entries()].map(([k, v]) => [k, String(v).trim()]));
    query(wanted);  // checked here, so a mistake is shown before the address changes
    go(href("memories", { store: ctx.store, ...wanted }));
  });
  replace(main, h("h1", {}, `Memories in ${ctx.store || "(no store chosen)"}`), form, out);
  if (!ctx.store) return;
  const cursor = p.get("cursor") || undefined;
  let page;
  try {
    page = await op(ctx.store, "list", { ...query({ scope, types: p.get("types") || "", filters: p.get("filters") || "",
      start: p.get("start") || "", end: p.get("end") || "" }), limit: Number(p.get("limit") || 20), cursor });
  } catch (error) {
    replace(out, errorBox(error));
    return;
  }
  const here = Object.fromEntries(p.entries());
  replace(out,
    table([
      { title: "Text", class: "text", cell: (m) => link("memory", { store: ctx.store, scope: scopeText(m.scope), id: m.id }, m.text) },
      { title: "Type", cell: (m) => m.memory_type },
      { title: "Scope", cell: (m) => h("span", { class: "mono" }, scopeText(m.scope)) },
      { title: "Metadata", cell: (m) => h("span", { class: "mono" }, metadataText(m.metadata)) },
      { title: "Updated", cell: (m) => time(m.updated_at) },
    ], page.items, `Memories of ${scope}`),
    h("div", { class: "pager" },
      cursor ? h("a", { href: href("memories", { ...here, cursor: "" }) }, "First page") : null,
      page.next_cursor ? h("a", { href: href("memories", { ...here, store: ctx.store, cursor: page.next_cursor }) }, "Next page")
        : null));
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
