import { describe, expect, it } from "vitest";
import type { EdgeLink } from "../../shared/event.ts";
import { keysOf } from "../../shared/keys.ts";
import { hashPassword, passwordVerifier } from "../../shared/password.ts";
import { checkPassword, hasUnlockCookie, MAX_FORM_BYTES, readSubmission, unlockCookie, UNLOCK_MAX_AGE_S } from "./unlock.ts";

const link: EdgeLink = { id: 3, domain: "go.example", code: "secret", url: "https://example.com/", status: 302, password: "pbkdf2-sha256+hmac$1000$c2FsdA$aGFzaA" };
const k = await keysOf("unit-test-edge-secret-0123456789-abcdef");
const other = await keysOf("another-edge-secret-0123456789-abcdef");
const cookieOf = (setCookie: string) => setCookie.split(";")[0]!;
const T = 1_800_000_000;

describe("unlock cookie", () => {
  it("is HttpOnly, SameSite=Lax, scoped to the link's path for a day, Secure on https", async () => {
    const c = await unlockCookie(k, link, true, T);
    expect(c).toMatch(/^lf_unlock=\d+\.[0-9a-f]{64}; Max-Age=86400; Path=\/secret; HttpOnly; SameSite=Lax; Secure$/);
    expect(await unlockCookie(k, link, false, T)).not.toMatch(/Secure/);
  });
  it("opens only the link and password it was made for, until it expires", async () => {
    const cookie = cookieOf(await unlockCookie(k, link, false, T));
    expect(await hasUnlockCookie([k], link, `a=b; ${cookie}; c=d`, T + 10)).toBe(true);
    expect(await hasUnlockCookie([k], link, cookie, T + UNLOCK_MAX_AGE_S + 1)).toBe(false);
    expect(await hasUnlockCookie([other], link, cookie, T)).toBe(false);
    expect(await hasUnlockCookie([k], { ...link, code: "secret2" }, cookie, T)).toBe(false);
    expect(await hasUnlockCookie([k], { ...link, domain: "" }, cookie, T)).toBe(false);
    expect(await hasUnlockCookie([k], { ...link, password: "pbkdf2-sha256+hmac$1000$b3RoZXI$aGFzaA" }, cookie, T)).toBe(false);
    // A later expiry than the MAC covers is refused.
    const [, mac] = cookie.split(".");
    expect(await hasUnlockCookie([k], link, `lf_unlock=${T + 100}.${mac}`, T)).toBe(false);
    expect(await hasUnlockCookie([k], link, null, T)).toBe(false);
  });
  it("is made with the unlock key alone and still opens during a rotation (previous secret's keys in the ring)", async () => {
    const cookie = cookieOf(await unlockCookie(other, link, false, T));
    expect(await hasUnlockCookie([k], link, cookie, T)).toBe(false);
    expect(await hasUnlockCookie([k, other], link, cookie, T)).toBe(true);
    // Another purpose's key of the same secret makes no valid cookie.
    expect(await hasUnlockCookie([{ unlock: k.beacon }], link, cookieOf(await unlockCookie(k, link, false, T)), T)).toBe(false);
  });
});

describe("password submission", () => {
  const post = (body: BodyInit, type = "application/x-www-form-urlencoded") => new Request("https://s.example/secret", { method: "POST", headers: { "content-type": type }, body });
  it("reads the password field of a urlencoded form", async () => {
    expect(await readSubmission(post("password=s%C3%A9same+ouvre-toi&x=1"))).toEqual({ ok: true, password: "sésame ouvre-toi" });
    expect(await readSubmission(post("x=1"))).toEqual({ ok: true, password: "" });
  });
  it("refuses other content types and bodies over the limit", async () => {
    expect(await readSubmission(post('{"password":"x"}', "application/json"))).toEqual({ ok: false, status: 415 });
    expect(await readSubmission(post("password=" + "a".repeat(MAX_FORM_BYTES)))).toEqual({ ok: false, status: 413 });
  });
  it("verifies against the link's verifier under any key of the ring; the empty password never matches", async () => {
    const stored = await hashPassword("hunter2", 1000);
    const l = { ...link, password: (await passwordVerifier(stored, k.password))! };
    expect(await checkPassword("hunter2", l, [k])).toBe(true);
    expect(await checkPassword("hunter3", l, [k])).toBe(false);
    expect(await checkPassword("", l, [k])).toBe(false);
    // Without the password key the verifier is useless: the stored hash is not in it.
    expect(l.password).not.toContain(stored.split("$")[3]);
    expect(await checkPassword("hunter2", l, [other])).toBe(false);
    expect(await checkPassword("hunter2", l, [other, k])).toBe(true);
    // The stored hash itself (the old record format) is not a verifier.
    expect(await checkPassword("hunter2", { ...link, password: stored }, [k])).toBe(false);
  });
});
