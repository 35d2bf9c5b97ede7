import { expect, it } from "vitest";
import type { ClickEvent } from "../../shared/event.ts";
import { packParcels, parcelClicks, parcelTries, queueChunks, sendBeacon } from "./beacon.ts";
import type { Env } from "./env.ts";

const click = (i: number, pad = 0) => ({ click_id: `c${i}`, user_agent: "x".repeat(pad) }) as unknown as ClickEvent;

it("packs many clicks into one queue message (one broker timer per message, not per click), in order", () => {
  const chunks = queueChunks(Array.from({ length: 250 }, (_, i) => click(i)));
  expect(chunks).toHaveLength(1);
  expect(chunks[0]).toHaveLength(1);
  expect(chunks.flat().flatMap((p) => p.clicks).map((c) => c.click_id)).toEqual(Array.from({ length: 250 }, (_, i) => `c${i}`));
  expect(queueChunks([])).toEqual([]);
  // The attempts already made travel with the clicks.
  expect(queueChunks([click(1)], 7)[0]![0]).toEqual({ clicks: [click(1)], tries: 7 });
});

it("keeps each message under 128 KB and each sendBatch under 256 KB and 100 messages, however large the clicks", () => {
  const big = Array.from({ length: 60 }, (_, i) => click(i, 10_000));
  const chunks = queueChunks(big);
  const size = (x: unknown) => new TextEncoder().encode(JSON.stringify(x)).length;
  for (const c of chunks) {
    expect(c.length).toBeLessThanOrEqual(100);
    expect(size(c)).toBeLessThan(256_000);
    for (const m of c) expect(size(m)).toBeLessThan(128_000);
  }
  expect(chunks.flat().flatMap((p) => p.clicks)).toHaveLength(60);
  expect(packParcels(big).length).toBeGreaterThan(1);
});

it("reads both message formats: a parcel of clicks, and the single click of an older worker", () => {
  expect(parcelClicks({ clicks: [click(1), click(2)], tries: 3 })).toEqual([click(1), click(2)]);
  expect(parcelTries({ clicks: [click(1)], tries: 3 })).toBe(3);
  expect(parcelClicks(click(5))).toEqual([click(5)]);
  expect(parcelTries(click(5))).toBe(0);
  expect(parcelClicks(null)).toEqual([]);
});

it("sends nothing for an empty batch (ingest would refuse `[]`, and the log would count a refused click)", async () => {
  const calls: string[] = [];
  const real = globalThis.fetch;
  globalThis.fetch = (async (url: string) => {
    calls.push(String(url));
    return new Response(null, { status: 400 });
  }) as typeof fetch;
  try {
    const env = { INGEST_URL: "http://ingest.test", EDGE_SECRET: "s", BEACON_ATTEMPTS: "1" } as unknown as Env;
    expect(await sendBeacon(env, [])).toEqual({ undelivered: [], refused: [] });
    expect(calls).toEqual([]);
  } finally {
    globalThis.fetch = real;
  }
});
