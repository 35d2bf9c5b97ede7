/**
 * What every stats view shares: the time range (rolling or custom, in the viewer's zone), the
 * bots choice, the buckets of a range (partial ones marked), and CSV export. The choice is kept
 * for the tab (sessionStorage), so moving between pages keeps the range.
 */
import { h } from "./dom.ts";

export type Interval = "minute" | "hour" | "day";
export type Bots = "exclude" | "include" | "only";
export type RangeKey = "60m" | "24h" | "7d" | "30d" | "90d" | "custom";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** Rolling ranges: the span back from now, and the bucket size that suits it. */
export const RANGES: { key: Exclude<RangeKey, "custom">; label: string; span: number; interval: Interval }[] = [
  { key: "60m", label: "Last 60 minutes", span: HOUR, interval: "minute" },
  { key: "24h", label: "Last 24 hours", span: DAY, interval: "hour" },
  { key: "7d", label: "Last 7 days", span: 7 * DAY, interval: "hour" },
  { key: "30d", label: "Last 30 days", span: 30 * DAY, interval: "day" },
  { key: "90d", label: "Last 90 days", span: 90 * DAY, interval: "day" },
];

export interface ViewState {
  range: RangeKey;
  /** Custom range: first and last day (YYYY-MM-DD, inclusive), in the viewer's zone. */
  from: string;
  to: string;
  bots: Bots;
}

const STATE = "linkflow.view";
export const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** "UTC+01:00" for the viewer's zone now. */
export function tzLabel(at = new Date()): string {
  const off = -at.getTimezoneOffset();
  const a = Math.abs(off);
  return `${tz} (UTC${off < 0 ? "−" : "+"}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")})`;
}

/** YYYY-MM-DD of a local date. */
export const ymd = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
/** Local midnight of a YYYY-MM-DD day. */
const midnight = (day: string) => {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y!, m! - 1, d!).getTime();
};
const addDays = (t: number, n: number) => {
  const d = new Date(t);
  d.setDate(d.getDate() + n);
  return d.getTime();
};

export function loadState(): ViewState {
  const today = ymd(new Date());
  const def: ViewState = { range: "7d", from: ymd(new Date(addDays(Date.now(), -6))), to: today, bots: "exclude" };
  try {
    return { ...def, ...(JSON.parse(sessionStorage.getItem(STATE) ?? "{}") as Partial<ViewState>) };
  } catch {
    return def;
  }
}
export const saveState = (s: ViewState) => sessionStorage.setItem(STATE, JSON.stringify(s));

export interface Range {
  from: number;
  to: number;
  interval: Interval;
  label: string;
}

/**
 * The range as instants: a rolling range ends at the end of the current minute (so its last
 * bucket is still filling); a custom one runs from local midnight of its first day to local
 * midnight after its last (hour buckets up to 2 days, else days).
 */
export function rangeOf(s: ViewState, now = Date.now()): Range {
  if (s.range === "custom" && s.from && s.to) {
    const from = midnight(s.from <= s.to ? s.from : s.to);
    const to = addDays(midnight(s.from <= s.to ? s.to : s.from), 1);
    return { from, to, interval: to - from <= 2 * DAY + HOUR ? "hour" : "day", label: `${s.from} to ${s.to}` };
  }
  const r = RANGES.find((x) => x.key === s.range) ?? RANGES[2]!;
  const to = Math.ceil((now + 1) / MIN) * MIN;
  return { from: to - r.span, to, interval: r.interval, label: r.label.toLowerCase() };
}

/** Local start of the bucket holding `t`. */
function bucketStart(t: number, interval: Interval): number {
  const d = new Date(t);
  if (interval === "minute") d.setSeconds(0, 0);
  else if (interval === "hour") d.setMinutes(0, 0, 0);
  else d.setHours(0, 0, 0, 0);
  return d.getTime();
}
const nextBucket = (t: number, interval: Interval) => (interval === "day" ? addDays(t, 1) : t + (interval === "hour" ? HOUR : MIN));

export interface Bucket {
  t: number;
  clicks: number;
  visitors: number;
  /** Starts before the range or ends after it (or after now): not a whole bucket's count. */
  partial: boolean;
}

/** Every bucket of the range (the API lists only those with clicks), the API's counts filled in. */
export function buckets(range: Range, series: { t: string; clicks: number; visitors: number }[], now = Date.now()): Bucket[] {
  const got = new Map(series.map((p) => [Date.parse(p.t), p]));
  const out: Bucket[] = [];
  for (let t = bucketStart(range.from, range.interval); t < range.to && out.length < 5000; t = nextBucket(t, range.interval)) {
    const p = got.get(t);
    got.delete(t);
    out.push({ t, clicks: p?.clicks ?? 0, visitors: p?.visitors ?? 0, partial: t < range.from || nextBucket(t, range.interval) > Math.min(range.to, now) });
  }
  // A bucket the API drew elsewhere (a zone rule this browser knows differently) still counts.
  for (const [t, p] of got) out.push({ t, clicks: p.clicks, visitors: p.visitors, partial: false });
  return out.sort((a, b) => a.t - b.t);
}

/** The range and bots controls; `onChange` runs after the state is saved. */
export function rangeControls(state: ViewState, onChange: () => void, opts: { bots?: boolean } = {}): HTMLElement {
  const select = h("select", { name: "range", "aria-label": "Time range" }, RANGES.map((r) => h("option", { value: r.key, selected: state.range === r.key }, r.label)), h("option", { value: "custom", selected: state.range === "custom" }, "Custom range…"));
  const from = h("input", { type: "date", name: "from", value: state.from, "aria-label": "First day" });
  const to = h("input", { type: "date", name: "to", value: state.to, "aria-label": "Last day" });
  const apply = h("button", { type: "submit" }, "Apply");
  const custom = h("form", { class: "custom-range", hidden: state.range !== "custom" }, h("label", {}, "From ", from), h("label", {}, "to ", to), apply);
  const bots = h(
    "select",
    { name: "bots", "aria-label": "Bot clicks" },
    h("option", { value: "exclude", selected: state.bots === "exclude" }, "Bots excluded"),
    h("option", { value: "include", selected: state.bots === "include" }, "Bots included"),
    h("option", { value: "only", selected: state.bots === "only" }, "Bots only"),
  );
  select.addEventListener("change", () => {
    custom.hidden = select.value !== "custom";
    if (select.value === "custom") return from.focus();
    state.range = select.value as RangeKey;
    saveState(state);
    onChange();
  });
  custom.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!from.value || !to.value) return;
    Object.assign(state, { range: "custom", from: from.value, to: to.value });
    saveState(state);
    onChange();
  });
  bots.addEventListener("change", () => {
    state.bots = bots.value as Bots;
    saveState(state);
    onChange();
  });
  return h(
    "div",
    { class: "controls" },
    h("div", { class: "control-row" }, select, opts.bots === false ? null : h("label", { class: "bots" }, h("span", { class: "muted" }, "Bot clicks: "), bots)),
    custom,
    h("p", { class: "muted tz" }, `Times in ${tzLabel()}`),
  );
}

/** RFC 4180 CSV (CRLF, fields quoted when they need it). */
export function toCsv(rows: (string | number | boolean)[][]): string {
  const cell = (v: string | number | boolean) => {
    const s = String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return rows.map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
}

/** Saves `text` as a file (a blob link: nothing leaves the browser). */
export function saveFile(name: string, text: string, type = "text/csv;charset=utf-8"): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
