import { describe, expect, it } from "vitest";
import { hasQuarters, localMidnight, MAX_SPLIT_HOURS, offsetsOver, onQuarters, QUARTER_HOURS, rollupGrain, splitHours } from "./time.ts";

const H = 3_600_000;
const DAY = 24 * H;
const utc = (s: string) => Date.parse(s);

describe("rollupGrain and splitHours: which rollups line up with a zone's buckets", () => {
  it("whole-hour zones: hourly rows, daily ones at UTC+0 only, nothing split", () => {
    const from = utc("2026-11-01T00:00:00Z");
    expect(rollupGrain("day", "UTC", from, from + 30 * DAY)).toEqual({ hourly: true, daily: true, split: [] });
    expect(rollupGrain("day", "Europe/Berlin", from, from + 30 * DAY)).toEqual({ hourly: true, daily: false, split: [] });
    expect(rollupGrain("minute", "UTC", from, from + H)).toEqual({ hourly: false, daily: false, split: [] });
  });

  it("Kolkata (+05:30) days: the hour each local midnight falls in, 18:00–19:00 UTC, inside the range only", () => {
    const from = utc("2026-11-01T00:00:00Z");
    const g = rollupGrain("day", "Asia/Kolkata", from, from + 30 * DAY);
    expect(g.hourly).toBe(true);
    expect(g.daily).toBe(false);
    expect(g.split).toEqual(Array.from({ length: 30 }, (_, i) => from + i * DAY + 18 * H));
    // From a local midnight: that one is the range's start, not a split.
    const midnight = localMidnight("2026-11-01", "Asia/Kolkata");
    expect(midnight).toBe(utc("2026-10-31T18:30:00Z"));
    expect(splitHours("day", "Asia/Kolkata", midnight, midnight + 3 * DAY)).toEqual([midnight - 30 * 60_000 + DAY, midnight - 30 * 60_000 + 2 * DAY]);
    // Hour buckets there: every hour is split, so all raw.
    expect(rollupGrain("hour", "Asia/Kolkata", from, from + DAY)).toEqual({ hourly: false, daily: false, split: [] });
  });

  it("Kathmandu (+05:45) weeks: Monday's midnight only, Sunday 18:15 UTC", () => {
    const from = utc("2026-11-01T00:00:00Z"); // a Sunday
    expect(splitHours("week", "Asia/Kathmandu", from, from + 21 * DAY)).toEqual([utc("2026-11-01T18:00:00Z"), utc("2026-11-08T18:00:00Z"), utc("2026-11-15T18:00:00Z")]);
  });

  it("Adelaide months across its DST change (+10:30 to +09:30 in April)", () => {
    expect(splitHours("month", "Australia/Adelaide", utc("2026-02-15T00:00:00Z"), utc("2026-06-15T00:00:00Z"))).toEqual([
      utc("2026-02-28T13:00:00Z"), // 1 March 00:00 +10:30 = 13:30 UTC
      utc("2026-03-31T13:00:00Z"), // 1 April 00:00 +10:30
      utc("2026-04-30T14:00:00Z"), // 1 May 00:00 +09:30 = 14:30 UTC
      utc("2026-05-31T14:00:00Z"),
    ]);
  });

  it("Lord Howe (+10:30, +11:00 in summer): a midnight on a whole UTC hour splits nothing", () => {
    // January: +11:00, midnights at 13:00 UTC.
    expect(splitHours("day", "Australia/Lord_Howe", utc("2026-01-05T00:00:00Z"), utc("2026-01-08T00:00:00Z"))).toEqual([]);
    // June: +10:30, midnights at 13:30 UTC.
    expect(splitHours("day", "Australia/Lord_Howe", utc("2026-06-05T00:00:00Z"), utc("2026-06-07T00:00:00Z"))).toEqual([utc("2026-06-05T13:00:00Z"), utc("2026-06-06T13:00:00Z")]);
  });

  it("more split hours than MAX_SPLIT_HOURS: the range is read raw, as before", () => {
    const from = utc("2024-01-01T00:00:00Z");
    expect(splitHours("day", "Asia/Kolkata", from, from + (MAX_SPLIT_HOURS + 5) * DAY)).toBeNull();
    expect(rollupGrain("day", "Asia/Kolkata", from, from + (MAX_SPLIT_HOURS + 5) * DAY)).toEqual({ hourly: false, daily: false, split: [] });
    expect(rollupGrain("week", "Asia/Kolkata", from, from + (MAX_SPLIT_HOURS + 5) * DAY).hourly).toBe(true);
  });

  it("QUARTER_HOURS: every hour a zone's midnight splits, for every zone this runtime knows, on quarter hours", () => {
    // Two years of offsets, every zone: where a midnight falls inside a UTC hour, the sealer must
    // have rolled that hour up by quarter hour, and the midnight must lie on one.
    const from = utc("2026-01-01T00:00:00Z");
    const missing = new Set<string>();
    for (const tz of Intl.supportedValuesOf("timeZone"))
      for (const o of offsetsOver(tz, from, from + 730 * DAY)) {
        if (o % 60 === 0) continue;
        const midnight = ((-o % 1440) + 1440) % 1440;
        if (midnight % 15 !== 0 || !QUARTER_HOURS.includes(Math.floor(midnight / 60))) missing.add(`${tz} ${o}`);
      }
    expect([...missing]).toEqual([]);
    expect(onQuarters("Asia/Kathmandu", from, from + 30 * DAY)).toBe(true);
    expect(hasQuarters(utc("2026-11-01T18:00:00Z"))).toBe(true); // Kolkata's and Kathmandu's midnights
    expect(hasQuarters(utc("2026-11-01T12:00:00Z"))).toBe(false);
  });
});
