/**
 * One link: where visitors land (UTM merged), copy and QR, its stats view (range, bots,
 * breakdowns incl. QR and UTM, CSV), a live counter and feed (poll + SSE). A key without
 * links:read sees the stats only; without links:write, nothing to edit.
 */
import { mergeUtm } from "../../shared/utm.ts";
import { api, ApiFailure, can, ok, stream, type Link } from "./api.ts";
import { timeChart } from "./chart.ts";
import { clear, fmt, h, when } from "./dom.ts";
import { copyButton, downloadQr } from "./links.ts";
import { statsView, type Row } from "./stats-view.ts";
import { loadState } from "./view.ts";

const GROUPS = [
  { dim: "country", title: "Countries" },
  { dim: "referer_host", title: "Referrers" },
  { dim: "qr", title: "QR scans" },
  { dim: "utm_source", title: "UTM source" },
  { dim: "utm_medium", title: "UTM medium" },
  { dim: "utm_campaign", title: "UTM campaign" },
  { dim: "device", title: "Devices" },
  { dim: "browser", title: "Browsers" },
  { dim: "os", title: "Operating systems" },
];

/** An unknown id (or another workspace's): say so, with a way back. */
function notFound(app: HTMLElement, id: number): void {
  clear(
    app,
    h("h1", {}, "Link not found"),
    h("p", { id: "not-found" }, `There is no link #${id} in this workspace (it may have been deleted, or belong to another workspace).`),
    h("p", {}, h("a", { class: "button", href: can("links:read") ? "#/links" : "#/overview" }, can("links:read") ? "Back to links" : "Back to the overview")),
  );
}

/** Runs until `signal` aborts (the route changed). */
export async function linkPage(app: HTMLElement, id: number, signal: AbortSignal): Promise<void> {
  let link: Link | null = null;
  if (can("links:read")) {
    try {
      link = await ok(api.GET("/api/links/{id}", { params: { path: { id } }, signal }));
    } catch (e) {
      if (e instanceof ApiFailure && e.status === 404) return notFound(app, id);
      throw e;
    }
  }
  const stats = can("stats:read");
  const view = stats ? statsView({ link: id, groups: GROUPS, csvName: `linkflow-link-${link?.code ?? id}`, signal }) : null;
  const liveTotal = h("strong", { id: "live-total" }, "–");
  const liveBox = h("div", { id: "live-chart", class: "chart small" });
  const feed = h("ul", { id: "live-feed", class: "feed", "aria-live": "polite" });
  const waiting = h("p", { class: "muted", id: "live-waiting" }, "Waiting for clicks… each new click shows here within a few seconds.");
  const qrImg = link ? h("img", { class: "qr", alt: `QR code of ${link.short_url}`, width: 160, height: 160 }) : null;

  const header = link ? headerOf(link) : await statsOnlyHeader(id, signal);
  clear(
    app,
    h("p", { class: "crumbs" }, h("a", { href: can("links:read") ? "#/links" : "#/overview" }, can("links:read") ? "← Links" : "← Overview")),
    h("div", { class: "bar head" }, header, qrImg),
    view?.el ?? h("p", { class: "muted" }, "This key has no stats:read scope: no clicks to show."),
    stats ? h("section", {}, h("div", { class: "bar" }, h("h2", {}, "Live"), h("span", { class: "muted" }, "clicks in the last 60 s: ", liveTotal)), liveBox, waiting, feed) : null,
  );
  if (link && qrImg)
    ok(api.GET("/api/links/{id}/qr", { params: { path: { id }, query: { format: "png", size: 320 } }, parseAs: "blob", signal }))
      .then((b) => (qrImg.src = URL.createObjectURL(b)))
      .catch(() => {});
  if (!view) return;

  await view.load();
  if (view.failure?.status === 404) return notFound(app, id);

  async function loadLive() {
    try {
      const live = await ok(api.GET("/api/stats/live", { params: { query: { link: id, bots: loadState().bots } }, signal }));
      if (signal.aborted) return;
      liveTotal.textContent = fmt.format(live.total);
      timeChart(liveBox, live.seconds.map((s) => Date.parse(s.t) / 1000), [live.seconds.map((s) => s.clicks)], [{ label: "Clicks/s", color: "#16a34a", bars: true }], { height: 120, empty: "No clicks in the last 60 s." });
    } catch {
      /* the stats view shows errors */
    }
  }

  // The SSE stream: each click lands in the feed at once and refreshes the counters.
  let refresh: number | undefined;
  const onEvent = (event: string, data: string) => {
    if (event !== "click") return;
    const c = JSON.parse(data) as { ts: string; country: string; device: string; browser: string; os: string; referer_host: string; cache_tier: string; qr: boolean };
    waiting.hidden = true;
    feed.prepend(h("li", {}, h("time", {}, new Date(c.ts).toLocaleTimeString()), ` ${c.country || "??"} · ${c.device || "?"} · ${c.browser || "?"} on ${c.os || "?"} · ${c.referer_host ? `from ${c.referer_host}` : "direct"}${c.qr ? " · QR" : ""} · ${c.cache_tier}`));
    while (feed.children.length > 20) feed.lastElementChild!.remove();
    clearTimeout(refresh);
    refresh = window.setTimeout(() => void Promise.all([view.load(), loadLive()]), 300);
  };
  void (async () => {
    while (!signal.aborted) {
      await stream({ link: id, max_seconds: 600, bots: loadState().bots }, onEvent, signal).catch(() => {});
      if (!signal.aborted) await new Promise((r) => setTimeout(r, 2000));
    }
  })();

  await loadLive();
  const liveTimer = window.setInterval(() => void loadLive(), 2000);
  const statsTimer = window.setInterval(() => void view.load(), 30_000);
  signal.addEventListener("abort", () => {
    clearInterval(liveTimer);
    clearInterval(statsTimer);
    clearTimeout(refresh);
  });
}

/**
 * Without links:read: the link's name from the stats API's top links (group_by=link), else its
 * id; no settings, nothing to change.
 */
async function statsOnlyHeader(id: number, signal: AbortSignal): Promise<HTMLElement> {
  const query = { link: id, group_by: "link", interval: "day", from: new Date(Date.now() - 5 * 365 * 86_400_000).toISOString(), limit: 1, bots: "include" } as const;
  const meta = await ok(api.GET("/api/stats", { params: { query }, signal })).then((r) => (r.breakdown?.[0] as Row | undefined)?.link, () => undefined);
  const short = meta ? (meta.domain ? `${meta.domain}/${meta.code}` : meta.code) : null;
  return h(
    "div",
    { class: "link-head" },
    h("h1", {}, meta?.title || short || `Link #${id}`),
    short ? h("p", { class: "short" }, h("span", { class: "code" }, short)) : null,
    meta ? h("p", { class: "dest" }, h("span", { class: "muted" }, "Destination "), h("span", { class: "url" }, meta.url)) : null,
    h("p", { class: "muted small" }, "This key reads stats only: the link's settings are not shown."),
  );
}

function headerOf(link: Link): HTMLElement {
  // Where a visitor lands: the destination with the link's UTM merged (as the edge does).
  let landing = link.url;
  try {
    landing = mergeUtm(link.url, link.utm as Record<string, string>);
  } catch {
    /* shown as stored */
  }
  const rules = link.targeting.length;
  return h(
    "div",
    { class: "link-head" },
    h("h1", {}, link.title || link.code),
    h("p", { class: "short" }, h("a", { href: link.short_url, target: "_blank", rel: "noopener", id: "short-url" }, link.short_url), " ", copyButton(link.short_url)),
    h("p", { class: "dest" }, h("span", { class: "muted" }, "Visitors land on "), h("a", { href: landing, target: "_blank", rel: "noopener noreferrer", id: "landing-url", class: "url" }, landing)),
    rules ? h("p", { class: "muted small" }, `${rules} targeting rule${rules > 1 ? "s" : ""} send matching visitors elsewhere.`) : null,
    h(
      "p",
      { class: "muted small" },
      `${link.redirect_status} redirect · created ${when(link.created_at)}`,
      link.archived ? " · archived" : "",
      link.expires_at ? ` · expires ${when(link.expires_at)}` : "",
      link.max_clicks ? ` · at most ${fmt.format(link.max_clicks)} clicks` : "",
    ),
    h(
      "div",
      { class: "actions" },
      can("links:write") ? h("a", { class: "button", href: `#/links/${link.id}/edit` }, "Edit") : null,
      h("button", { type: "button", onclick: () => void downloadQr(link) }, "Download QR (PNG)"),
    ),
  );
}
