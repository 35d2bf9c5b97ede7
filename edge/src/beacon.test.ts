import { expect, it } from "vitest";
import type { ClickEvent } from "../../shared/event.ts";
import { queueChunks, sendBeacon } from "./beacon.ts";
import type { Env } from "./env.ts";

const click = (i: number, pad = 0) => ({ click_id: `c${i}`, user_agent: "x".repeat(pad) }) as unknown as ClickEvent;

it("keeps sendBatch calls within 100 messages, in order", () => {
  const chunks = queueChunks(Array.from({ length: 250 }, (_, i) => click(i)));
  expect(chunks.map((c) => c.length)).toEqual([100, 100, 50]);
  expect(chunks.flat().map((c) => c.click_id)).toEqual(Array.from({ length: 250 }, (_, i) => `c${i}`));
  expect(queueChunks([])).toEqual([]);
});

it("keeps sendBatch calls under the platform's 256 KB however large the clicks", () => {
  const big = Array.from({ length: 60 }, (_, i) => click(i, 10_000));
  const chunks = queueChunks(big);
  expect(chunks.length).toBeGreaterThan(1);
  for (const c of chunks) expect(new TextEncoder().encode(c.map((e) => JSON.stringify(e)).join("")).length).toBeLessThan(256_000);
  expect(chunks.flat()).toHaveLength(60);
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
