// Extraction: the store's unfinished background jobs (pending, running, failed) with their errors and the LLM's raw
// output; failed jobs can be queued again (admin keys).

import { op } from "../api.js";
import { h, notice, onSubmit, replace, scopeText, table, time } from "../dom.js";

export async function render(main, ctx) {
  const jobs = await op(ctx.store, "extraction_status", {});
  const out = h("div", { "aria-live": "polite" });
  const sections = ["failed", "running", "pending"].map((state) => {
    const mine = jobs.filter((j) => j.state === state);
    return [h("h2", {}, `${state[0].toUpperCase()}${state.slice(1)} (${mine.length})`), table([
      { title: "Job", class: "num", cell: (j) => j.job_id },
      { title: "Scope", cell: (j) => h("span", { class: "mono" }, scopeText(j.scope)) },
      { title: "Attempts", class: "num", cell: (j) => j.attempts },
      { title: "Error", class: "text", cell: (j) => j.error || "" },
      { title: "Raw LLM output", cell: (j) => (j.raw_output ? h("details", {}, h("summary", {}, "show"), h("pre", {}, j.raw_output)) : "") },
      { title: "Messages", class: "num", cell: (j) => j.message_ids.length },
      { title: "Queued", cell: (j) => time(j.created_at) },
      { title: "Request", cell: (j) => h("span", { class: "mono" }, j.request_id) },
    ], mine, `${state} jobs`)];
  });
  let retry = null;
  if (ctx.me.admin) {
    retry = h("form", { class: "actions", id: "retry-failed" }, h("button", { type: "submit" }, "Retry failed jobs"));
    onSubmit(retry, out, async () => {
      const queued = await op(ctx.store, "retry_failed", {});
      await render(main, ctx);
      main.querySelector("[aria-live]").append(notice(`${queued} failed jobs queued again.`));
    });
  }
  replace(main, h("h1", {}, `Extraction jobs of ${ctx.store}`),
    h("p", { class: "muted" }, "Jobs that finished are not listed; their memories are in the Memories view."),
    retry || h("p", { class: "muted" }, "Retrying failed jobs needs an admin key."), out, sections);
}
