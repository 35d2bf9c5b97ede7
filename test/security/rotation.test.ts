import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unlockCookie } from "../../edge/src/unlock.ts";
import { loadConfig } from "../../ingest/src/config.ts";
import { startIngest, type Ingest } from "../../ingest/src/server.ts";
import { linkKey, type EdgeLink } from "../../shared/event.ts";
import { keysOf } from "../../shared/keys.ts";
import { checkVerifier } from "../../shared/password.ts";
import { requestMessage, sign, SIGNATURE_HEADER, type KeyMaterial } from "../../shared/signing.ts";
import { clickEvent, postBeacon } from "../fixtures.ts";
import { body, DATABASE_URL, eventually, json, startStack, type Stack } from "../helpers.ts";

/**
 * Rotating EDGE_SECRET (issue 15): the worker and ingest sign with the new secret's keys and,
 * while EDGE_SECRET_PREVIOUS is set, still accept what the old one's keys signed (beacons,
 * resolve calls, KV pushes, unlock cookies). Ingest started with a previous secret re-seals the
 * password verifiers in KV with the new key. Without the previous secret, the old keys are refused.
 */
const OLD = "old-edge-secret-0123456789-abcdefghijkl";
const NEW = "new-edge-secret-0123456789-abcdefghijkl";
const old = await keysOf(OLD);
const neu = await keysOf(NEW);
const other = await keysOf("some-other-secret-0123456789-abcdefghij");

let s: Stack;
let schema = "";
const started: Ingest[] = [];
/** Another ingest on the stack's schema and worker, with these secrets (as after a redeploy). */
async function ingestWith(secrets: { EDGE_SECRET: string; EDGE_SECRET_PREVIOUS?: string }) {
  const config = loadConfig({
    DATABASE_URL,
    PORT: "0",
    ADMIN_API_KEY: s.adminKey,
    EDGE_ADMIN_URL: s.edge!.url,
    EDGE_SYNC_RETRY_MS: "100",
    SHORT_BASE_URL: "http://localhost:8787",
    LOG_LEVEL: "silent",
    PIPELINE_ROLES: "",
    ...secrets,
  });
  const ingest = await startIngest(config, { schema });
  started.push(ingest);
  return ingest;
}

beforeAll(async () => {
  // The worker is mid-rotation; the first ingest still runs with the old secret only.
  s = await startStack({ env: { EDGE_SECRET: OLD }, vars: { EDGE_SECRET: NEW, EDGE_SECRET_PREVIOUS: OLD } });
  schema = (await s.sql<{ schema: string }[]>`SELECT current_schema() AS schema`)[0]!.schema;
});
afterAll(async () => {
  for (const i of started) await i.close();
  await s.close();
});

const resolve = async (url: string, code: string, key: KeyMaterial) => {
  const path = `/v1/resolve/${code}?domain=`;
  return fetch(url + path, { headers: { [SIGNATURE_HEADER]: await sign(key, requestMessage("GET", path)) } });
};
const push = async (record: object, key: KeyMaterial) => {
  const raw = JSON.stringify(record);
  return fetch(`${s.edge!.url}/_admin/links`, {
    method: "PUT",
    headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(key, requestMessage("PUT", "/_admin/links", raw)) },
    body: raw,
  });
};
const kvRecord = async (code: string) => (await (await s.edge!.mf.getKVNamespace("LINKS")).get(linkKey("", code), "json")) as EdgeLink;

describe("EDGE_SECRET rotation", () => {
  let link: { id: number; code: string };

  it("the worker accepts KV pushes under the previous secret's key as well as the new one's, nothing else", async () => {
    link = await body(await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ url: "https://example.com/rot", slug: "rot", password: "rotate me" }) }));
    // The old ingest's push (signed with the old edge-admin key) was taken.
    const pushed = await kvRecord("rot");
    expect(pushed).toMatchObject({ id: link.id, code: "rot" });
    expect(await checkVerifier("rotate me", pushed.password!, [old.password])).toBe(true);
    const rec = { id: link.id, domain: "", code: "rot2", url: "https://example.com/rot2", status: 302 };
    expect((await push(rec, neu.edgeAdmin)).status).toBe(204);
    expect((await push(rec, old.edgeAdmin)).status).toBe(204);
    expect((await push(rec, other.edgeAdmin)).status).toBe(401);
    expect((await push(rec, NEW)).status).toBe(401); // the secret itself is no key
    expect((await push(rec, neu.beacon)).status).toBe(401); // nor is another purpose's key
  });

  it("an unlock cookie made under the previous secret still opens the link at the worker", async () => {
    const record = await kvRecord("rot");
    const cookie = (await unlockCookie(old, record, false)).split(";")[0]!;
    const res = await s.edge!.mf.dispatchFetch("http://localhost/rot", { headers: { cookie }, redirect: "manual" });
    expect(res.status).toBe(302);
    const forged = (await unlockCookie(other, record, false)).split(";")[0]!;
    expect((await s.edge!.mf.dispatchFetch("http://localhost/rot", { headers: { cookie: forged }, redirect: "manual" })).status).toBe(200); // the form
  });

  it("ingest with EDGE_SECRET_PREVIOUS accepts beacons and resolves under both, and re-seals password verifiers with the new key", async () => {
    const rotated = await ingestWith({ EDGE_SECRET: NEW, EDGE_SECRET_PREVIOUS: OLD });
    const click = (over = {}) => clickEvent({ link_id: link.id, code: "rot", original_url: "https://example.com/rot", ...over });
    expect((await postBeacon(rotated.url, click(), { secret: old.beacon })).status).toBe(202);
    expect((await postBeacon(rotated.url, click(), { secret: neu.beacon })).status).toBe(202);
    expect((await postBeacon(rotated.url, click(), { secret: other.beacon })).status).toBe(401);
    expect((await resolve(rotated.url, "rot", old.resolve)).status).toBe(200);
    const resolved = await body(await resolve(rotated.url, "rot", neu.resolve));
    expect(await checkVerifier("rotate me", resolved.password, [neu.password])).toBe(true);
    // The KV copy is pushed again, sealed with the new password key.
    expect(await eventually(async () => checkVerifier("rotate me", (await kvRecord("rot")).password!, [neu.password]), 10_000, 100)).toBe(true);
    expect(await checkVerifier("rotate me", (await kvRecord("rot")).password!, [old.password])).toBe(false);
    const [row] = await s.sql`SELECT count(*)::int AS n FROM clicks WHERE link_id = ${link.id}`;
    expect(row!.n).toBe(2);
  });

  it("a KV record of the old format (the stored hash itself) is read as a miss and replaced from the origin", async () => {
    const [{ password_hash }] = (await s.sql`SELECT password_hash FROM links WHERE id = ${link.id}`) as unknown as [{ password_hash: string }];
    s.proxy.target = started[0]!.url; // the worker's origin calls go to the rotated ingest (the new resolve key)
    const legacy = { id: link.id, domain: "", code: "rot", url: "https://example.com/rot", status: 302, password_hash };
    await (await s.edge!.mf.getKVNamespace("LINKS")).put(linkKey("", "rot"), JSON.stringify(legacy));
    const res = await s.edge!.mf.dispatchFetch("http://localhost/rot?fresh", { redirect: "manual" });
    expect(res.status).toBe(200); // the password form: still locked
    expect(await eventually(async () => (await kvRecord("rot")).password !== undefined, 5_000, 50)).toBe(true);
    expect(await kvRecord("rot")).not.toHaveProperty("password_hash");
  });

  it("once the previous secret is removed, what its keys sign is refused", async () => {
    const after = await ingestWith({ EDGE_SECRET: NEW });
    const click = clickEvent({ link_id: link.id, code: "rot", original_url: "https://example.com/rot" });
    expect((await postBeacon(after.url, click, { secret: old.beacon })).status).toBe(401);
    expect((await resolve(after.url, "rot", old.resolve)).status).toBe(401);
    expect((await postBeacon(after.url, click, { secret: neu.beacon })).status).toBe(202);
  });
});
