import { copyFile, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../ingest/src/db/migrate.ts";
import { requestMessage, sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import { startDnsServer } from "../dns-server.ts";
import { body, json, KEYS, startStack, testSchema, type Stack } from "../helpers.ts";

/**
 * Custom domains need proof of ownership (DNS TXT): a claim alone squats nothing (it blocks no
 * other workspace from linking to the name or claiming it), serves no links, and names that no
 * one can prove (IP literals, the shortener's own hosts, reserved and internal names) are refused.
 */
let s: Stack;
let dns: Awaited<ReturnType<typeof startDnsServer>>;
let a: string; // workspace A's admin key (the operator's workspace)
let b: string; // workspace B's
let wsB: number;

beforeAll(async () => {
  dns = await startDnsServer();
  s = await startStack({
    edge: false,
    env: { DNS_RESOLVER: dns.address, SHORT_BASE_URL: "https://lf.linkflow.com", PRIMARY_HOSTS: "localhost,127.0.0.1,go.linkflow.com" },
  });
  a = s.adminKey;
  const ws = await body(await fetch(`${s.ingest.url}/api/workspaces`, { method: "POST", headers: json(a), body: JSON.stringify({ name: "other" }) }));
  b = ws.admin_key.key;
  wsB = Number(ws.workspace.id);
});
afterAll(async () => {
  await s?.close();
  await dns?.close();
});

const api = (key: string, path: string, method = "GET", b?: unknown) =>
  fetch(`${s.ingest.url}/api${path}`, { method, headers: json(key), ...(b === undefined ? {} : { body: JSON.stringify(b) }) });
const claim = (key: string, hostname: string) => api(key, "/domains", "POST", { hostname });
const verify = (key: string, id: number) => api(key, `/domains/${id}/verify`, "POST");
/** Claims, publishes the TXT record on the test DNS server, verifies. */
async function claimAndVerify(key: string, hostname: string) {
  const d = await body(await claim(key, hostname));
  dns.txt.set(d.verification.name, [d.verification.value]);
  const res = await verify(key, d.id);
  expect(res.status).toBe(200);
  return body(res);
}
const link = (key: string, b: unknown) => api(key, "/links", "POST", b);
const resolve = async (code: string, domain = "") => {
  const path = `/v1/resolve/${code}?domain=${domain}`;
  return fetch(s.ingest.url + path, { headers: { [SIGNATURE_HEADER]: await sign(KEYS.resolve, requestMessage("GET", path)) } });
};
const errorOf = async (res: Response) => ({ status: res.status, ...(await body(res)).error });

describe("claiming", () => {
  it("refuses IP literals, the shortener's own hosts and reserved or single-label names: 400 invalid_hostname", async () => {
    const names = [
      "169.254.169.254", "127.0.0.1", "10.0.0.1", "0x7f.1", "2130706433.x.1", "::1", "[::1]", "[fd00::1]",
      "lf.linkflow.com", "GO.linkflow.com.", // SHORT_BASE_URL's host, a primary host
      "localhost", "api.localhost", "printer.local", "metadata.google.internal", "db.internal",
      "1.0.0.127.in-addr.arpa", "go.brand.test", "x.invalid", "shop.example", "intranet",
    ];
    for (const hostname of names) {
      const err = await errorOf(await claim(a, hostname));
      expect([hostname, err.status, err.code]).toEqual([hostname, 400, "invalid_hostname"]);
    }
    expect((await s.sql`SELECT count(*)::int AS n FROM domains`)[0]!.n).toBe(0);
  });

  it("answers with the TXT record to publish; verify refuses until it is there, then marks the domain verified", async () => {
    const res = await claim(a, "Go.Acme.com.");
    expect(res.status).toBe(201);
    const d = await body(res);
    expect(d).toMatchObject({
      hostname: "go.acme.com",
      verified: false,
      verified_at: null,
      verification: { type: "TXT", name: "_linkflow-challenge.go.acme.com", value: expect.stringMatching(/^linkflow-verify=[0-9a-f]{32}$/) },
    });
    const [row] = await s.sql`SELECT verification_token, verified_at FROM domains WHERE id = ${d.id}`;
    expect(row).toEqual({ verification_token: d.verification.value.slice("linkflow-verify=".length), verified_at: null });

    // No record, then a wrong one: refused, saying what was expected.
    let err = await errorOf(await verify(a, d.id));
    expect(err).toMatchObject({ status: 422, code: "verification_failed" });
    expect(err.message).toContain(`_linkflow-challenge.go.acme.com with the value "${d.verification.value}"`);
    dns.txt.set("_linkflow-challenge.go.acme.com", ["linkflow-verify=someone-elses", "v=spf1 -all"]);
    err = await errorOf(await verify(a, d.id));
    expect(err).toMatchObject({ status: 422, code: "verification_failed" });
    expect((await s.sql`SELECT verified_at FROM domains WHERE id = ${d.id}`)[0]!.verified_at).toBeNull();
    // B cannot verify A's claim.
    expect((await verify(b, d.id)).status).toBe(404);

    dns.txt.set("_linkflow-challenge.go.acme.com", ["v=spf1 -all", d.verification.value]);
    const ok = await verify(a, d.id);
    expect(ok.status).toBe(200);
    const v = await body(ok);
    expect(v).toMatchObject({ id: d.id, hostname: "go.acme.com", verified: true });
    expect(v.verification).toBeUndefined();
    expect((await s.sql`SELECT verified_at FROM domains WHERE id = ${d.id}`)[0]!.verified_at).toBeInstanceOf(Date);
    expect((await verify(a, d.id)).status).toBe(200); // again: nothing to do
    const list = await body(await api(a, "/domains"));
    expect(list.items.find((x: { id: number }) => x.id === d.id)).toMatchObject({ verified: true });

    // A pending claim lists (and deletes) with its record.
    const p = await body(await claim(a, "pending.acme.com"));
    expect((await body(await api(a, "/domains"))).items.find((x: { id: number }) => x.id === p.id)).toMatchObject({ verified: false, verification: { name: "_linkflow-challenge.pending.acme.com" } });
    expect(await body(await api(a, `/domains/${p.id}`, "DELETE"))).toMatchObject({ verified: false, verification: { type: "TXT" } });
  });
});

describe("a pending claim squats nothing", () => {
  it("does not stop another workspace linking to the host or claiming it; the first to verify wins", async () => {
    const claimA = await body(await claim(a, "www.google.com"));
    // B links to the host A only claimed, and claims it too.
    const l = await link(b, { url: "https://www.google.com/search?q=x" });
    expect(l.status).toBe(201);
    const claimB = await claim(b, "www.google.com");
    expect(claimB.status).toBe(201);
    expect((await claim(a, "www.google.com")).status).toBe(409); // A already has it pending
    // Neither can put links on it yet.
    expect(await errorOf(await link(a, { url: "https://example.com/", domain: "www.google.com" }))).toMatchObject({ status: 400, code: "domain_unverified", field: "domain" });

    // B proves ownership (B's own link to the host must go first, see below); A's claim is removed.
    dns.txt.set("_linkflow-challenge.www.google.com", [(await body(claimB)).verification.value]);
    const idB = (await s.sql`SELECT id FROM domains WHERE hostname = 'www.google.com' AND workspace_id = ${wsB}`)[0]!.id;
    expect(await errorOf(await verify(b, Number(idB)))).toMatchObject({ status: 409, code: "domain_in_use_as_destination" });
    await api(b, `/links/${(await body(l)).id}`, "DELETE");
    expect((await verify(b, Number(idB))).status).toBe(200);
    expect((await s.sql`SELECT workspace_id FROM domains WHERE hostname = 'www.google.com'`).map((r) => Number(r.workspace_id))).toEqual([wsB]);
    expect((await verify(a, claimA.id)).status).toBe(404);
    expect(await errorOf(await claim(a, "www.google.com"))).toMatchObject({ status: 409, code: "domain_taken" });
    // Now it is the shortener's own host: a destination there is a loop, for everyone.
    expect(await errorOf(await link(a, { url: "https://www.google.com/" }))).toMatchObject({ status: 400, code: "unsafe_url" });
    expect((await link(b, { url: "https://example.com/g", domain: "www.google.com" })).status).toBe(201);
  });

  it("other workspaces' links to the host never block its owner's verification (they are left as they are)", async () => {
    const theirs = await body(await link(a, { url: "https://go.bee.com/page" }));
    await claimAndVerify(b, "go.bee.com");
    const [row] = await s.sql`SELECT url FROM links WHERE id = ${theirs.id}`;
    expect(row!.url).toBe("https://go.bee.com/page");
  });
});

describe("only verified domains serve links", () => {
  it("refuses creating or moving a link onto an unverified domain (domain_unverified), and /v1/resolve answers 404 for one", async () => {
    const d = await body(await claim(a, "go.pending.com"));
    expect(await errorOf(await link(a, { url: "https://example.com/p", domain: "go.pending.com" }))).toMatchObject({ status: 400, code: "domain_unverified" });
    const plain = await body(await link(a, { url: "https://example.com/p", slug: "pend-move" }));
    expect(await errorOf(await api(a, `/links/${plain.id}`, "PATCH", { domain: "go.pending.com" }))).toMatchObject({ status: 400, code: "domain_unverified" });

    // A link row on a pending domain (as before this fix): the edge's origin lookup does not serve it.
    const [ws] = await s.sql`SELECT min(id) AS id FROM workspaces`;
    await s.sql`INSERT INTO links (workspace_id, domain, code, url) VALUES (${ws!.id}, 'go.pending.com', 'sq', 'https://example.com/squat')`;
    expect((await resolve("sq", "go.pending.com")).status).toBe(404);
    expect((await resolve("pend-move")).status).toBe(200); // the primary domain needs nothing
    dns.txt.set(d.verification.name, [d.verification.value]);
    expect((await verify(a, d.id)).status).toBe(200);
    expect(await body(await resolve("sq", "go.pending.com"))).toMatchObject({ domain: "go.pending.com", code: "sq", url: "https://example.com/squat" });
    // …and only for the workspace that verified it.
    await s.sql`INSERT INTO links (workspace_id, domain, code, url) VALUES (${wsB}, 'go.pending.com', 'sq2', 'https://example.com/other')`;
    expect((await resolve("sq2", "go.pending.com")).status).toBe(404);
  });
});

describe("a link may not point at the shortener through a verified domain", () => {
  it("refuses a destination on a verified domain, and verifying a domain this workspace's links point at", async () => {
    await claimAndVerify(a, "s.brand.com");
    expect(await errorOf(await link(a, { url: "https://s.brand.com/abc", domain: "s.brand.com", slug: "abc" }))).toMatchObject({ status: 400, code: "unsafe_url", field: "url" });

    // Verified later: the links made while it was pending (url and targeting) block verification until changed.
    const l1 = await body(await link(a, { url: "https://later.brand.com/x" }));
    const l2 = await body(await link(a, { url: "https://example.com/y", targeting: [{ device: ["mobile"], url: "https://LATER.brand.com/m" }] }));
    const d = await body(await claim(a, "later.brand.com"));
    dns.txt.set(d.verification.name, [d.verification.value]);
    const err = await errorOf(await verify(a, d.id));
    expect(err).toMatchObject({ status: 409, code: "domain_in_use_as_destination" });
    expect(err.message).toMatch(/^2 links of this workspace point at later\.brand\.com/);
    await api(a, `/links/${l1.id}`, "PATCH", { url: "https://example.com/x" });
    await api(a, `/links/${l2.id}`, "PATCH", { targeting: [] });
    expect((await verify(a, d.id)).status).toBe(200);
  });

  it("checks again when a link's domain changes: a destination now on a verified domain, or on the new domain itself", async () => {
    await claimAndVerify(a, "a2.brand.com");
    // A link to a host that B verifies afterwards (allowed: B owns it) cannot then be moved.
    const toB = await body(await link(a, { url: "https://b2.brand.com/x" }));
    await claimAndVerify(b, "b2.brand.com");
    expect(await errorOf(await api(a, `/links/${toB.id}`, "PATCH", { domain: "a2.brand.com" }))).toMatchObject({ status: 400, code: "unsafe_url", field: "url" });
    // A domain verified without the in-use check (as migrated ones are): moving a link to it onto it would redirect to itself.
    const self = await body(await link(a, { url: "https://example.com/", expired_url: "https://self.brand.com/gone" }));
    await s.sql`INSERT INTO domains (workspace_id, hostname, verified_at) VALUES ((SELECT min(id) FROM workspaces), 'self.brand.com', now())`;
    expect(await errorOf(await api(a, `/links/${self.id}`, "PATCH", { domain: "self.brand.com" }))).toMatchObject({ status: 400, code: "unsafe_url", field: "expired_url" });
    expect((await s.sql`SELECT domain FROM links WHERE id = ${self.id}`)[0]!.domain).toBe("");
    // Moves whose destinations are elsewhere still work.
    const fine = await body(await link(a, { url: "https://example.com/fine" }));
    expect((await api(a, `/links/${fine.id}`, "PATCH", { domain: "a2.brand.com" })).status).toBe(200);
  });
});

describe("migration 007", () => {
  it("keeps the domains of an existing deployment verified; the database allows one verified owner per name", async () => {
    const db = await testSchema();
    const shipped = fileURLToPath(new URL("../../ingest/migrations/", import.meta.url));
    const before = await mkdtemp(join(tmpdir(), "linkflow-mig-"));
    try {
      for (const f of (await readdir(shipped)).filter((f) => f < "007")) await copyFile(join(shipped, f), join(before, f));
      await migrate(db.sql, before + "/");
      await db.sql`INSERT INTO domains (workspace_id, hostname) VALUES (1, 'go.legacy.com')`;
      await migrate(db.sql);
      const [row] = await db.sql`SELECT verified_at = created_at AS same, verification_token FROM domains WHERE hostname = 'go.legacy.com'`;
      expect(row).toEqual({ same: true, verification_token: null });
      // A second verified row for the name is refused by the database itself.
      await db.sql`INSERT INTO workspaces (name) VALUES ('two')`;
      await expect(db.sql`INSERT INTO domains (workspace_id, hostname, verified_at) VALUES (2, 'go.legacy.com', now())`).rejects.toMatchObject({ code: "23505" });
      await db.sql`INSERT INTO domains (workspace_id, hostname, verification_token) VALUES (2, 'go.legacy.com', 'pending')`; // a pending claim is fine
    } finally {
      await rm(before, { recursive: true, force: true });
      await db.drop();
    }
  });
});
