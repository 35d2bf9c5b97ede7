import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { body, json, startStack, type Stack } from "./helpers.ts";

/** API keys, workspaces, scopes, isolation and rate limits against the real PostgreSQL. */
let s: Stack;
let other: { key: string; workspaceId: number };
beforeAll(async () => {
  s = await startStack({ edge: false });
  const res = await fetch(`${s.ingest.url}/api/workspaces`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ name: "acme" }) });
  expect(res.status).toBe(201);
  const created = await body(res);
  other = { key: created.admin_key.key, workspaceId: created.workspace.id };
});
afterAll(() => s.close());

const api = (path: string, key: string, init: RequestInit = {}) => fetch(`${s.ingest.url}${path}`, { ...init, headers: json(key) });
const newKey = async (scopes: string[], extra: Record<string, unknown> = {}, key = s.adminKey) => {
  const res = await api("/api/keys", key, { method: "POST", body: JSON.stringify({ name: `k-${scopes.join("+")}`, scopes, ...extra }) });
  expect(res.status).toBe(201);
  return body(res);
};

describe("API keys", () => {
  it("shows a new key once, lists keys without secrets, stores only hashes", async () => {
    const k = await newKey(["links:read"]);
    expect(k.key).toMatch(/^lf_[A-Za-z0-9]{8}_/);
    expect(k.key.startsWith(`lf_${k.prefix}_`)).toBe(true);
    const list = await body(await api("/api/keys", s.adminKey));
    const listed = list.items.find((i: { id: number }) => i.id === k.id);
    expect(listed).toMatchObject({ name: "k-links:read", scopes: ["links:read"], revoked_at: null });
    expect(JSON.stringify(list)).not.toContain(k.key);
    const rows = await s.sql`SELECT * FROM api_keys`;
    // The secret is everything after "lf_<prefix>_" (base64url: it may itself hold "_", even first).
    const secret = k.key.slice(`lf_${k.prefix}_`.length);
    expect(secret.length).toBeGreaterThanOrEqual(32);
    expect(JSON.stringify(rows)).not.toContain(secret);
  });

  it("enforces scopes: 403 naming the missing scope", async () => {
    const reader = await newKey(["links:read"]);
    const res = await api("/api/links", reader.key, { method: "POST", body: JSON.stringify({ url: "https://example.com/" }) });
    expect(res.status).toBe(403);
    expect((await body(res)).error).toMatchObject({ code: "forbidden" });
    expect((await api("/api/keys", reader.key)).status).toBe(403);
    expect((await api("/api/pipeline", reader.key)).status).toBe(403);
  });

  it("GET /api/keys/me answers any key with its own scopes (no secret); 401 without one", async () => {
    const reader = await newKey(["stats:read"]);
    const res = await api("/api/keys/me", reader.key);
    expect(res.status).toBe(200);
    const me = await body(res);
    expect(me).toMatchObject({ id: reader.id, name: "k-stats:read", scopes: ["stats:read"], revoked_at: null });
    expect(JSON.stringify(me)).not.toContain(reader.key);
    expect((await body(await api("/api/keys/me", s.adminKey))).scopes).toContain("admin");
    expect((await api("/api/keys/me", "lf_nope_0000000000000000000000000000000000")).status).toBe(401);
    expect((await api("/api/keys", reader.key)).status).toBe(403); // the rest of /api/keys stays admin-only
  });

  it("a revoked key fails at once", async () => {
    const k = await newKey(["links:read", "links:write"]);
    expect((await api("/api/domains", k.key)).status).toBe(200);
    const revoked = await api(`/api/keys/${k.id}`, s.adminKey, { method: "DELETE" });
    expect(revoked.status).toBe(200);
    expect((await body(revoked)).revoked_at).not.toBeNull();
    expect((await api("/api/domains", k.key)).status).toBe(401);
  });

  it("rate-limits per key with 429 and Retry-After", async () => {
    const k = await newKey(["links:read"], { requests_per_minute: 5 });
    const statuses: number[] = [];
    let last!: Response;
    for (let i = 0; i < 7; i++) statuses.push((last = await api("/api/domains", k.key)).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toEqual([429, 429]);
    expect(Number(last.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await body(last)).error.code).toBe("rate_limited");
    // Another key is not affected.
    expect((await api("/api/domains", s.adminKey)).status).toBe(200);
  });

  it("refuses bad key requests with a JSON error naming the field", async () => {
    const res = await api("/api/keys", s.adminKey, { method: "POST", body: JSON.stringify({ name: "x", scopes: ["root"] }) });
    expect(res.status).toBe(400);
    expect((await body(res)).error.field).toMatch(/^scopes/);
  });
});

describe("workspaces", () => {
  it("never shows one workspace's keys, domains or links to another", async () => {
    const dom = await api("/api/domains", other.key, { method: "POST", body: JSON.stringify({ hostname: "go.acme.example.com" }) });
    expect(dom.status).toBe(201);
    const domain = await body(dom);
    const mine = await body(await api("/api/domains", s.adminKey));
    expect(mine.items.map((d: { hostname: string }) => d.hostname)).not.toContain("go.acme.example.com");
    expect((await api(`/api/domains/${domain.id}`, s.adminKey, { method: "DELETE" })).status).toBe(404);
    const theirKeys = await body(await api("/api/keys", other.key));
    expect(theirKeys.items.every((k: { workspace_id: number }) => k.workspace_id === other.workspaceId)).toBe(true);
    const firstKeys = await body(await api("/api/keys", s.adminKey));
    expect(firstKeys.items.some((k: { workspace_id: number }) => k.workspace_id === other.workspaceId)).toBe(false);
    // Revoking another workspace's key: 404, and it keeps working.
    const theirs = theirKeys.items[0].id;
    expect((await api(`/api/keys/${theirs}`, s.adminKey, { method: "DELETE" })).status).toBe(404);
    expect((await api("/api/keys", other.key)).status).toBe(200);
    // Only the operator's workspace creates workspaces.
    expect((await api("/api/workspaces", other.key, { method: "POST", body: JSON.stringify({ name: "x" }) })).status).toBe(403);
    // A verified hostname is unique across workspaces (test/security/domains.test.ts verifies by DNS).
    await s.sql`UPDATE domains SET verified_at = now() WHERE id = ${domain.id}`;
    expect((await api("/api/domains", s.adminKey, { method: "POST", body: JSON.stringify({ hostname: "GO.acme.example.com" }) })).status).toBe(409);
    expect((await api("/api/domains", s.adminKey, { method: "POST", body: JSON.stringify({ hostname: "not a host" }) })).status).toBe(400);
  });
});
