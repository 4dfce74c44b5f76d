// Small DOM helpers. Everything that came from the API is set as text (never as HTML), so no stored text can
// become markup or script.

import { InputError } from "./api.js";

/** An element: `h("a", {href: "#/x", class: "y", onclick: f}, "text", child, [more])`. */
export function h(tag, attributes = {}, ...children) {
  const svg = ["svg", "rect", "line", "polyline", "text", "g", "title", "path"].includes(tag);
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "value" && !svg) node.value = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** A failure as the person should read it: what was wrong, and the request id to quote. */
export function errorBox(error) {
  const id = error.requestId ? ` (request ${error.requestId})` : "";
  const text = error instanceof TypeError && !error.field ? `cannot reach the server: ${error.message}` : error.message;
  return h("p", { class: "error", role: "alert" }, text + id);
}

export function notice(text) {
  return h("p", { class: "notice", role: "status" }, text);
}

/** A table in a horizontally scrolling box: `columns` are `{title, cell(row), class}`. */
export function table(columns, rows, caption) {
  if (!rows.length) return h("p", { class: "muted" }, "Nothing here.");
  return h("div", { class: "scroll", tabindex: 0, role: "region", "aria-label": caption || "table" },
    h("table", {},
      caption ? h("caption", { class: "muted" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.class, scope: "col" }, c.title)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(row))))))));
}

export function field(label, control, hint) {
  return h("label", {}, label, control, hint ? h("span", { class: "muted" }, hint) : null);
}

export function time(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return h("time", { datetime: iso, title: iso }, date.toLocaleString());
}

export function scopeText(scope) {
  if (!scope) return "";
  const part = (v) => (Array.isArray(v) ? `[${v.join(",")}]` : v);
  return [scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id].map(part).join("/");
}

export function link(route, params, ...children) {
  return h("a", { href: href(route, params) }, ...children);
}

export function href(route, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  const text = query.toString();
  return `#/${route}${text ? `?${text}` : ""}`;
}

/** Show `target` (a "#/view?..." address), rendering again when it is the address already shown. */
export function go(target) {
  if (location.hash === target) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = target;
}

export function metadataText(metadata) {
  return metadata && Object.keys(metadata).length ? JSON.stringify(metadata) : "";
}

/** A JSON object typed into a form, or InputError naming the field. Empty text is `empty`. */
export function parseObject(fieldName, text, empty = undefined) {
  if (!text.trim()) return empty;
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InputError(fieldName, `must be a JSON object such as {"topic": "food"}; ${error.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new InputError(fieldName, 'must be a JSON object such as {"topic": "food"}');
  }
  return value;
}

/** A datetime-local input's value as ISO text in UTC, or InputError. */
export function parseTime(fieldName, text) {
  if (!text) return undefined;
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new InputError(fieldName, "must be a date and time");
  return date.toISOString();
}

/** A whole number typed into a form, within [low, high], or InputError. */
export function parseCount(fieldName, text, low, high) {
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || value < low || value > high) {
    throw new InputError(fieldName, `must be a whole number from ${low} to ${high}, got ${JSON.stringify(text)}`);
  }
  return value;
}

export function list(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

/** Run `work` when `form` is submitted; its failure (or the page's own check) shows in `out` as a message. */
export function onSubmit(form, out, work) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    replace(out);  // the last attempt's message goes: what shows next is about this one
    try {
      await work(new FormData(form));
    } catch (error) {
      replace(out, errorBox(error));
    } finally {
      if (button) button.disabled = false;
    }
  });
}
