import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PASSWORD_WINDOW_S } from "../../edge/src/throttle.ts";
import { body, json, startStack, type Stack } from "../helpers.ts";

/**
 * Password guessing at the edge: every submission to a protected link counts against that
 * link and client (CF-Connecting-IP, which Miniflare sets from the socket like Cloudflare
 * does) in the PASSWORD_LIMITER rate-limiting binding, 10 a minute; the 11th gets 429 with
 * Retry-After and is not checked at all, so the right password is refused too until the
 * window passes. Other links and other clients are not affected.
 */
let s: Stack;
beforeAll(async () => {
  s = await startStack();
});
afterAll(() => s.close());

async function createLink(slug: string, password: string) {
  const res = await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ url: `https://example.com/${slug}`, slug, password }) });
  expect(res.status).toBe(201);
  return (await body(res)) as { code: string; url: string };
}

const submit = async (code: string, password: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${s.edge!.url}/${code}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams({ password }),
    redirect: "manual",
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
};

/**
 * Miniflare's limiter counts in fixed windows of the clock's minute (Cloudflare's in its own
 * windows): start the sequence early in a window so it cannot reset half-way through.
 */
async function freshWindow() {
  const left = PASSWORD_WINDOW_S * 1000 - (Date.now() % (PASSWORD_WINDOW_S * 1000));
  if (left < 20_000) await new Promise((r) => setTimeout(r, left + 100));
}

describe("password guessing", () => {
  it("10 wrong passwords, then 429 with Retry-After (the right one too, until the window passes); other links and clients unaffected", { timeout: 60_000 }, async () => {
    const a = await createLink("guess-a", "right-pw-a");
    const b = await createLink("guess-b", "right-pw-b");
    await freshWindow();

    for (let i = 1; i <= 10; i++) expect((await submit(a.code, `wrong-${i}`)).status, `attempt ${i}`).toBe(401);

    const throttled = await submit(a.code, "wrong-11");
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get("retry-after")).toBe(String(PASSWORD_WINDOW_S));
    expect(throttled.headers.get("content-type")).toMatch(/^text\/html/);
    expect(throttled.headers.get("cache-control")).toBe("no-store");
    expect(throttled.headers.get("content-security-policy")).toMatch(/frame-ancestors 'none'/);
    expect(throttled.text).toContain("Too many password attempts");

    // Throttled submissions are not checked: the right password is refused as well (no cookie),
    // until the window passes.
    const right = await submit(a.code, "right-pw-a");
    expect(right.status).toBe(429);
    expect(right.headers.get("set-cookie")).toBeNull();
    // The form itself still shows (only submissions count).
    expect((await fetch(`${s.edge!.url}/${a.code}`, { redirect: "manual" })).status).toBe(200);

    // Another link, same client: its own count.
    expect((await submit(b.code, "wrong")).status).toBe(401);
    const unlocked = await submit(b.code, "right-pw-b");
    expect(unlocked.status).toBe(303);
    expect(unlocked.headers.get("set-cookie")).toMatch(/^lf_unlock=/);

    // Same link, another client (Cloudflare's CF-Connecting-IP; a client cannot set it there).
    const other = await submit(a.code, "right-pw-a", { "cf-connecting-ip": "203.0.113.9" });
    expect(other.status).toBe(303);
    expect(other.headers.get("set-cookie")).toMatch(/^lf_unlock=/);
    // X-Forwarded-For, which a client writes, does not make another client.
    expect((await submit(a.code, "right-pw-a", { "x-forwarded-for": "198.51.100.1" })).status).toBe(429);
  });

  it("counts one IPv6 client by its /64, whatever address in it guesses", { timeout: 60_000 }, async () => {
    const c = await createLink("guess-v6", "right-pw-c");
    await freshWindow();
    for (let i = 1; i <= 10; i++) expect((await submit(c.code, "wrong", { "cf-connecting-ip": `2001:db8:1:2::${i.toString(16)}` })).status, `attempt ${i}`).toBe(401);
    expect((await submit(c.code, "right-pw-c", { "cf-connecting-ip": "2001:db8:1:2:ffff::1" })).status).toBe(429);
    expect((await submit(c.code, "right-pw-c", { "cf-connecting-ip": "2001:db8:1:3::1" })).status).toBe(303);
  });
});
