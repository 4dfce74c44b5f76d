// The console's shell: sign-in, the store selector and a hash router ("#/view?param=value") over the views.

import { credentials, listStores, signIn, signOut, whoami } from "./api.js";
import { errorBox, field, go, h, href, replace } from "./dom.js";
import * as audit from "./views/audit.js";
import * as charts from "./views/charts.js";
import * as jobs from "./views/jobs.js";
import * as memories from "./views/memories.js";
import * as memory from "./views/memory.js";
import * as scopes from "./views/scopes.js";
import * as search from "./views/search.js";
import * as stores from "./views/stores.js";

const VIEWS = { stores, scopes, transcript: { render: scopes.renderTranscript }, memories, memory, search, audit, jobs,
  charts };
const STORE = "memory_plugin.console.store";
const main = document.getElementById("main");
let me = null;

function route() {
  const [name, query] = location.hash.replace(/^#\/?/, "").split("?");
  return { name: VIEWS[name] ? name : "stores", params: new URLSearchParams(query || "") };
}

/** The context every view renders with: the key's binding, the chosen store, the default scope. */
function context(params) {
  const store = params.get("store") || sessionStorage.getItem(STORE) || "";
  const tenants = me.tenant_ids;
  return {
    me,
    store,
    params,
    defaultScope: `${me.app_id}/${tenants && tenants.length === 1 ? tenants[0] : "*"}/*/*`,
    chooseStore,
    refreshStores,
  };
}

let started = 0;  // renders begun; only the latest one may show what it drew

/** Draw the view the address names into a fresh container, shown once drawn unless a newer render began. */
async function render() {
  if (!me) return;
  const generation = ++started;
  const { name, params } = route();
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.getAttribute("href") === `#/${name}` || (name === "memory" && a.getAttribute("href") === "#/memories")
      || (name === "transcript" && a.getAttribute("href") === "#/scopes");
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const ctx = context(params);
  if (ctx.store) selectStore(ctx.store);
  main.dataset.started = String(generation);
  main.setAttribute("aria-busy", "true");
  replace(main, h("p", { class: "muted" }, "Loading…"));
  const view = h("div", { class: "view" });
  try {
    await VIEWS[name].render(view, ctx);
  } catch (error) {
    replace(view, h("h1", {}, "Something went wrong"), errorBox(error));
  }
  if (generation !== started) return;  // a newer address is being drawn; this one is stale
  replace(main, view);
  main.removeAttribute("aria-busy");
  main.dataset.rendered = String(generation);
  const heading = view.querySelector("h1");
  if (heading) {  // keyboard and screen-reader users land on the new view's title
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

function selectStore(name) {
  sessionStorage.setItem(STORE, name);
  const select = document.getElementById("store-select");
  if (![...select.options].some((o) => o.value === name)) select.append(h("option", { value: name }, name));
  select.value = name;
}

/** Show the current view for store `name` (a memory or a run belongs to one store: those lead to its memories). */
function chooseStore(name) {
  selectStore(name);
  const { name: view, params } = route();
  if (view === "memory" || view === "transcript") return go(href("memories", { store: name }));
  params.set("store", name);
  params.delete("cursor");
  return go(href(view, Object.fromEntries(params.entries())));
}

async function refreshStores() {
  const select = document.getElementById("store-select");
  const names = (await listStores()).map((s) => s.name);
  const chosen = sessionStorage.getItem(STORE);
  select.replaceChildren(h("option", { value: "" }, "(choose)"), ...names.map((n) => h("option", { value: n }, n)));
  if (chosen && names.includes(chosen)) select.value = chosen;
  else if (names.length && !chosen) selectStore(names[0]);
  else select.value = "";
  return names;
}

function signInForm(problem) {
  const keyId = h("input", { name: "key_id", autocomplete: "username", placeholder: "mpk_…", autofocus: true });
  const secret = h("input", { name: "secret", type: "password", autocomplete: "current-password" });
  const out = h("div", { "aria-live": "polite" }, problem ? errorBox(problem) : null);
  const form = h("form", { class: "panel narrow", id: "sign-in" },
    field("Access key id", keyId, "as `memory-plugin keys create` prints it"),
    field("Secret", secret, "kept in this tab only, until you sign out or close it"),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      me = await signIn(keyId.value, secret.value);
      await start();
    } catch (error) {
      replace(out, errorBox(error));
      secret.focus();
    }
  });
  replace(main, h("h1", {}, "Sign in"), form, out);
  keyId.focus();
}

async function start() {
  document.getElementById("nav").hidden = false;
  document.getElementById("session").hidden = false;
  const tenants = me.tenant_ids ? `tenants ${me.tenant_ids.join(", ")}` : "all tenants";
  const role = me.admin ? "admin" : me.read_only ? "read-only" : "read-write";
  document.getElementById("whoami").textContent = `${me.key_id} · ${me.app_id} · ${tenants} · ${role}`;
  await refreshStores();
  await render();
}

function showSignIn(problem) {
  me = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("session").hidden = true;
  signInForm(problem);
}

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  sessionStorage.removeItem(STORE);
  showSignIn();
});
document.getElementById("store-select").addEventListener("change", (event) => {
  if (event.target.value) chooseStore(event.target.value);
});
window.addEventListener("hashchange", render);

if (credentials()) {
  whoami().then((who) => { me = who; return start(); }).catch((error) => { signOut(); showSignIn(error); });
} else {
  showSignIn();
}
