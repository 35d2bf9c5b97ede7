import { describe, expect, it } from "vitest";
import type { EdgeLink } from "../../shared/event.ts";
import type { Env } from "./env.ts";
import { passwordAttemptAllowed, passwordKey, throttleClient, UNKNOWN_CLIENT } from "./throttle.ts";

const client = (ip?: string, more: Record<string, string> = {}) => throttleClient(new Headers({ ...(ip !== undefined && { "cf-connecting-ip": ip }), ...more }));

describe("throttleClient", () => {
  it("is the IPv4 address Cloudflare gives, and never X-Forwarded-For (a client writes that)", () => {
    expect(client("203.0.113.7")).toBe("203.0.113.7");
    expect(client(undefined, { "x-forwarded-for": "198.51.100.1" })).toBe(UNKNOWN_CLIENT);
    expect(client("not an ip")).toBe(UNKNOWN_CLIENT);
    expect(client("")).toBe(UNKNOWN_CLIENT);
  });
  it("is the /64 of an IPv6 address, however it is written (one subscriber holds a whole /64)", () => {
    const p = "2001:db8:0:1::/64";
    expect(client("2001:db8:0:1::1")).toBe(p);
    expect(client("2001:DB8:0000:0001:ffff:ffff:ffff:ffff")).toBe(p);
    expect(client("2001:db8:0:1:a:b:c:d")).toBe(p);
    expect(client("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(client("2001:db8::3:4:5:6:7")).toBe("2001:db8:0:3::/64"); // the :: stands for one group
    expect(client("::1")).toBe("0:0:0:0::/64");
  });
  it("is the IPv4 of an IPv4-mapped address, and unknown for a malformed IPv6", () => {
    expect(client("::ffff:192.0.2.1")).toBe("192.0.2.1");
    expect(client("1::2::3")).toBe(UNKNOWN_CLIENT);
    expect(client("1:2:3")).toBe(UNKNOWN_CLIENT);
    expect(client("1:2:3:4:5:6:7:8:9")).toBe(UNKNOWN_CLIENT);
    expect(client("g::1")).toBe(UNKNOWN_CLIENT);
  });
});

describe("passwordAttemptAllowed", () => {
  const link: EdgeLink = { id: 42, domain: "", code: "c", url: "https://example.com/", status: 302, password: "pbkdf2-sha256+hmac$1$a$b" };
  const headers = new Headers({ "cf-connecting-ip": "203.0.113.7" });
  it("keys the limiter by link id and client", () => {
    expect(passwordKey(link, "203.0.113.7")).toBe("pw:42:203.0.113.7");
  });
  it("lets submissions through without the binding (a deployment without it), or when it fails", async () => {
    expect(await passwordAttemptAllowed({} as Env, link, headers)).toBe(true);
    const failing = { limit: () => Promise.reject(new Error("down")) } as RateLimit;
    expect(await passwordAttemptAllowed({ PASSWORD_LIMITER: failing } as Env, link, headers)).toBe(true);
  });
});
