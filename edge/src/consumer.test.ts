import { expect, it } from "vitest";
import type { ClickEvent } from "../../shared/event.ts";
import { beaconChunks, retryDelay } from "./consumer.ts";

it("doubles the redelivery delay per failed attempt, from the base, up to 300 s", () => {
  expect([1, 2, 3, 4].map((a) => retryDelay(5, a))).toEqual([5, 10, 20, 40]);
  expect(retryDelay(5, 7)).toBe(300);
  expect(retryDelay(5, 100)).toBe(300);
  expect(retryDelay(1, 1)).toBe(1);
  // Whole seconds (the platform's unit); a zero base retries at once.
  expect(retryDelay(1.5, 2)).toBe(3);
  expect(retryDelay(0, 5)).toBe(0);
});

it("covers hours of outage within max_retries = 100 before the dead-letter queue", () => {
  let total = 0;
  for (let a = 1; a <= 100; a++) total += retryDelay(5, a);
  expect(total / 3600).toBeGreaterThan(7);
});

it("splits a delivery's clicks into beacons within ingest's limits (64 KiB, 1,000 clicks), in order", () => {
  const click = (i: number, pad: number) => ({ click_id: `c${i}`, user_agent: "x".repeat(pad) }) as unknown as ClickEvent;
  const small = Array.from({ length: 2_500 }, (_, i) => click(i, 0));
  expect(beaconChunks(small).map((c) => c.length)).toEqual([1000, 1000, 500]);
  const big = Array.from({ length: 300 }, (_, i) => click(i, 600));
  const chunks = beaconChunks(big);
  for (const c of chunks) expect(new TextEncoder().encode(JSON.stringify(c)).length).toBeLessThanOrEqual(64 * 1024);
  expect(chunks.flat().map((c) => c.click_id)).toEqual(big.map((c) => c.click_id));
  expect(beaconChunks([])).toEqual([]);
});
