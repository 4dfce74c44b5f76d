// One memory: its text, metadata, times, source messages and history; edit, delete, and forget its whole tenant.

import { InputError, op } from "../api.js";
import { field, go, h, href, link, metadataText, notice, onSubmit, parseObject, replace, scopeText, table, time }
  from "../dom.js";

export async function render(main, ctx) {
  const scope = ctx.params.get("scope") || "";
  const id = ctx.params.get("id") || "";
  const ask = { scope, memory_id: id };
  const [memory, history] = await Promise.all([op(ctx.store, "get", ask), op(ctx.store, "history", ask)]);
  const sources = await sourceMessages(ctx.store, memory);
  const out = h("div", { "aria-live": "polite" });
  replace(main,
    h("h1", {}, "Memory"),
    h("nav", { class: "crumbs" }, link("memories", { store: ctx.store, scope }, `Memories of ${scope}`)),
    out,
    h("dl", { class: "fields", id: "memory-fields" },
      h("dt", {}, "Text"), h("dd", { id: "memory-text" }, memory.text),
      h("dt", {}, "Id"), h("dd", { class: "mono" }, memory.id),
      h("dt", {}, "Scope"), h("dd", { class: "mono" }, scopeText(memory.scope)),
      h("dt", {}, "Type"), h("dd", {}, memory.memory_type),
      h("dt", {}, "Speaker"), h("dd", {}, memory.speaker || "—"),
      h("dt", {}, "Metadata"), h("dd", { class: "mono" }, metadataText(memory.metadata) || "—"),
      h("dt", {}, "Created"), h("dd", {}, time(memory.created_at)),
      h("dt", {}, "Updated"), h("dd", {}, time(memory.updated_at)),
      h("dt", {}, "Event time"), h("dd", {}, time(memory.event_time))),
    h("h2", {}, "Source messages"),
    sources.length ? h("ol", { class: "transcript" }, sources.map((m) => h("li", { class: m.role },
      h("div", { class: "who" }, `${m.role}${m.name ? ` (${m.name})` : ""} · `, time(m.timestamp)),
      h("div", { class: "content" }, m.content)))) : h("p", { class: "muted" }, "None (written directly, or messages cleared)."),
    h("p", {}, link("transcript", { store: ctx.store, scope: scopeText(memory.scope) }, "The whole conversation of this run")),
    h("h2", {}, "History"),
    historyTable(history),
    ctx.me.read_only ? h("p", { class: "muted" }, "This key is read-only: editing and deleting need another key.")
      : [editForm(ctx, memory, ask, out), deleteForm(ctx, ask, out), forgetTenant(ctx, memory)]);
}

/** The run's messages the memory was made from (the run is read page by page until all are found). */
async function sourceMessages(store, memory) {
  const wanted = new Set(memory.source_message_ids);
  const found = [];
  let cursor;
  for (let pages = 0; wanted.size && pages < 20; pages++) {
    const page = await op(store, "messages", { scope: scopeText(memory.scope), limit: 100, cursor });
    for (const m of page.items) if (wanted.delete(m.id)) found.push(m);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  return found;
}

function historyTable(history) {
  const change = (before, after) => (before === after || before === null ? after ?? "" : [
    h("del", {}, before ?? ""), " → ", h("ins", {}, after ?? "")]);
  return table([
    { title: "Event", cell: (e) => h("span", { class: `event-${e.event}` }, e.event) },
    { title: "When", cell: (e) => time(e.time) },
    { title: "Text", class: "text", cell: (e) => change(e.old_text, e.new_text) },
    { title: "Metadata", cell: (e) => change(metadataText(e.old_metadata) || null, metadataText(e.new_metadata)) },
    { title: "Request", cell: (e) => h("span", { class: "mono" }, e.request_id) },
    { title: "Source messages", cell: (e) => e.source_message_ids.length },
  ], history, "History, oldest first");
}

function editForm(ctx, memory, ask, out) {
  const form = h("form", { class: "panel narrow", id: "edit-memory" },
    field("Text", h("textarea", { name: "text" }, memory.text)),
    field("Metadata", h("textarea", { name: "metadata" }, JSON.stringify(memory.metadata, null, 1)),
      'a JSON object; {} for none'),
    h("button", { type: "submit" }, "Save changes"));
  onSubmit(form, out, async (data) => {
    const text = String(data.get("text"));
    if (!text.trim()) throw new InputError("text", "must not be empty; delete the memory instead");
    const metadata = parseObject("metadata", String(data.get("metadata")), {});
    await op(ctx.store, "update", { ...ask, text, metadata });
    go(href("memory", Object.fromEntries(ctx.params.entries())));
  });
  return [h("h2", {}, "Edit"), form];
}

function deleteForm(ctx, ask, out) {
  const form = h("form", { class: "actions", id: "delete-memory" },
    h("label", { class: "inline" }, h("input", { type: "checkbox", name: "sure" }), "I want to delete this memory"),
    h("button", { type: "submit", class: "danger" }, "Delete memory"));
  onSubmit(form, out, async (data) => {
    if (!data.get("sure")) throw new InputError("delete", "tick the box first: a deleted memory cannot be restored");
    await op(ctx.store, "delete", ask);
    replace(out, notice("Memory deleted. Its history keeps the deletion."));
    go(href("memories", { store: ctx.store, scope: ctx.params.get("scope") }));
  });
  return [h("h2", {}, "Delete"), form];
}

/** delete_all for the memory's tenant: the tenant id must be typed to confirm, it erases everything of that user. */
function forgetTenant(ctx, memory) {
  const tenant = memory.scope.tenant_id;
  const result = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "panel narrow", id: "forget-tenant" },
    field(`Type the tenant id "${tenant}" to confirm`, h("input", { name: "confirm", autocomplete: "off" })),
    h("button", { type: "submit", class: "danger" }, `Forget tenant ${tenant}`));
  onSubmit(form, result, async (data) => {
    if (data.get("confirm") !== tenant) {
      throw new InputError("confirmation", `type ${tenant} exactly; nothing was deleted`);
    }
    const erased = await op(ctx.store, "delete_all", { scope: `${memory.scope.app_id}/${tenant}/*/*` });
    replace(form.parentElement, h("h2", {}, "Tenant forgotten"), notice(`Tenant ${tenant} forgotten: ${erased.memories} memories, `
      + `${erased.history} history events, ${erased.messages} messages and ${erased.jobs} jobs erased `
      + `(request ${erased.request_id}).`));
  });
  return h("section", { class: "danger-zone", "aria-labelledby": "forget-title" },
    h("h2", { id: "forget-title" }, "Forget this tenant"),
    h("p", {}, `Erases every memory, history event, message and extraction job of tenant ${tenant} in store ${ctx.store}. `
      + "It cannot be undone."), form, result);
}
