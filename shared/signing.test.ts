import { describe, expect, it } from "vitest";
import { requestMessage, sign, SIGNATURE_WINDOW_S, verify } from "./signing.ts";

const SECRET = "unit-test-secret-0123456789";

describe("beacon signing", () => {
  it("verifies what it signed, in the same header format", async () => {
    const header = await sign(SECRET, '{"a":1}', 1_700_000_000);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(await verify(SECRET, header, '{"a":1}', 1_700_000_000)).toEqual({ ok: true });
  });

  it("signs a body's UTF-8 bytes exactly as it signs the body as a string (the edge sends the bytes)", async () => {
    const body = '[{"user_agent":"Mozilla/5.0 (ü, 日本, 🙂)"}]';
    const t = 1_700_000_000;
    const header = await sign(SECRET, new TextEncoder().encode(body), t);
    expect(header).toBe(await sign(SECRET, body, t));
    expect(await verify(SECRET, header, body, t)).toEqual({ ok: true });
    expect(await sign(SECRET, new TextEncoder().encode(body + " "), t)).not.toBe(header);
  });

  it("refuses a tampered body, a wrong key, a missing or malformed header", async () => {
    const header = await sign(SECRET, '{"a":1}');
    expect(await verify(SECRET, header, '{"a":2}')).toEqual({ ok: false, reason: "mismatch" });
    expect(await verify("another-secret-0123456789", header, '{"a":1}')).toEqual({ ok: false, reason: "mismatch" });
    expect(await verify(SECRET, undefined, "x")).toEqual({ ok: false, reason: "missing" });
    expect(await verify(SECRET, "t=abc,v1=00", "x")).toEqual({ ok: false, reason: "malformed" });
    expect(await verify(SECRET, header.replace(/v1=../, "v1=zz"), '{"a":1}')).toEqual({ ok: false, reason: "malformed" });
  });

  it("refuses signatures outside the window, both ways, and accepts its edge", async () => {
    const t = 1_700_000_000;
    const header = await sign(SECRET, "body", t);
    expect(await verify(SECRET, header, "body", t + SIGNATURE_WINDOW_S)).toEqual({ ok: true });
    expect(await verify(SECRET, header, "body", t + SIGNATURE_WINDOW_S + 1)).toEqual({ ok: false, reason: "expired" });
    expect(await verify(SECRET, header, "body", t - SIGNATURE_WINDOW_S - 1)).toEqual({ ok: false, reason: "expired" });
  });

  it("binds control-route signatures to method and path", async () => {
    const header = await sign(SECRET, requestMessage("GET", "/v1/resolve/abc?domain="));
    expect(await verify(SECRET, header, requestMessage("GET", "/v1/resolve/abd?domain="))).toMatchObject({ ok: false });
    expect(await verify(SECRET, header, requestMessage("get", "/v1/resolve/abc?domain="))).toEqual({ ok: true });
  });

  it("refuses a header carrying two signatures (joined duplicate headers)", async () => {
    const a = await sign(SECRET, "body");
    expect(await verify(SECRET, `${a}, ${a}`, "body")).toEqual({ ok: false, reason: "malformed" });
  });
});
