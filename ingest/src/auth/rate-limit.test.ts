import { expect, it } from "vitest";
import { failureThrottle, rateLimiter } from "./rate-limit.ts";

it("allows a burst up to the allowance, then refuses with the wait until the next token", () => {
  let t = 0;
  const take = rateLimiter(() => t);
  for (let i = 0; i < 60; i++) expect(take(1, 60).retryAfterS).toBeNull();
  expect(take(1, 60)).toEqual({ remaining: 0, retryAfterS: 1 });
  expect(take(2, 60).retryAfterS).toBeNull(); // buckets are per key
  t = 1000; // one token per second at 60/min
  expect(take(1, 60).retryAfterS).toBeNull();
  expect(take(1, 60).retryAfterS).toBe(1);
  t = 61_000;
  expect(take(1, 60).remaining).toBe(59);
});

it("refuses an address after its failures for the rest of its minute, then starts afresh", () => {
  let t = 0;
  const th = failureThrottle(3, () => t);
  for (let i = 0; i < 3; i++) {
    expect(th.retryAfterS("a")).toBeNull();
    th.fail("a");
  }
  expect(th.retryAfterS("a")).toBe(60);
  expect(th.retryAfterS("b")).toBeNull(); // per address
  t = 59_500;
  expect(th.retryAfterS("a")).toBe(1);
  t = 60_000;
  expect(th.retryAfterS("a")).toBeNull();
  th.fail("a");
  expect(th.retryAfterS("a")).toBeNull();
});
