/**
 * SRE: edge cache tiers and hit ratio (/api/sre/edge; every redirect, bots included), pipeline
 * health (/api/pipeline, operator keys only: not requested without that scope).
 */
import { api, can, ok } from "./api.ts";
import { timeChart } from "./chart.ts";
import { clear, fmt, h } from "./dom.ts";
import { buckets, loadState, rangeControls, rangeOf, tz } from "./view.ts";

const pct = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
const num = (v: number | null | undefined, unit = "") => (v === null || v === undefined ? "–" : `${fmt.format(Math.round(v * 10) / 10)}${unit}`);
const card = (label: string, value: string, id?: string, cls = "") => h("div", { class: `card ${cls}` }, h("span", { class: "muted" }, label), h("strong", { id }, value));

export async function srePage(app: HTMLElement, signal: AbortSignal): Promise<void> {
  const state = loadState();
  const edgeCards = h("div", { class: "cards" });
  const ratioBox = h("div", { id: "hit-ratio-chart", class: "chart" });
  const colos = h("div");
  const notes = h("ul", { class: "muted notes" });
  const pipeBox = h("div", { id: "pipeline" });
  const error = h("p", { class: "error", role: "alert" });
  clear(
    app,
    h("h1", {}, "SRE"),
    h("p", { class: "note", id: "bots-note" }, "Counts on this page include bots: every redirect the edge served and every click the pipeline carried. The overview and link pages exclude bots unless you include them."),
    rangeControls(state, () => void loadEdge(), { bots: false }),
    error,
    h("section", {}, h("h2", {}, "Edge cache (bots included)"), edgeCards, ratioBox, colos, notes),
    h("section", {}, h("h2", {}, "Pipeline health"), pipeBox),
  );

  async function loadEdge() {
    try {
      const range = rangeOf(state);
      const e = await ok(api.GET("/api/sre/edge", { params: { query: { from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString(), interval: range.interval, tz } }, signal }));
      if (signal.aborted) return;
      clear(edgeCards, card("Hit ratio", pct(e.totals.hit_ratio), "hit-ratio"), card("Isolate", fmt.format(e.totals.isolate)), card("KV", fmt.format(e.totals.kv)), card("Origin", fmt.format(e.totals.origin)), card("Redirects (incl. bots)", fmt.format(e.totals.total), "redirects"));
      // Every bucket of the range on the x axis (the API lists those with redirects).
      const byT = new Map(e.series.map((p) => [Date.parse(p.t), p]));
      const all = buckets(range, e.series.map((p) => ({ t: p.t, clicks: p.total, visitors: 0 })));
      const xs = all.map((b) => b.t / 1000);
      timeChart(
        ratioBox,
        xs,
        [all.map((b) => b.clicks), all.map((b) => byT.get(b.t)?.origin ?? 0), all.map((b) => byT.get(b.t)?.hit_ratio ?? null)],
        [
          { label: "Redirects", color: "#2563eb", bars: true },
          { label: "Origin resolves", color: "#dc2626" },
          { label: "Hit ratio", color: "#7c3aed", scale: "ratio", fmt: pct },
        ],
        { height: 260, xRange: [range.from / 1000, range.to / 1000], empty: "No redirects in this range." },
      );
      // Origin resolve latency per colo (ms): what a cache miss costs a visitor there.
      const lat = e.origin_resolve_latency_ms;
      const latOf = new Map(lat.by_colo.map((l) => [l.colo, l]));
      const msText = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${v} ms`);
      clear(
        colos,
        e.by_colo.length
          ? h(
              "div",
              { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Redirects per colo" },
              h(
              "table",
              {},
              h("thead", {}, h("tr", {}, ["Colo", "Isolate", "KV", "Origin", "Total", "Hit ratio", "Origin p50", "Origin p99"].map((t) => h("th", {}, t)))),
              h("tbody", {}, e.by_colo.map((c) => h("tr", {}, h("td", {}, c.colo || "(unknown)"), h("td", {}, fmt.format(c.isolate)), h("td", {}, fmt.format(c.kv)), h("td", {}, fmt.format(c.origin)), h("td", {}, fmt.format(c.total)), h("td", {}, pct(c.hit_ratio)), h("td", {}, msText(latOf.get(c.colo)?.p50_ms)), h("td", {}, msText(latOf.get(c.colo)?.p99_ms))))),
              ),
            )
          : h("p", { class: "muted" }, "No redirects in this range."),
        h("p", { class: "muted" }, lat.samples ? `Origin resolves: ${fmt.format(lat.samples)} measured, p50 ${msText(lat.p50_ms)}, p99 ${msText(lat.p99_ms)}.` : "Origin resolves: none measured in this range."),
      );
      clear(notes, e.notes.map((n) => h("li", {}, n)));
      error.textContent = "";
    } catch (err) {
      error.textContent = (err as Error).message;
    }
  }

  async function loadPipeline() {
    if (!can("operator")) return void clear(pipeBox, h("p", { class: "muted" }, "Pipeline health needs an operator key (the bootstrap admin key has the operator scope)."));
    try {
      const p = await ok(api.GET("/api/pipeline"));
      if (signal.aborted) return;
      const bad = (ok: boolean) => (ok ? "" : "warn");
      clear(
        pipeBox,
        h(
          "div",
          { class: "cards" },
          card("PostgreSQL clicks", fmt.format(p.postgres_clicks), "pg-clicks"),
          card("Sent to Kinesis", fmt.format(p.kinesis_sent)),
          card("ClickHouse clicks", num(p.clickhouse_clicks), "ch-clicks"),
          card("Outbox backlog", fmt.format(p.outbox_backlog), "backlog", bad(p.outbox_backlog < 1000)),
          card("Dead letters", fmt.format(p.dlq), "dlq", bad(p.dlq === 0)),
          // Gaps in the worker isolates' click numbers (docs/PIPELINE.md, "Completeness check").
          card("Clicks missing", fmt.format(p.clicks_missing), "clicks-missing", bad(p.clicks_missing === 0)),
          card("Kinesis send rate", num(p.rates.kinesis_sent_per_s, "/s")),
          card("Loader rate", num(p.rates.clickhouse_rows_per_s, "/s")),
          card("Loader lag p50 / p99", p.loader_lag ? `${num(p.loader_lag.p50_ms)} / ${num(p.loader_lag.p99_ms)} ms` : "–"),
          ...Object.entries(p.breakers).map(([name, state]) => card(`Breaker: ${name}`, state, `breaker-${name}`, bad(state === "closed"))),
        ),
        h(
          "div",
          { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Kinesis shards" },
          h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Shard", "Owner", "Lease until", "Behind latest", "Sequence"].map((t) => h("th", {}, t)))),
          h("tbody", {}, p.shards.map((s) => h("tr", {}, h("td", {}, s.shard_id), h("td", {}, s.owner ?? "–"), h("td", {}, new Date(s.lease_until).toLocaleTimeString()), h("td", {}, s.millis_behind_latest === null ? "–" : `${fmt.format(s.millis_behind_latest)} ms`), h("td", { class: "mono" }, s.finished ? "finished" : (s.sequence_number ?? "–").slice(-12))))),
          ),
        ),
      );
    } catch (err) {
      clear(pipeBox, h("p", { class: "error" }, (err as Error).message));
    }
  }

  await Promise.all([loadEdge(), loadPipeline()]);
  const t1 = window.setInterval(() => void loadPipeline(), 3000);
  const t2 = window.setInterval(() => void loadEdge(), 15_000);
  signal.addEventListener("abort", () => (clearInterval(t1), clearInterval(t2)));
}
