import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasUnlockCookie, unlockCookie } from "../../edge/src/unlock.ts";
import { visitorHash } from "../../ingest/src/clicks/privacy.ts";
import { keysOf } from "../../shared/keys.ts";
import { checkVerifier, verifyPassword } from "../../shared/password.ts";
import { requestMessage, sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import { clickEvent, postBeacon } from "../fixtures.ts";
import { body, EDGE_SECRET, json, KEYS, startStack, type Stack } from "../helpers.ts";

/**
 * What a holder of one key learns (issue 15). /v1/resolve (and KV) hand out a password
 * *verifier*, not the stored hash: with the resolve key alone there is no offline guessing and
 * no unlock cookie to forge. Visitor hashes are salted with a key of their own, not EDGE_SECRET.
 */
let s: Stack;
let link: { id: number; code: string };
beforeAll(async () => {
  s = await startStack({ edge: false });
  link = await body(await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ url: "https://example.com/vault", slug: "vault", password: "correct horse" }) }));
});
afterAll(() => s.close());

const resolve = async (code: string) => {
  const path = `/v1/resolve/${code}?domain=`;
  return body(await fetch(s.ingest.url + path, { headers: { [SIGNATURE_HEADER]: await sign(KEYS.resolve, requestMessage("GET", path)) } }));
};

describe("/v1/resolve", () => {
  it("hands out a verifier the worker checks with, never the stored password hash", async () => {
    const rec = await resolve("vault");
    const [row] = await s.sql`SELECT password_hash FROM links WHERE id = ${link.id}`;
    expect(rec).not.toHaveProperty("password_hash");
    expect(JSON.stringify(rec)).not.toContain(row!.password_hash.split("$")[3]);
    expect(rec.password).toMatch(/^pbkdf2-sha256\+hmac\$/);
    // The worker checks a submission with it (and the password key)…
    expect(await checkVerifier("correct horse", rec.password, [KEYS.password])).toBe(true);
    // …but whoever holds only what resolve gives cannot: not as a PBKDF2 hash, not with the
    // resolve key, not with EDGE_SECRET's bytes as a key.
    expect(await verifyPassword("correct horse", rec.password)).toBe(false);
    expect(await checkVerifier("correct horse", rec.password, [KEYS.resolve, new TextEncoder().encode(EDGE_SECRET)])).toBe(false);
  });

  it("an unlock cookie forged with any key but the unlock key opens nothing", async () => {
    const rec = await resolve("vault");
    const T = Math.floor(Date.now() / 1000);
    const real = (await unlockCookie(KEYS, rec, false, T)).split(";")[0]!;
    expect(await hasUnlockCookie([KEYS], rec, real, T)).toBe(true);
    for (const wrong of [KEYS.resolve, KEYS.beacon, KEYS.edgeAdmin, KEYS.password, new TextEncoder().encode(EDGE_SECRET)]) {
      const forged = (await unlockCookie({ unlock: wrong }, rec, false, T)).split(";")[0]!;
      expect(await hasUnlockCookie([KEYS], rec, forged, T)).toBe(false);
    }
  });
});

describe("visitor hashes", () => {
  it("are salted with the visitor-salt key, not derivable from EDGE_SECRET", async () => {
    const click = clickEvent({ link_id: link.id, code: "vault", original_url: "https://example.com/vault", ip_address: "198.51.100.23", user_agent: "Mozilla/5.0 (salt test)" });
    expect((await postBeacon(s.ingest.url, click)).status).toBe(202);
    const [row] = await s.sql`SELECT convert_from(data, 'UTF8')::json->>'visitor_hash' AS h FROM outbox ORDER BY id DESC LIMIT 1`;
    const h = row!.h as string;
    expect(h).toMatch(/^[0-9a-f]{32}$/);
    expect(h).not.toBe(visitorHash(EDGE_SECRET, click.timestamp, click.ip_address, click.user_agent));
    expect(h).toBe(visitorHash(Buffer.from(KEYS.visitorSalt).toString("hex"), click.timestamp, click.ip_address, click.user_agent));
    // Another secret's key gives another hash: the salt is the key's, not a constant.
    const other = await keysOf("another-secret-0123456789-abcdefghijklm");
    expect(h).not.toBe(visitorHash(Buffer.from(other.visitorSalt).toString("hex"), click.timestamp, click.ip_address, click.user_agent));
  });
});
