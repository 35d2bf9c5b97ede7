import { describe, expect, it } from "vitest";
import { rawRanges, type Plan } from "./stats-query.ts";

const H = 3_600_000;
const D = 24 * H;
const plan = (p: Partial<Plan>): Plan => ({ days: [], wholeDays: [], lo: 0, hi: 0, stale: [], raw: true, source: "", ...p });

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
