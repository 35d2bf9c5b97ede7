/**
 * A stats view (the overview, a link's page): range and bots controls, totals, the series with
 * partial buckets marked, top-N breakdowns, CSV export of what is on screen. The query it sent
 * is on the view as `data-query` (the browser test asks the API the same).
 */
import type { paths } from "../../shared/api-types.ts";
import { api, ApiFailure, ok, type Stats } from "./api.ts";
import { timeChart } from "./chart.ts";
import { clear, fmt, h } from "./dom.ts";
import { buckets, loadState, rangeControls, rangeOf, saveFile, toCsv, tz, ymd, type Bucket } from "./view.ts";

type StatsQuery = NonNullable<paths["/api/stats"]["get"]["parameters"]["query"]>;
/** A breakdown row; `link` comes with group_by=link. */
export interface Row {
  value: string;
  clicks: number;
  visitors: number;
  link?: { id: number; domain: string; code: string; url: string; title: string | null };
}
export interface Group {
  dim: string;
  title: string;
  limit?: number;
}

const regionNames = (() => {
  try {
    return new Intl.DisplayNames(undefined, { type: "region" });
  } catch {
    return null;
  }
})();

/** How a breakdown value reads on screen ('' is "Direct" for referrers, as peers say). */
export function valueLabel(dim: string, v: string): string {
  if (dim === "referer_host") return v || "Direct";
  if (dim === "qr") return v === "true" ? "QR scan" : v === "false" ? "Link (no QR)" : v || "Unknown";
  if (dim.startsWith("utm_")) return v || "(no UTM)";
  if (dim === "country" && /^[A-Z]{2}$/.test(v)) {
    let name: string | undefined;
    try {
      name = regionNames?.of(v);
    } catch {
      /* an unknown code reads as itself */
    }
    return name && name !== v ? `${name} (${v})` : v;
  }
  return v || "Unknown";
}

const shortOf = (l: NonNullable<Row["link"]>) => (l.domain ? `${l.domain}/${l.code}` : l.code);

/** Horizontal bars (clicks), widths set through the CSSOM (allowed by the style CSP). */
export function barList(dim: string, title: string, rows: Row[], note?: string): HTMLElement {
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
            const text = r.link ? (r.link.title ? `${r.link.title} · ${shortOf(r.link)}` : shortOf(r.link)) : valueLabel(dim, r.value);
            const label = dim === "link" ? h("a", { class: "label", href: `#/links/${r.link?.id ?? r.value}`, title: text }, text) : h("span", { class: "label", title: text }, text);
            return h("li", { "data-value": r.value, "data-clicks": r.clicks }, label, h("span", { class: "track", "aria-hidden": "true" }, bar), h("span", { class: "num" }, fmt.format(r.clicks)));
          }),
        )
      : h("p", { class: "muted" }, note ?? "No clicks in this range."),
    note && rows.length ? h("p", { class: "muted small" }, note) : null,
  );
}

export interface StatsView {
  el: HTMLElement;
  load(): Promise<void>;
  /** The last load's failure (a 404: no such link), else null. */
  failure: ApiFailure | null;
}

export function statsView(opts: { link?: number; groups: Group[]; csvName: string; signal: AbortSignal; title?: string }): StatsView {
  const state = loadState();
  const error = h("p", { class: "error", role: "alert" });
  const cardVal = (id: string) => h("strong", { id, "data-value": "" }, "–");
  const totalClicks = cardVal("total-clicks");
  const totalVisitors = cardVal("total-visitors");
  const linksCount = cardVal("total-links");
  const rangeText = h("span", { class: "muted", id: "range-label" });
  const chartBox = h("div", { id: "clicks-chart", class: "chart" });
  const partialNote = h("p", { class: "muted small", id: "partial-note" });
  const breakdowns = h("div", { class: "breakdowns" });
  const exportBtn = h("button", { type: "button", id: "export-csv" }, "Export CSV");
  const card = (label: string, value: HTMLElement) => h("div", { class: "card" }, h("span", { class: "muted" }, label), value);

  let last: { query: StatsQuery; main: Stats; groups: [Group, Row[]][]; series: Bucket[] } | null = null;
  let seq = 0;

  const el = h(
    "div",
    { class: "stats-view" },
    h("div", { class: "bar" }, rangeControls(state, () => void view.load()), exportBtn),
    error,
    h("div", { class: "cards" }, card("Clicks", totalClicks), card("Unique visitors", totalVisitors), opts.link ? null : card("Links", linksCount)),
    h("section", {}, h("div", { class: "bar" }, h("h2", {}, opts.title ?? "Clicks over time"), rangeText), chartBox, partialNote),
    h("section", {}, h("h2", {}, "Breakdowns"), breakdowns),
  );

  exportBtn.addEventListener("click", () => {
    if (!last) return;
    const q = last.query;
    const rows: (string | number | boolean)[][] = [["section", "bucket_start", "dimension", "value", "clicks", "visitors", "partial"]];
    rows.push(["total", "", "", "", last.main.totals.clicks, last.main.totals.visitors, ""]);
    for (const b of last.series) rows.push(["series", new Date(b.t).toISOString(), "", "", b.clicks, b.visitors, b.partial]);
    for (const [g, list] of last.groups) for (const r of list) rows.push(["breakdown", "", g.dim, r.value, r.clicks, r.visitors, ""]);
    const day = (iso: string | undefined) => ymd(new Date(iso ?? Date.now()));
    saveFile(`${opts.csvName}_${day(q.from)}_${day(new Date(Date.parse(q.to!) - 1).toISOString())}_bots-${q.bots}.csv`, toCsv(rows));
  });

  const view: StatsView = {
    el,
    failure: null,
    async load() {
      const mine = ++seq;
      const range = rangeOf(state);
      const query: StatsQuery = { from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString(), interval: range.interval, tz, bots: state.bots, ...(opts.link ? { link: opts.link } : {}) };
      el.dataset.query = JSON.stringify(query);
      el.dataset.loaded = "false";
      try {
        // Every answer carries the query's totals and series, a breakdown's its top values too:
        // the series and totals come from the first breakdown's (one request fewer, and one
        // series fewer for the server to count), from a plain request when there is none.
        const answers = await Promise.all(
          opts.groups.length
            ? opts.groups.map((g) => ok(api.GET("/api/stats", { params: { query: { ...query, group_by: g.dim as StatsQuery["group_by"], limit: g.limit ?? 8 } }, signal: opts.signal })))
            : [ok(api.GET("/api/stats", { params: { query }, signal: opts.signal }))],
        );
        if (opts.signal.aborted || mine !== seq) return;
        error.textContent = "";
        view.failure = null;
        const main = answers[0]!;
        const series = buckets(range, main.series);
        last = { query, main, series, groups: opts.groups.map((g, i) => [g, (answers[i]!.breakdown ?? []) as Row[]]) };
        const set = (el: HTMLElement, v: number) => ((el.textContent = fmt.format(v)), (el.dataset.value = String(v)));
        set(totalClicks, main.totals.clicks);
        set(totalVisitors, main.totals.visitors);
        set(linksCount, main.links);
        rangeText.textContent = `${range.label}, by ${range.interval}`;
        chartBox.dataset.clicks = String(main.series.reduce((s, p) => s + p.clicks, 0));
        const partial = series.filter((b) => b.partial).length;
        chartBox.dataset.partial = String(partial);
        timeChart(
          chartBox,
          series.map((b) => b.t / 1000),
          [series.map((b) => (b.partial ? null : b.clicks)), series.map((b) => (b.partial ? b.clicks : null)), series.map((b) => b.visitors)],
          [
            { label: "Clicks", color: "#2563eb", bars: true },
            { label: "Clicks (partial bucket)", color: "#93c5fd", bars: true },
            { label: "Visitors", color: "#b45309" },
          ],
          { xRange: [range.from / 1000, range.to / 1000], empty: "No clicks in this range." },
        );
        partialNote.textContent = partial ? `Lighter bars are partial buckets (${partial}): a bucket that starts before the range or is still filling counts only part of its ${range.interval}.` : "";
        const lists = last.groups.map(([g, rows]) => barList(g.dim, g.title, rows));
        clear(breakdowns, lists);
        el.dataset.loaded = "true";
      } catch (e) {
        if (opts.signal.aborted) return;
        view.failure = e instanceof ApiFailure ? e : null;
        error.textContent = (e as Error).message;
      }
    },
  };
  return view;
}
