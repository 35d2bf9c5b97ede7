import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDnsServer } from "./dns-server.ts";
import { startStack, type Stack } from "./helpers.ts";

/** The CLI against a real ingest and PostgreSQL. */
let s: Stack;
let dns: Awaited<ReturnType<typeof startDnsServer>>;
beforeAll(async () => {
  dns = await startDnsServer();
  s = await startStack({ edge: false, env: { DNS_RESOLVER: dns.address } });
});
afterAll(async () => {
  await s.close();
  await dns.close();
});

function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["cli/linkflow.mjs", ...args], {
      env: { ...process.env, LINKFLOW_API_URL: s.ingest.url, LINKFLOW_API_KEY: s.adminKey },
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) => resolve({ code: code ?? -1, out, err }));
  });
}

describe("linkflow CLI", () => {
  it("creates keys, lists and revokes them, with --json output", async () => {
    const created = await cli("keys", "create", "--name", "ci", "--scope", "links:read", "--json");
    expect(created.code).toBe(0);
    const key = JSON.parse(created.out);
    expect(key).toMatchObject({ name: "ci", scopes: ["links:read"] });
    expect(key.key).toMatch(/^lf_/);
    const listed = await cli("keys", "list");
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(/^id\s+name\s+prefix/m);
    expect(listed.out).toContain(key.prefix);
    expect(listed.out).not.toContain(key.key);
    const revoked = await cli("keys", "revoke", String(key.id), "--json");
    expect(JSON.parse(revoked.out).revoked_at).not.toBeNull();
    const [row] = await s.sql`SELECT revoked_at FROM api_keys WHERE id = ${key.id}`;
    expect(row!.revoked_at).not.toBeNull();
  });

  it("creates a link and reports API errors on stderr with exit code 1", async () => {
    const ok = await cli("links", "create", "https://example.com/from-cli", "--json");
    expect(ok.code).toBe(0);
    const link = JSON.parse(ok.out);
    const [row] = await s.sql`SELECT url FROM links WHERE id = ${link.id}`;
    expect(row!.url).toBe("https://example.com/from-cli");
    const bad = await cli("links", "create", "javascript:alert(1)");
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.err).error.field).toBe("url");
  });

  it("adds a domain, prints the TXT record that proves it, verifies it", async () => {
    const added = await cli("domains", "add", "go.cli-brand.com");
    expect(added.code).toBe(0);
    expect(added.out).toMatch(/^id\s+hostname\s+verified/m);
    const [d] = await s.sql`SELECT id, verification_token FROM domains WHERE hostname = 'go.cli-brand.com'`;
    expect(added.out).toContain(`_linkflow-challenge.go.cli-brand.com with the value "linkflow-verify=${d!.verification_token}"`);
    const early = await cli("domains", "verify", String(d!.id));
    expect([early.code, JSON.parse(early.err).error.code]).toEqual([1, "verification_failed"]);
    dns.txt.set("_linkflow-challenge.go.cli-brand.com", [`linkflow-verify=${d!.verification_token}`]);
    const ok = await cli("domains", "verify", String(d!.id), "--json");
    expect([ok.code, JSON.parse(ok.out).verified]).toEqual([0, true]);
    expect((await cli("domains", "list")).out).toMatch(/go\.cli-brand\.com\s+true/);
  });

  it("shows the pipeline and the dead-letter queue", async () => {
    const p = await cli("pipeline", "--json");
    expect(p.code).toBe(0);
    expect(JSON.parse(p.out)).toHaveProperty("outbox_backlog");
    const dlq = await cli("dlq", "replay", "--json");
    expect(JSON.parse(dlq.out)).toEqual({ replayed: 0 });
    expect((await cli("nonsense")).code).toBe(2);
  });
});
