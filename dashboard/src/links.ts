/** Links: the table (search, archived filter, paging), the create/edit form, QR download. */
import { api, ApiFailure, can, ok, type Link } from "./api.ts";
import type { components, paths } from "../../shared/api-types.ts";
import { clear, fmt, h, when } from "./dom.ts";

type ListQuery = NonNullable<paths["/api/links"]["get"]["parameters"]["query"]>;
type Sort = "new" | "old" | "clicks-desc" | "clicks-asc";

export async function linksPage(app: HTMLElement): Promise<void> {
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const q = h("input", { type: "search", name: "q", placeholder: "Search url, slug, title", value: params.get("q") ?? "", "aria-label": "search" });
  const archived = h("select", { name: "archived", "aria-label": "archived" }, h("option", { value: "false" }, "Active"), h("option", { value: "true" }, "Archived"), h("option", { value: "all" }, "All"));
  const wanted = (params.get("sort") ?? sessionStorage.getItem("linkflow.sort") ?? "new") as Sort;
  const sort = h(
    "select",
    { name: "sort", "aria-label": "Sort" },
    h("option", { value: "new", selected: wanted === "new" }, "Newest first"),
    h("option", { value: "old", selected: wanted === "old" }, "Oldest first"),
    h("option", { value: "clicks-desc", selected: wanted === "clicks-desc" }, "Most clicks"),
    h("option", { value: "clicks-asc", selected: wanted === "clicks-asc" }, "Fewest clicks"),
  );
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Load more");
  const status = h("div", { class: "empty", role: "status" });
  let cursor: string | null = null;
  let timer: number | undefined;
  let seq = 0; // only the latest request's answer is shown (typing fires several)

  const sortQuery = (v: string): Pick<ListQuery, "sort"> => {
    const field = v.startsWith("clicks") ? "clicks" : "created_at";
    const desc = v === "new" || v === "clicks-desc";
    return { sort: desc ? `-${field}` : field };
  };

  async function load(reset: boolean) {
    const mine = ++seq;
    if (reset) cursor = null;
    status.replaceChildren("Loading…");
    try {
      const query: ListQuery = { limit: 50, q: q.value.trim() || undefined, archived: archived.value as "false" | "true" | "all", cursor: cursor ?? undefined, ...sortQuery(sort.value) };
      const page = await ok(api.GET("/api/links", { params: { query } }));
      if (mine !== seq) return;
      if (reset) body.replaceChildren();
      for (const l of page.items) body.append(row(l));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      const term = q.value.trim();
      if (body.children.length) status.replaceChildren();
      else if (term || archived.value !== "false")
        status.replaceChildren(
          h("p", {}, term ? `No links match “${term}”${archived.value === "false" ? "" : ` among ${archived.value === "true" ? "archived" : "all"} links`}.` : "No archived links."),
          h("button", { type: "button", onclick: () => ((q.value = ""), (archived.value = "false"), void load(true)) }, "Clear search"),
        );
      else status.replaceChildren(h("p", {}, "No links yet."), ...(can("links:write") ? [h("a", { class: "button primary", href: "#/links/new" }, "Create your first link")] : []));
    } catch (e) {
      status.replaceChildren(h("p", { class: "error" }, (e as Error).message));
    }
  }
  q.addEventListener("input", () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => void load(true), 250);
  });
  archived.addEventListener("change", () => void load(true));
  sort.addEventListener("change", () => {
    sessionStorage.setItem("linkflow.sort", sort.value);
    void load(true);
  });
  more.addEventListener("click", () => void load(false));

  const heads = ["Short link", "Destination", "Title", "Tags", "Clicks", "Created", "Actions"];
  clear(
    app,
    h("div", { class: "bar" }, h("h1", {}, "Links"), can("links:write") ? h("a", { class: "button primary", href: "#/links/new" }, "New link") : null),
    h("div", { class: "bar filters" }, q, archived, sort),
    h(
      "table",
      { class: "links" },
      h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col", class: t === "Clicks" ? "num" : null, "aria-sort": t === "Clicks" && sort.value.startsWith("clicks") ? (sort.value.endsWith("asc") ? "ascending" : "descending") : null }, t)))),
      body,
    ),
    status,
    more,
  );
  sort.addEventListener("change", () => {
    const th = app.querySelector("th.num");
    if (th) sort.value.startsWith("clicks") ? th.setAttribute("aria-sort", sort.value.endsWith("asc") ? "ascending" : "descending") : th.removeAttribute("aria-sort");
  });
  await load(true);
}

/** A button that copies `text` (a short link) and says so. */
export function copyButton(text: string): HTMLButtonElement {
  const btn = h("button", { type: "button", class: "copy", "aria-label": `Copy ${text}`, title: "Copy to clipboard" }, "Copy");
  btn.addEventListener("click", () => {
    navigator.clipboard.writeText(text).then(
      () => flash(btn, "Copied"),
      () => flash(btn, "Copy failed"),
    );
  });
  return btn;
}
function flash(btn: HTMLButtonElement, text: string) {
  const label = btn.getAttribute("aria-label")!;
  btn.textContent = text;
  btn.setAttribute("aria-label", text);
  btn.dataset.state = text === "Copied" ? "copied" : "failed";
  setTimeout(() => {
    btn.textContent = "Copy";
    btn.setAttribute("aria-label", label);
    delete btn.dataset.state;
  }, 2000);
}

function row(l: Link): HTMLTableRowElement {
  const short = l.domain ? `${l.domain}/${l.code}` : l.code;
  return h(
    "tr",
    { "data-link-id": l.id },
    h("td", { "data-label": "Short link" }, h("a", { href: `#/links/${l.id}`, class: "code" }, short), " ", copyButton(l.short_url), l.archived ? h("span", { class: "tag" }, "archived") : null, l.has_password ? h("span", { class: "tag", title: "password protected" }, "🔒") : null),
    h("td", { class: "url", "data-label": "Destination" }, h("span", { title: l.url }, l.url)),
    h("td", { "data-label": "Title", class: l.title ? null : "blank" }, l.title ?? ""),
    h("td", { "data-label": "Tags", class: l.tags.length ? null : "blank" }, l.tags.map((t) => h("span", { class: "tag" }, t))),
    h("td", { class: "num clicks", "data-label": "Clicks", "data-clicks": l.clicks }, fmt.format(l.clicks)),
    h("td", { class: "muted created", "data-label": "Created" }, when(l.created_at)),
    h(
      "td",
      { class: "actions", "data-label": "Actions" },
      can("stats:read") ? h("a", { href: `#/links/${l.id}` }, "Stats") : h("a", { href: `#/links/${l.id}` }, "Details"),
      can("links:write") ? h("a", { href: `#/links/${l.id}/edit` }, "Edit") : null,
      h("button", { type: "button", class: "link", onclick: () => void downloadQr(l) }, "QR"),
    ),
  );
}

/** Fetches the PNG with the key (an <a href> could not send it) and saves it. */
export async function downloadQr(l: Link): Promise<void> {
  const blob = await ok(api.GET("/api/links/{id}/qr", { params: { path: { id: l.id }, query: { format: "png", size: 1024 } }, parseAs: "blob" }));
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: `${l.code}-qr.png` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const UTM = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"] as const;

/** datetime-local value ↔ ISO instant, in the browser's zone. */
const toLocalInput = (iso: string | null) => {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

export async function linkFormPage(app: HTMLElement, id: number | null): Promise<void> {
  const link = id ? await ok(api.GET("/api/links/{id}", { params: { path: { id } } })) : null;
  const field = (name: string, label: string, input: HTMLElement, hint?: string) => h("label", { class: "field", "data-field": name }, h("span", {}, label), input, hint ? h("small", { class: "muted" }, hint) : null, h("small", { class: "error" }));
  const text = (name: string, value: string | number | null | undefined, extra: Record<string, string> = {}) => h("input", { name, value: value ?? "", ...extra });
  const status = h("select", { name: "redirect_status" }, ...[302, 301, 307, 308].map((s) => h("option", { value: s, selected: (link?.redirect_status ?? 302) === s }, String(s))));
  const targeting = h("textarea", { name: "targeting", rows: 4, placeholder: '[{"country":"DE","url":"https://example.de/"}]' });
  targeting.value = link?.targeting.length ? JSON.stringify(link.targeting, null, 2) : "";
  const archived = h("input", { type: "checkbox", name: "archived", checked: !!link?.archived });
  const clearPw = h("input", { type: "checkbox", name: "clear_password" });
  const msg = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "link-form", novalidate: true },
    field("url", "Destination URL", text("url", link?.url, { type: "url", required: "", placeholder: "https://example.com/page" })),
    h(
      "div",
      { class: "grid" },
      field("slug", "Slug", text("slug", link?.code, { placeholder: "random when empty" })),
      field("domain", "Domain", text("domain", link?.domain, { placeholder: "primary when empty" })),
      field("title", "Title", text("title", link?.title)),
      field("tags", "Tags", text("tags", link?.tags.join(", "), { placeholder: "comma-separated" })),
      field("redirect_status", "Redirect status", status),
      field("max_clicks", "Max clicks", text("max_clicks", link?.max_clicks, { type: "number", min: "1" })),
      field("expires_at", "Expires at", text("expires_at", toLocalInput(link?.expires_at ?? null), { type: "datetime-local" })),
      field("expired_url", "Expired URL", text("expired_url", link?.expired_url, { type: "url" })),
      field("password", "Password", text("password", "", { type: "password", autocomplete: "new-password", placeholder: link?.has_password ? "unchanged" : "none" }), link?.has_password ? "set; leave empty to keep" : undefined),
    ),
    link?.has_password ? h("label", { class: "check" }, clearPw, " Remove the password") : null,
    h("fieldset", {}, h("legend", {}, "UTM parameters"), h("div", { class: "grid" }, UTM.map((u) => field(u, u, text(u, link?.utm[u]))))),
    field("targeting", "Targeting rules (JSON)", targeting, "≤ 50 rules { country?, device?, os?, language?, url }; the first match wins"),
    h("label", { class: "check" }, archived, " Archived"),
    msg,
    h("div", { class: "bar" }, h("button", { type: "submit", class: "primary" }, link ? "Save" : "Create link"), h("a", { class: "button", href: link ? `#/links/${link.id}` : "#/links" }, "Cancel")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void submit();
  });

  async function submit() {
    for (const el of form.querySelectorAll(".field .error")) el.textContent = "";
    msg.textContent = "";
    const v = (n: string) => ((form.elements.namedItem(n) as HTMLInputElement | null)?.value ?? "").trim();
    // Create: empty fields are left out; edit: an emptied field is cleared (null).
    const opt = (s: string) => (s ? s : link ? null : undefined);
    const body: Record<string, unknown> = { url: v("url"), title: opt(v("title")), expired_url: opt(v("expired_url")), redirect_status: Number(v("redirect_status")), archived: archived.checked };
    if (!link || v("slug") !== link.code) body.slug = v("slug") || undefined;
    if (!link || v("domain") !== link.domain) body.domain = v("domain");
    body.tags = v("tags") ? v("tags").split(",").map((t) => t.trim()).filter(Boolean) : link ? [] : undefined;
    body.max_clicks = v("max_clicks") ? Number(v("max_clicks")) : link ? null : undefined;
    body.expires_at = v("expires_at") ? new Date(v("expires_at")).toISOString() : link ? null : undefined;
    if (v("password")) body.password = v("password");
    else if (clearPw.checked) body.password = null;
    const utm = Object.fromEntries(UTM.filter((u) => v(u)).map((u) => [u, v(u)]));
    body.utm = Object.keys(utm).length ? utm : link ? {} : undefined;
    if (targeting.value.trim()) {
      try {
        body.targeting = JSON.parse(targeting.value);
      } catch {
        return showError("targeting", "not valid JSON");
      }
    } else if (link) body.targeting = [];
    try {
      // The form's fields as the server reads them; it validates them (400 names the field).
      const saved = link
        ? await ok(api.PATCH("/api/links/{id}", { params: { path: { id: link.id } }, body: body as components["schemas"]["LinkUpdate"] }))
        : await ok(api.POST("/api/links", { body: body as components["schemas"]["LinkCreate"] }));
      location.hash = `#/links/${saved.id}`;
    } catch (e) {
      if (e instanceof ApiFailure) showError(e.field?.split(/[.[]/)[0], e.message);
      else msg.textContent = (e as Error).message;
    }
  }
  function showError(fieldName: string | undefined, message: string) {
    const slot = fieldName ? form.querySelector(`[data-field="${CSS.escape(fieldName)}"] .error`) : null;
    if (slot) slot.textContent = message;
    msg.textContent = message;
  }

  clear(app, h("h1", {}, link ? `Edit ${link.code}` : "New link"), form);
  (form.elements.namedItem("url") as HTMLInputElement).focus();
}
