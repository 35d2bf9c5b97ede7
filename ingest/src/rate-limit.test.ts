import { expect, it } from "vitest";
import { rateLimiter } from "./rate-limit.ts";

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
