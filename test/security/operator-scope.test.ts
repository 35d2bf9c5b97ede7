import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { body, json, startStack, type Stack } from "../helpers.ts";

/**
 * Instance-wide operations (pipeline totals, every workspace's dead letters and their replay,
 * the all-links SRE view, new workspaces) need the `operator` scope, which `admin` does not
 * imply: only the bootstrap key has it, and only an operator key can grant it. Two workspaces:
 * A (the bootstrap one) and B (created through the API).
 */
let s: Stack;
let b: { key: string; workspaceId: number };
let aAdmin: string; // an admin key of workspace A without operator
let deadLetter: number;
beforeAll(async () => {
  s = await startStack({ edge: false, pipeline: true });
  const res = await api("/api/workspaces", s.adminKey, { method: "POST", body: JSON.stringify({ name: "tenant-b" }) });
  expect(res.status).toBe(201);
  const created = await body(res);
  b = { key: created.admin_key.key, workspaceId: created.workspace.id };
  aAdmin = (await newKey(s.adminKey, ["admin"])).key;
  // A dead letter of some tenant's click: IP prefix, user agent, destination.
  const payload = Buffer.from(JSON.stringify({ ip_address: "198.51.100.0", user_agent: "Mozilla/5.0 secret-ua", url: "https://tenant-a.example/private" }));
  [{ id: deadLetter }] = (await s.sql`
    INSERT INTO dead_letters (source, partition_key, payload, error) VALUES ('loader', 'k', ${payload}, 'poison') RETURNING id::int AS id`) as unknown as [{ id: number }];
});
afterAll(() => s.close());

const api = (path: string, key: string, init: RequestInit = {}) => fetch(`${s.ingest.url}${path}`, { ...init, headers: json(key) });
async function newKey(key: string, scopes: string[], extra: Record<string, unknown> = {}) {
  const res = await api("/api/keys", key, { method: "POST", body: JSON.stringify({ name: `k-${scopes.join("+")}`, scopes, ...extra }) });
  expect(res.status).toBe(201);
  return body(res);
}
const since = encodeURIComponent(new Date(Date.now() - 60_000).toISOString());
const operatorRoutes: [string, RequestInit][] = [
  ["/api/pipeline", {}],
  [`/api/pipeline/lag?since=${since}`, {}],
  ["/api/pipeline/dlq", {}],
  ["/api/pipeline/dlq/replay", { method: "POST", body: JSON.stringify({ ids: [] }) }],
];

describe("the operator scope", () => {
  it("a workspace admin key (another workspace's, or the bootstrap workspace's) gets 403 forbidden on the pipeline routes", async () => {
    for (const key of [b.key, aAdmin]) {
      for (const [path, init] of [...operatorRoutes, ["/api/pipeline/dlq/replay", { method: "POST", body: "" }] as [string, RequestInit]]) {
        const res = await api(path, key, init);
        expect(res.status, path).toBe(403);
        expect((await body(res)).error).toMatchObject({ status: 403, code: "forbidden" });
      }
    }
    // Nothing was replayed: the dead letter is still open.
    expect((await s.sql`SELECT replayed_at FROM dead_letters WHERE id = ${deadLetter}`)[0]!.replayed_at).toBeNull();
  });

  it("the bootstrap key holds operator and keeps every pipeline route", async () => {
    const [row] = await s.sql`SELECT scopes FROM api_keys WHERE name = 'bootstrap admin'`;
    expect(row!.scopes).toEqual(["admin", "operator"]);
    for (const [path, init] of operatorRoutes) expect((await api(path, s.adminKey, init)).status, path).toBe(200);
    const dlq = await body(await api("/api/pipeline/dlq", s.adminKey));
    expect(dlq.items.map((i: { id: number }) => i.id)).toContain(deadLetter);
  });

  it("only an operator key grants operator; a workspace admin cannot mint one for itself", async () => {
    for (const [key, ws] of [[b.key, b.workspaceId], [aAdmin, null]] as const) {
      const before = Number((await s.sql`SELECT count(*) AS n FROM api_keys`)[0]!.n);
      for (const scopes of [["operator"], ["admin", "operator"], ["links:read", "operator"]]) {
        const res = await api("/api/keys", key, { method: "POST", body: JSON.stringify({ name: "escalate", scopes }) });
        expect(res.status).toBe(403);
        expect((await body(res)).error).toMatchObject({ code: "forbidden", field: "scopes" });
      }
      expect(Number((await s.sql`SELECT count(*) AS n FROM api_keys`)[0]!.n)).toBe(before);
      expect(await s.sql`SELECT id FROM api_keys WHERE 'operator' = ANY(scopes) AND (${ws}::bigint IS NULL OR workspace_id = ${ws})`).toHaveLength(ws === null ? 1 : 0);
    }
    // The operator grants it; the new key reads the pipeline, and is not implied by admin.
    const op = await newKey(s.adminKey, ["operator"]);
    expect(op.scopes).toEqual(["operator"]);
    expect((await api("/api/pipeline", op.key)).status).toBe(200);
    expect((await api("/api/keys", op.key)).status).toBe(403); // operator does not imply admin either
  });

  it("a workspace admin cannot revoke an operator key of its workspace", async () => {
    const op = await newKey(s.adminKey, ["operator"]);
    expect((await api(`/api/keys/${op.id}`, aAdmin, { method: "DELETE" })).status).toBe(404);
    expect((await api("/api/pipeline", op.key)).status).toBe(200);
    expect((await api(`/api/keys/${op.id}`, s.adminKey, { method: "DELETE" })).status).toBe(200);
  });

  it("a key of workspace B never creates keys in workspace A", async () => {
    const [{ a }] = (await s.sql`SELECT min(id)::int AS a FROM workspaces`) as unknown as [{ a: number }];
    const before = Number((await s.sql`SELECT count(*) AS n FROM api_keys WHERE workspace_id = ${a}`)[0]!.n);
    const res = await api("/api/keys", b.key, { method: "POST", body: JSON.stringify({ name: "x", scopes: ["admin"], workspace_id: a }) });
    expect(res.status).toBe(400);
    const made = await newKey(b.key, ["admin"]);
    expect(made.workspace_id).toBe(b.workspaceId);
    expect(Number((await s.sql`SELECT count(*) AS n FROM api_keys WHERE workspace_id = ${a}`)[0]!.n)).toBe(before);
    // …nor workspaces: that is the operator's.
    const ws = await api("/api/workspaces", aAdmin, { method: "POST", body: JSON.stringify({ name: "x" }) });
    expect(ws.status).toBe(403);
  });

  it("the instance-wide SRE view is the operator's; a workspace admin of the bootstrap workspace sees its own links", async () => {
    const edge = async (key: string) => body(await api("/api/sre/edge?interval=day", key));
    expect((await edge(s.adminKey)).scope).toBe("all");
    expect((await edge(aAdmin)).scope).toBe("workspace");
    expect((await edge(b.key)).scope).toBe("workspace");
  });
});
