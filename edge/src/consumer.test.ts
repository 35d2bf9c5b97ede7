import { expect, it } from "vitest";
import { retryDelay } from "./consumer.ts";

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
