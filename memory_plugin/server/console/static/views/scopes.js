// Scopes: the tenants of the app, then the agents and runs of a tenant, with counts; a run's messages as a transcript.

import { op } from "../api.js";
import { h, href, link, replace, table, time } from "../dom.js";

const LEVELS = [
  { level: "tenant_id", title: "Tenants" },
  { level: "agent_id", title: "Agents" },
  { level: "run_id", title: "Runs" },
];

export async function render(main, ctx) {
  const app = ctx.me.app_id;
  const tenant = ctx.params.get("tenant");
  const agent = tenant && ctx.params.get("agent");
  const depth = agent ? 2 : tenant ? 1 : 0;
  const scope = `${app}/${tenant || "*"}/${agent || "*"}/*`;
  const { level, title } = LEVELS[depth];
  const cursor = ctx.params.get("cursor") || undefined;
  const page = await op(ctx.store, "scopes", { scope, level, limit: 50, cursor });
  const deeper = (row) => {
    if (depth === 0) return link("scopes", { store: ctx.store, tenant: row.id }, row.id);
    if (depth === 1) return link("scopes", { store: ctx.store, tenant, agent: row.id }, row.id);
    return link("transcript", { store: ctx.store, scope: `${app}/${tenant}/${agent}/${row.id}` }, row.id);
  };
  const rowScope = (row) => [app, depth === 0 ? row.id : tenant, depth === 1 ? row.id : agent || "*",
    depth === 2 ? row.id : "*"].join("/");
  replace(main,
    h("h1", {}, `${title} of ${scope.replace(/(\/\*)+$/, "")}`),
    crumbs(ctx, app, tenant, agent),
    table([
      { title: title.slice(0, -1), cell: deeper },
      { title: "Memories", class: "num", cell: (r) => r.memories },
      { title: "Messages", class: "num", cell: (r) => r.messages },
      { title: "Last active", cell: (r) => time(r.last_active) },
      { title: "", cell: (r) => link("memories", { store: ctx.store, scope: rowScope(r) }, "memories") },
    ], page.items, `${title} in store ${ctx.store}`),
    h("div", { class: "pager" },
      cursor ? link("scopes", { store: ctx.store, tenant, agent }, "First page") : null,
      page.next_cursor ? link("scopes", { store: ctx.store, tenant, agent, cursor: page.next_cursor }, "Next page") : null));
}

function crumbs(ctx, app, tenant, agent) {
  return h("nav", { class: "crumbs", "aria-label": "Scope path" },
    link("scopes", { store: ctx.store }, `${ctx.store}: ${app}`),
    tenant ? [" / ", link("scopes", { store: ctx.store, tenant }, tenant)] : null,
    agent ? [" / ", link("scopes", { store: ctx.store, tenant, agent }, agent)] : null);
}

/** A run's short-term messages, in order, as a conversation (every page, up to a limit). */
export async function renderTranscript(main, ctx) {
  const scope = ctx.params.get("scope") || "";
  const messages = [];
  let cursor;
  let truncated = false;
  for (let pages = 0; ; pages++) {
    if (pages === 20) {
      truncated = true;
      break;
    }
    const page = await op(ctx.store, "messages", { scope, limit: 100, cursor });
    messages.push(...page.items);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  const [app, tenant, agent] = scope.split("/");
  replace(main,
    h("h1", {}, `Transcript of ${scope}`),
    crumbs(ctx, app, tenant, agent),
    h("p", {}, h("a", { href: href("memories", { store: ctx.store, scope }) }, "Memories of this run")),
    messages.length ? h("ol", { class: "transcript" }, messages.map((m) => h("li", { class: m.role, id: `msg-${m.id}` },
      h("div", { class: "who" }, `${m.role}${m.name ? ` (${m.name})` : ""} · `, time(m.timestamp)),
      h("div", { class: "content" }, m.content)))) : h("p", { class: "muted" }, "No messages in this run."),
    truncated ? h("p", { class: "muted" }, "Only the first 2000 messages are shown.") : null);
}
