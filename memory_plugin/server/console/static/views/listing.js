// What the filtered, paged views (Memories, Audit) share: the filter form's values go into the address, so Back,
// reload and shared links keep them; the page the address names is loaded and shown with First / Next links.

import { errorBox, go, h, href, onSubmit, replace } from "../dom.js";

/**
 * @param view the route ("memories"), title the view's heading, form the filter form;
 * check(values) throws InputError for a mistake the page can see before anything is sent;
 * load(cursor) reads one page; show(items) draws it.
 */
export async function renderListing(main, ctx, { view, title, form, check, load, show }) {
  const out = h("div", { "aria-live": "polite" });
  onSubmit(form, out, async (data) => {
    const wanted = Object.fromEntries([...data.entries()].map(([k, v]) => [k, String(v).trim()]));
    check(wanted);
    go(href(view, { store: ctx.store, ...wanted }));
  });
  replace(main, h("h1", {}, title), form, out);
  if (!ctx.store) return;
  const { cursor, ...here } = { ...Object.fromEntries(ctx.params.entries()), store: ctx.store };
  let page;
  try {
    page = await load(cursor || undefined);
  } catch (error) {
    replace(out, errorBox(error));
    return;
  }
  replace(out, show(page.items), h("div", { class: "pager" },
    cursor ? h("a", { href: href(view, here) }, "First page") : null,
    page.next_cursor ? h("a", { href: href(view, { ...here, cursor: page.next_cursor }) }, "Next page") : null));
}
