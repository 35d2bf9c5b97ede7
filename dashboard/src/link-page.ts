/** One link: clicks over time, breakdowns, live counter (poll + SSE), QR. */
import { api, ok, stream } from "./api.ts";
import { timeChart } from "./chart.ts";
import { clear, fmt, h, when } from "./dom.ts";
import { downloadQr } from "./links.ts";

const DIMENSIONS = [
  ["country", "Countries"],
  ["device", "Devices"],
  ["browser", "Browsers"],
  ["os", "Operating systems"],
  ["referer_host", "Referrers"],
] as const;

/** Runs until `signal` aborts (the route changed). */
export async function linkPage(app: HTMLElement, id: number, signal: AbortSignal): Promise<void> {
  const link = await ok(api.GET("/api/links/{id}", { params: { path: { id } } }));
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const interval = h("select", { name: "interval", "aria-label": "interval" }, h("option", { value: "minute" }, "Last hour, by minute"), h("option", { value: "hour", selected: true }, "Last 2 days, by hour"), h("option", { value: "day" }, "Last 30 days, by day"));
  const totalClicks = h("strong", { id: "total-clicks" }, "–");
  const totalVisitors = h("strong", { id: "total-visitors" }, "–");
  const chartBox = h("div", { id: "clicks-chart", class: "chart" });
  const breakdowns = h("div", { class: "breakdowns" });
  const liveTotal = h("strong", { id: "live-total" }, "–");
  const liveBox = h("div", { id: "live-chart", class: "chart small" });
  const feed = h("ul", { id: "live-feed", class: "feed" });
  const qrImg = h("img", { class: "qr", alt: `QR code of ${link.short_url}`, width: 160, height: 160 });
  const error = h("p", { class: "error", role: "alert" });

  clear(
    app,
    h(
      "div",
      { class: "bar" },
      h("div", {}, h("h1", {}, link.title || link.code), h("p", {}, h("a", { href: link.short_url, target: "_blank", rel: "noopener", id: "short-url" }, link.short_url), " → ", h("span", { class: "url" }, link.url))),
      h("div", { class: "actions" }, h("a", { class: "button", href: `#/links/${id}/edit` }, "Edit"), h("button", { type: "button", onclick: () => void downloadQr(link) }, "Download QR (PNG)")),
    ),
    h(
      "div",
      { class: "cards" },
      h("div", { class: "card" }, h("span", { class: "muted" }, "Clicks"), totalClicks),
      h("div", { class: "card" }, h("span", { class: "muted" }, "Unique visitors"), totalVisitors),
      h("div", { class: "card live" }, h("span", { class: "muted" }, "Live: clicks in the last 60 s"), liveTotal),
      h("div", { class: "card" }, h("span", { class: "muted" }, "Redirect"), h("strong", {}, String(link.redirect_status)), h("small", { class: "muted" }, `created ${when(link.created_at)}`)),
      qrImg,
    ),
    error,
    h("section", {}, h("div", { class: "bar" }, h("h2", {}, "Clicks over time"), h("span", { class: "muted" }, `time zone ${tz}`), interval), chartBox),
    h("section", {}, h("h2", {}, "Live"), liveBox, feed),
    h("section", {}, h("h2", {}, "Breakdowns"), breakdowns),
  );

  ok(api.GET("/api/links/{id}/qr", { params: { path: { id }, query: { format: "png", size: 320 } }, parseAs: "blob", signal }))
    .then((b) => (qrImg.src = URL.createObjectURL(b)))
    .catch(() => {});

  async function loadStats() {
    try {
      const base = { link: id, interval: interval.value as "minute" | "hour" | "day", tz };
      const [main, ...groups] = await Promise.all([ok(api.GET("/api/stats", { params: { query: base } })), ...DIMENSIONS.map(([d]) => ok(api.GET("/api/stats", { params: { query: { ...base, group_by: d, limit: 8 } } })))]);
      if (signal.aborted) return;
      error.textContent = "";
      totalClicks.textContent = fmt.format(main.totals.clicks);
      totalVisitors.textContent = fmt.format(main.totals.visitors);
      const xs = main.series.map((p) => Date.parse(p.t) / 1000);
      chartBox.dataset.clicks = String(main.series.reduce((s, p) => s + p.clicks, 0));
      timeChart(chartBox, xs, [main.series.map((p) => p.clicks), main.series.map((p) => p.visitors)], [
        { label: "Clicks", color: "#2563eb", bars: true },
        { label: "Visitors", color: "#f59e0b" },
      ], { xRange: [Date.parse(main.from) / 1000, Date.parse(main.to) / 1000] });
      clear(breakdowns, DIMENSIONS.map(([d, title], i) => barList(d, title, groups[i]!.breakdown ?? [])));
    } catch (e) {
      error.textContent = (e as Error).message;
    }
  }

  async function loadLive() {
    try {
      const live = await ok(api.GET("/api/stats/live", { params: { query: { link: id } } }));
      if (signal.aborted) return;
      liveTotal.textContent = fmt.format(live.total);
      timeChart(liveBox, live.seconds.map((s) => Date.parse(s.t) / 1000), [live.seconds.map((s) => s.clicks)], [{ label: "Clicks/s", color: "#16a34a", bars: true }], { height: 120 });
    } catch {
      /* shown by loadStats */
    }
  }

  // The SSE stream: each click lands in the feed at once and refreshes the counters.
  let refresh: number | undefined;
  const onEvent = (event: string, data: string) => {
    if (event !== "click") return;
    const c = JSON.parse(data) as { ts: string; country: string; device: string; browser: string; os: string; referer_host: string; cache_tier: string; qr: boolean };
    feed.prepend(h("li", {}, h("time", {}, new Date(c.ts).toLocaleTimeString()), ` ${c.country || "??"} · ${c.device || "?"} · ${c.browser || "?"} on ${c.os || "?"}${c.referer_host ? ` · from ${c.referer_host}` : ""}${c.qr ? " · QR" : ""} · ${c.cache_tier}`));
    while (feed.children.length > 20) feed.lastElementChild!.remove();
    clearTimeout(refresh);
    refresh = window.setTimeout(() => void Promise.all([loadStats(), loadLive()]), 300);
  };
  void (async () => {
    while (!signal.aborted) {
      await stream({ link: id, max_seconds: 600 }, onEvent, signal).catch(() => {});
      if (!signal.aborted) await new Promise((r) => setTimeout(r, 2000));
    }
  })();

  interval.addEventListener("change", () => void loadStats());
  await Promise.all([loadStats(), loadLive()]);
  const liveTimer = window.setInterval(() => void loadLive(), 2000);
  const statsTimer = window.setInterval(() => void loadStats(), 15_000);
  signal.addEventListener("abort", () => {
    clearInterval(liveTimer);
    clearInterval(statsTimer);
    clearTimeout(refresh);
  });
}

/** Horizontal bars (clicks), widths set through the CSSOM (allowed by the style CSP). */
function barList(dim: string, title: string, rows: { value: string; clicks: number; visitors: number }[]): HTMLElement {
  const max = Math.max(1, ...rows.map((r) => r.clicks));
  return h(
    "div",
    { class: "breakdown", "data-dimension": dim },
    h("h3", {}, title),
    rows.length
      ? h(
          "ul",
          { class: "bars" },
          rows.map((r) => {
            const bar = h("span", { class: "fill" });
            bar.style.width = `${(100 * r.clicks) / max}%`;
            return h("li", {}, h("span", { class: "label" }, r.value || "(none)"), h("span", { class: "track" }, bar), h("span", { class: "num" }, fmt.format(r.clicks)));
          }),
        )
      : h("p", { class: "muted" }, "No clicks yet."),
  );
}
