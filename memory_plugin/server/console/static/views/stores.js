// Stores: every store of the data folder with its counts (as the key sees them); create and delete for admin keys.

import { createStore, deleteStore, InputError, listStores, op } from "../api.js";
import { field, h, link, notice, onSubmit, replace, table, time } from "../dom.js";

export async function render(main, ctx) {
  const stores = await listStores();
  const scope = `${ctx.me.app_id}/*/*/*`;
  const counted = await Promise.all(stores.map(async (store) => {
    try {
      return { store, stats: await op(store.name, "stats", { scope }) };
    } catch (error) {
      return { store, error };
    }
  }));
  const count = (key) => (row) => (row.stats ? row.stats[key] : row.error.message);
  const out = h("div", { "aria-live": "polite" });
  replace(main,
    h("h1", {}, "Stores"),
    h("p", { class: "muted" }, `Counts are of app ${ctx.me.app_id}`,
      ctx.me.tenant_ids ? ` and tenants ${ctx.me.tenant_ids.join(", ")} (this key's bounds)` : "", "."),
    table([
      { title: "Store", cell: (r) => link("scopes", { store: r.store.name }, r.store.name) },
      { title: "Description", cell: (r) => r.store.description },
      { title: "Memories", class: "num", cell: count("memories") },
      { title: "Messages", class: "num", cell: count("messages") },
      { title: "Tenants", class: "num", cell: count("tenants") },
      { title: "Pending jobs", class: "num", cell: count("pending_jobs") },
      { title: "Failed jobs", class: "num", cell: count("failed_jobs") },
      { title: "Embedder", cell: (r) => `${r.store.embedder} (${r.store.dimension})` },
      { title: "Created", cell: (r) => time(r.store.created_at) },
      ...(ctx.me.admin ? [{ title: "Delete", cell: (r) => deleteButton(main, r.store.name, out, ctx) }] : []),
    ], counted, "Memory stores"),
    out,
    ctx.me.admin ? createForm(out, ctx) : h("p", { class: "muted" }, "Creating and deleting stores needs an admin key."));
}

function createForm(out, ctx) {
  const form = h("form", { class: "panel", id: "create-store" },
    field("Name", h("input", { name: "name" }), "letters, digits, '_.-'"),
    field("Description", h("input", { name: "description" })),
    h("button", { type: "submit" }, "Create store"));
  onSubmit(form, out, async (data) => {
    const created = await createStore({ name: data.get("name").trim(), description: data.get("description") });
    await ctx.refreshStores();
    ctx.chooseStore(created.name);
  });
  return [h("h2", {}, "Create a store"), form];
}

/** Deleting a store erases every memory in it: the name must be typed again to confirm. */
function deleteButton(main, name, out, ctx) {
  return h("button", {
    type: "button", class: "danger", "aria-label": `Delete store ${name}`,
    onclick: () => {
      const typed = h("input", { name: "confirm", "aria-label": `Type ${name} to confirm` });
      const form = h("form", { class: "panel narrow", id: "delete-store" },
        field(`Delete store ${name} and everything in it? Type its name to confirm.`, typed),
        h("button", { type: "submit", class: "danger" }, "Delete store"));
      const result = h("div");
      onSubmit(form, result, async () => {
        if (typed.value !== name) throw new InputError("confirmation", `type ${name} exactly to delete this store`);
        await deleteStore(name);
        sessionStorage.removeItem("memory_plugin.console.store");
        await ctx.refreshStores();
        await render(main, ctx);
        main.prepend(notice(`Store ${name} deleted.`));
      });
      replace(out, form, result);
      typed.focus();
    },
  }, "Delete");
}
