// Charts: operations per minute and latency over the last hour, memories per type. Hand-drawn SVG, no library.

import { op } from "../api.js";
import { h, replace } from "../dom.js";

const W = 640;
const H = 180;
const PAD = { left: 44, right: 8, top: 10, bottom: 24 };

export async function render(main, ctx) {
  const scope = ctx.defaultScope;
  const [buckets, stats] = await Promise.all([
    op(ctx.store, "activity", { scope, minutes: 60 }),
    op(ctx.store, "stats", { scope }),
  ]);
  const minutes = lastHour(buckets);
  const total = buckets.reduce((n, b) => n + b.requests, 0);
  const errors = buckets.reduce((n, b) => n + b.errors, 0);
  replace(main,
    h("h1", {}, `Charts of ${ctx.store}`),
    h("p", { class: "muted" }, `Scope ${scope}.`),
    h("div", { class: "cards" },
      card("Memories", stats.memories), card("Messages", stats.messages), card("Tenants", stats.tenants),
      card("Requests, last hour", total), card("Errors, last hour", errors)),
    h("h2", {}, "Operations per minute, last hour"),
    bars(minutes.map((m) => ({ label: m.label, value: m.requests, bad: m.errors })), "requests per minute",
      `${total} requests in the last hour, ${errors} failed`),
    h("h2", {}, "Latency per minute, last hour (ms)"),
    lines(minutes, `p95 latency peaked at ${Math.max(0, ...buckets.map((b) => b.p95_ms)).toFixed(1)} ms`),
    h("h2", {}, "Memories per type"),
    bars(Object.entries(stats.memory_types).map(([type, n]) => ({ label: type, value: n, bad: 0 })), "memories",
      Object.entries(stats.memory_types).map(([type, n]) => `${type} ${n}`).join(", ") || "no memories", true));
}

function card(title, value) {
  return h("div", { class: "card" }, h("div", { class: "muted" }, title), h("div", { class: "value" }, value));
}

/** Sixty one-minute slots ending now, filled from the buckets the server returned (minutes without calls are 0). */
function lastHour(buckets) {
  const byMinute = new Map(buckets.map((b) => [new Date(b.minute).getTime(), b]));
  const now = Math.floor(Date.now() / 60000) * 60000;
  return Array.from({ length: 60 }, (_, i) => {
    const at = now - (59 - i) * 60000;
    const b = byMinute.get(at) || { requests: 0, errors: 0, p50_ms: 0, p95_ms: 0 };
    return { ...b, label: new Date(at).toTimeString().slice(0, 5) };
  });
}

function frame(label, summary, maxValue) {
  const svg = h("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${label}: ${summary}` },
    h("title", {}, summary));
  for (const fraction of [0, 0.5, 1]) {
    const y = PAD.top + (1 - fraction) * (H - PAD.top - PAD.bottom);
    svg.append(h("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, stroke: "#d6dbe0" }),
      h("text", { x: PAD.left - 4, y: y + 4, "text-anchor": "end" }, round(maxValue * fraction)));
  }
  return svg;
}

function bars(items, label, summary, labelled = false) {
  const max = Math.max(1, ...items.map((i) => i.value));
  const svg = frame(label, summary, max);
  const width = (W - PAD.left - PAD.right) / Math.max(1, items.length);
  const plot = H - PAD.top - PAD.bottom;
  items.forEach((item, i) => {
    const x = PAD.left + i * width;
    const height = (item.value / max) * plot;
    const bad = (item.bad / max) * plot;
    svg.append(h("rect", { x: x + 1, y: PAD.top + plot - height, width: Math.max(1, width - 2), height, fill: "#1f5fbf" },
      h("title", {}, `${item.label}: ${item.value}${item.bad ? `, ${item.bad} failed` : ""}`)));
    if (bad) svg.append(h("rect", { x: x + 1, y: PAD.top + plot - bad, width: Math.max(1, width - 2), height: bad, fill: "#b3261e" }));
    if (labelled || i % 10 === 0) {
      svg.append(h("text", { x: x + width / 2, y: H - 8, "text-anchor": "middle" }, item.label));
    }
  });
  return svg;
}

function lines(minutes, summary) {
  const max = Math.max(1, ...minutes.map((m) => m.p95_ms));
  const svg = frame("latency", summary, max);
  const plot = H - PAD.top - PAD.bottom;
  const step = (W - PAD.left - PAD.right) / (minutes.length - 1);
  for (const [key, colour] of [["p95_ms", "#b3261e"], ["p50_ms", "#1f5fbf"]]) {
    const points = minutes.map((m, i) => `${PAD.left + i * step},${PAD.top + plot - (m[key] / max) * plot}`).join(" ");
    svg.append(h("polyline", { points, fill: "none", stroke: colour, "stroke-width": 2 }, h("title", {}, key.replace("_ms", ""))));
  }
  minutes.forEach((m, i) => {
    if (i % 10 === 0) svg.append(h("text", { x: PAD.left + i * step, y: H - 8, "text-anchor": "middle" }, m.label));
  });
  svg.append(h("text", { x: W - PAD.right, y: PAD.top + 10, "text-anchor": "end" }, "p95 red · p50 blue"));
  return svg;
}

function round(value) {
  return value >= 10 ? Math.round(value) : Math.round(value * 10) / 10;
}
