import { describe, expect, it } from "vitest";
import { hourlyRanges, rawRanges, subtractRanges, withWeeks, type Plan } from "./stats-query.ts";

const H = 3_600_000;
const D = 24 * H;
const plan = (p: Partial<Plan>): Plan => ({ weeks: [], days: [], wholeDays: [], lo: 0, hi: 0, stale: [], split: [], quarters: [], raw: true, source: "", ...p });

describe("rawRanges: what the raw table answers", () => {
  it("is the range outside the rolled-up hours, and the stale hours within them", () => {
    const t0 = 100 * D;
    // Rolled up [t0 + 1h, t0 + 10h) but for hours 3 and 4: raw before, the two stale hours, and after.
    expect(rawRanges(t0 + 0.5 * H, t0 + 11 * H, plan({ lo: t0 + H, hi: t0 + 10 * H, stale: [t0 + 3 * H, t0 + 4 * H] }))).toEqual([
      [t0 + 0.5 * H, t0 + H],
      [t0 + 3 * H, t0 + 5 * H],
      [t0 + 10 * H, t0 + 11 * H],
    ]);
    // Everything rolled up: nothing raw; nothing rolled up: all of it.
    expect(rawRanges(t0, t0 + 5 * H, plan({ lo: t0, hi: t0 + 5 * H }))).toEqual([]);
    expect(rawRanges(t0, t0 + 5 * H, plan({}))).toEqual([[t0, t0 + 5 * H]]);
  });

  it("leaves a day to the rollups only when it is dense for every link asked", () => {
    const d0 = Date.parse("2026-11-01T00:00:00Z");
    const dense = ["1/2026-11-01", "2/2026-11-01", "1/2026-11-02"];
    // Two links: 1 Nov is dense for both (rolled up); 2 Nov only for link 1 (raw, the caller leaves its rows out).
    expect(rawRanges(d0, d0 + 3 * D, plan({ dense }), 2)).toEqual([[d0 + D, d0 + 3 * D]]);
    // Three links, one of them never dense: every day is raw.
    expect(rawRanges(d0, d0 + 3 * D, plan({ dense }), 3)).toEqual([[d0, d0 + 3 * D]]);
  });
});

describe("ranges by runs", () => {
  it("subtractRanges: holes in any order, overlapping or outside the range", () => {
    expect(subtractRanges(10, 100, [[50, 60], [0, 20], [55, 70], [95, 200], [30, 30]])).toEqual([[20, 50], [70, 95]]);
    expect(subtractRanges(10, 100, [])).toEqual([[10, 100]]);
    expect(subtractRanges(10, 100, [[0, 100]])).toEqual([]);
  });

  it("hourlyRanges and rawRanges equal the hour-by-hour definition, over random plans", () => {
    // The definition: an hour of [lo, hi) is hourly unless stale, split or in a daily day; raw is
    // every moment of [from, to) no hourly-or-daily rollup covers (outside [lo, hi), stale and split hours).
    const runs = (hours: number[]) => {
      const out: [number, number][] = [];
      for (const h of hours) {
        const last = out.at(-1);
        if (last && last[1] === h) last[1] = h + H;
        else out.push([h, h + H]);
      }
      return out;
    };
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 48271) % 2147483647), seed % n);
    for (let i = 0; i < 200; i++) {
      const d0 = (19_000 + rnd(50)) * D;
      const lo = d0 + rnd(48) * H;
      const hi = lo + rnd(40 * 24) * H;
      const hours = Array.from({ length: (hi - lo) / H }, (_, k) => lo + k * H);
      const stale = hours.filter(() => rnd(10) === 0);
      const staleDays = new Set(stale.map((h) => Math.floor(h / D) * D));
      const days = [...new Set(hours.map((h) => Math.floor(h / D) * D))].filter((d) => d >= lo && d + D <= hi && !staleDays.has(d) && rnd(3) > 0);
      // Split hours (a zone's bucket boundaries inside them) come with no daily days.
      const split = days.length ? [] : hours.filter((h) => h % D === 18 * H && !stale.includes(h));
      const p = plan({ lo, hi, stale, split, days, wholeDays: days });
      const daySet = new Set(days);
      expect(hourlyRanges(p)).toEqual(runs(hours.filter((h) => !stale.includes(h) && !split.includes(h) && !daySet.has(Math.floor(h / D) * D))));
      const from = lo - rnd(3) * H;
      const to = hi + rnd(3) * H;
      const all = Array.from({ length: (to - from) / H }, (_, k) => from + k * H);
      expect(rawRanges(from, to, p)).toEqual(runs(all.filter((h) => h < lo || h >= hi || stale.includes(h) || split.includes(h))));
    }
  });
});

describe("withWeeks: whole UTC weeks from rollup_weekly", () => {
  // Thursday 2026-10-29 to Wednesday 2026-11-25 (28 days): whole weeks from Monday 2 Nov to Sunday 22 Nov.
  const d0 = Date.parse("2026-10-29T00:00:00Z");
  const days = Array.from({ length: 28 }, (_, i) => d0 + i * D);
  const mondays = ["2026-11-02", "2026-11-09", "2026-11-16"].map((d) => Date.parse(`${d}T00:00:00Z`));
  const base = plan({ days, wholeDays: days, lo: d0, hi: d0 + 28 * D + 5 * H, raw: true });

  it("a breakdown or a weekly series takes every whole week, and the other days stay daily", () => {
    for (const p of [withWeeks(base, null), withWeeks(base, "week")]) {
      expect(p.weeks).toEqual(mondays);
      expect(p.days).toEqual([...days.slice(0, 4), ...days.slice(25)]);
      expect(p.source).toBe("rollup_weekly+rollup_daily+rollup_hourly+clicks");
      // The hours of the last, partial day only: no hour of a week or a day is read twice.
      expect(hourlyRanges(p)).toEqual([[d0 + 28 * D, d0 + 28 * D + 5 * H]]);
    }
  });

  it("a monthly series only weeks inside one month; a daily series none", () => {
    const mid = Date.parse("2026-09-28T00:00:00Z"); // Monday 28 Sep to Sunday 4 Oct straddles two months
    const span = Array.from({ length: 14 }, (_, i) => mid + i * D);
    const p = plan({ days: span, wholeDays: span, lo: mid, hi: mid + 14 * D });
    expect(withWeeks(p, "month").weeks).toEqual([mid + 7 * D]);
    expect(withWeeks(p, null).weeks).toEqual([mid, mid + 7 * D]);
    expect(withWeeks(base, "day")).toBe(base);
  });

  it("a week with a stale day (not whole) stays daily; a breakdown may use whole days a zone's buckets could not", () => {
    const stale = days[12]! + 3 * H; // Tuesday 10 Nov
    const p = plan({ days: days.filter((d) => d !== days[12]), wholeDays: days.filter((d) => d !== days[12]), lo: d0, hi: d0 + 28 * D, stale: [stale] });
    expect(withWeeks(p, null).weeks).toEqual([mondays[0], mondays[2]]);
    // Berlin: no daily buckets (days []), but whole UTC days exist for a breakdown.
    const berlin = plan({ days: [], wholeDays: days, lo: d0, hi: d0 + 28 * D });
    expect(withWeeks(berlin, "week")).toMatchObject({ weeks: [], days: [] });
    expect(withWeeks(berlin, null).weeks).toEqual(mondays);
    // Kolkata: the hours its midnights split are the series' only; a breakdown has no buckets
    // and takes the whole weeks and days, none of it read twice.
    const split = days.map((d) => d + 18 * H);
    const kolkata = plan({ days: [], wholeDays: days, lo: d0, hi: d0 + 28 * D, split });
    expect(hourlyRanges(kolkata)).toHaveLength(29); // 28 split hours cut the 28 days in 29 runs
    expect(withWeeks(kolkata, "week")).toMatchObject({ weeks: [], days: [], split });
    const breakdown = withWeeks(kolkata, null);
    expect(breakdown).toMatchObject({ weeks: mondays, split: [] });
    expect(hourlyRanges(breakdown)).toEqual([]);
    // The same hours from the quarter-hour rows: neither hourly nor raw; a breakdown's whole days again.
    const sliced = plan({ days: [], wholeDays: days, lo: d0, hi: d0 + 28 * D, quarters: split, raw: false });
    expect(hourlyRanges(sliced)).toEqual(hourlyRanges(kolkata));
    expect(rawRanges(d0, d0 + 28 * D, sliced)).toEqual([]);
    expect(rawRanges(d0, d0 + 28 * D, kolkata)).toHaveLength(28);
    expect(withWeeks(sliced, null)).toMatchObject({ weeks: mondays, split: [], quarters: [] });
    expect(hourlyRanges(withWeeks(sliced, null))).toEqual([]);
  });
});
