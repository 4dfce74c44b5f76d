// The search playground: a query over a scope with the ranking's knobs; each hit with its score and the signals
// behind it, so a developer sees why a memory ranked where it did.

import { InputError, op } from "../api.js";
import { field, h, link, list, metadataText, onSubmit, parseCount, parseObject, replace, scopeText } from "../dom.js";

export async function render(main, ctx) {
  const out = h("div", { "aria-live": "polite", id: "search-results" });
  const form = h("form", { class: "filters", id: "search-form" },
    field("Query", h("input", { name: "query", type: "search" })),
    field("Scope", h("input", { name: "scope", value: ctx.defaultScope }), "app/tenant/agent/run; * any, [a,b] a list"),
    field("Top k", h("input", { name: "top_k", value: "10", inputmode: "numeric" }), "1 to 100"),
    field("Memory types", h("input", { name: "types" }), "comma-separated"),
    field("Metadata filters", h("input", { name: "filters" }), 'JSON, e.g. {"topic": "food"}'),
    h("label", { class: "inline" }, h("input", { type: "checkbox", name: "rerank", checked: true }), "Rerank"),
    h("button", { type: "submit" }, "Search"));
  onSubmit(form, out, async (data) => {
    const query = String(data.get("query"));
    if (!query.trim()) throw new InputError("query", "type what to look for");
    const results = await op(ctx.store, "search", {
      query,
      scope: String(data.get("scope")).trim(),
      top_k: parseCount("top k", String(data.get("top_k")), 1, 100),
      rerank: data.get("rerank") === "on",
      memory_types: data.get("types") ? list(String(data.get("types"))) : undefined,
      filters: parseObject("metadata filters", String(data.get("filters"))),
      explain: true,
    });
    replace(out, hits(ctx, results));
  });
  replace(main, h("h1", {}, `Search ${ctx.store || "(no store chosen)"}`),
    h("p", { class: "muted" }, "Each hit shows the signals its score is made of: semantic (embedding similarity), "
      + "lexical (full-text match), speaker (the query names who said it), date (it is from a period the query "
      + "names), detail (how much the text says), assistant (the assistant said it), and evidence, their weighted "
      + "sum; the score is the evidence calibrated into an estimate of relevance from 0 to 1."), form, out);
}

function hits(ctx, results) {
  const summary = h("p", { class: "muted" }, `${results.hits.length} hits from ${results.usage.candidates} candidates; `
    + `${results.usage.query_tokens} query tokens; request ${results.request_id}.`);
  if (!results.hits.length) return [summary, h("p", {}, "No memory matched.")];
  return [summary, h("ol", { class: "hits" }, results.hits.map((hit, rank) => h("li", { class: "hit" },
    h("div", { class: "actions" },
      h("span", { class: "score", title: "score: 0 to 1, higher is more relevant" }, `#${rank + 1} · score ${hit.score.toFixed(4)}`),
      link("memory", { store: ctx.store, scope: scopeText(hit.memory.scope), id: hit.memory.id }, hit.memory.text)),
    h("div", { class: "muted" }, `${hit.memory.memory_type} · ${scopeText(hit.memory.scope)}`,
      hit.memory.speaker ? ` · said by ${hit.memory.speaker}` : "", ` ${metadataText(hit.memory.metadata)}`),
    signals(hit.signals))))];
}

// Signals not in [0, 1], shown without a bar.
const UNBOUNDED = {
  bm25: "the raw full-text score; lexical is it squashed into 0–1",
  evidence: "the signals' weighted sum (a logit); the score is it calibrated into 0–1",
};

/** The signals behind a score as a small table, with bars for those in [0, 1] (see memory_plugin/retrieval.py). */
function signals(values) {
  if (!values) return null;
  return h("table", { class: "signals", "aria-label": "Signals behind the score" },
    h("tbody", {}, Object.entries(values).map(([name, value]) => {
      let scale = h("span", { class: "muted" }, UNBOUNDED[name] || "");
      if (!UNBOUNDED[name]) {
        scale = h("div", { class: "bar" });
        scale.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
      }
      return h("tr", {}, h("th", { scope: "row" }, name), h("td", { class: "num" }, value.toFixed(4)), h("td", {}, scale));
    })));
}
