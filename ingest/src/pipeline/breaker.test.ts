import { describe, expect, it } from "vitest";
import { Breaker, BreakerOpenError } from "./breaker.ts";

describe("Breaker", () => {
  it("opens after N failures in a row, refuses without calling, probes after the reset, closes on success", async () => {
    let t = 0;
    let calls = 0;
    let healthy = false;
    const states: string[] = [];
    const b = new Breaker("dep", async () => {
      calls++;
      if (!healthy) throw new Error("down");
      return "ok";
    }, { failures: 3, resetMs: 1000, now: () => t });
    b.onChange((s) => states.push(s));

    // Earlier successes do not delay the opening: only the run of failures counts.
    healthy = true;
    for (let i = 0; i < 50; i++) await b.fire();
    healthy = false;
    for (let i = 0; i < 2; i++) await expect(b.fire()).rejects.toThrow("down");
    expect(b.state).toBe("closed");
    await expect(b.fire()).rejects.toThrow("down");
    expect(b.state).toBe("open");
    const before = calls;
    await expect(b.fire()).rejects.toBeInstanceOf(BreakerOpenError);
    expect(calls).toBe(before);

    t = 1000; // half-open: one probe, which fails → open again
    await expect(b.fire()).rejects.toThrow("down");
    expect(b.state).toBe("open");
    t = 2000;
    healthy = true;
    expect(await b.fire()).toBe("ok");
    expect(b.state).toBe("closed");
    expect(states).toEqual(["open", "half_open", "open", "half_open", "closed"]);
  });

  it("lets only one probe through while half-open, and ignores errors that are not the dependency's", async () => {
    let t = 0;
    let release!: () => void;
    const b = new Breaker("dep", (mode: string) => {
      if (mode === "bad-data") return Promise.reject(Object.assign(new Error("bad"), { data: true }));
      if (mode === "fail") return Promise.reject(new Error("down"));
      return new Promise<string>((r) => (release = () => r("ok")));
    }, { failures: 1, resetMs: 10, now: () => t, isFailure: (e) => !(e as { data?: boolean }).data });
    await expect(b.fire("bad-data")).rejects.toThrow("bad");
    expect(b.state).toBe("closed");
    await expect(b.fire("fail")).rejects.toThrow("down");
    expect(b.state).toBe("open");
    t = 10;
    const probe = b.fire("slow");
    await expect(b.fire("slow")).rejects.toBeInstanceOf(BreakerOpenError);
    release();
    expect(await probe).toBe("ok");
    expect(b.state).toBe("closed");
  });
});
