import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDnsServer } from "./dns-server.ts";
import { clickEvent, postBeacon } from "./fixtures.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";

/** The CLI against a real ingest, PostgreSQL and (for stats) the pipeline into ClickHouse. */
const CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
let s: Stack;
let dns: Awaited<ReturnType<typeof startDnsServer>>;
let dir: string;
beforeAll(async () => {
  dns = await startDnsServer();
  s = await startStack({ edge: false, pipeline: true, env: { DNS_RESOLVER: dns.address } });
  dir = await mkdtemp(join(tmpdir(), "linkflow-cli-"));
});
afterAll(async () => {
  await s.close();
  await dns.close();
  await rm(dir, { recursive: true, force: true });
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

// Each CLI run starts tsx (a second or two on a busy machine): the tests get room for several.
describe("linkflow CLI", { timeout: 60_000 }, () => {
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

  it("prints its version and per-command help; an unknown flag is a usage error", async () => {
    const pkg = JSON.parse(await readFile("package.json", "utf8"));
    const v = await cli("--version");
    expect([v.code, v.out.trim()]).toEqual([0, pkg.version]);
    const help = await cli("links", "update", "--help");
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: linkflow links update \[options\] <id>/m);
    expect(help.out).toContain("--destination <url>");
    expect(help.out).toContain("--no-expires");
    const bad = await cli("links", "list", "--colour", "red");
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("unknown option '--colour'");
    expect(bad.err).toContain("--help");
    const typo = await cli("links", "lst");
    expect([typo.code, typo.err]).toEqual([2, expect.stringContaining("Did you mean list?")]);
    const png = await cli("links", "qr", "1", "--format", "png");
    expect([png.code, png.err]).toEqual([2, expect.stringContaining("--out")]);
  });

  it("updates a link: only the fields given change, --no-… clears", async () => {
    const link = JSON.parse((await cli("links", "create", "https://example.com/old", "--title", "Old", "--tag", "a", "--expires", "2099-01-01T00:00:00Z", "--json")).out);
    const up = await cli("links", "update", String(link.id), "--destination", "https://example.com/new", "--tag", "b", "--tag", "c", "--no-expires", "--archive", "--json");
    expect(up.code).toBe(0);
    expect(JSON.parse(up.out)).toMatchObject({ id: link.id, url: "https://example.com/new", tags: ["b", "c"], expires_at: null, archived: true, title: "Old" });
    const [row] = await s.sql`SELECT url, title, tags, expires_at, archived FROM links WHERE id = ${link.id}`;
    expect(row).toMatchObject({ url: "https://example.com/new", title: "Old", tags: ["b", "c"], expires_at: null, archived: true });
    const table = await cli("links", "update", String(link.id), "--unarchive", "--no-title");
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^id\s+code\s+domain\s+url/m);
    const [after] = await s.sql`SELECT title, archived FROM links WHERE id = ${link.id}`;
    expect(after).toMatchObject({ title: null, archived: false });
    const missing = await cli("links", "update", "999999", "--title", "x");
    expect([missing.code, JSON.parse(missing.err).error.status]).toEqual([1, 404]);
  });

  it("gets a link by id or by code", async () => {
    const link = JSON.parse((await cli("links", "create", "https://example.com/by-code", "--slug", "cli-code", "--json")).out);
    const byCode = await cli("links", "get", "cli-code", "--json");
    expect(JSON.parse(byCode.out).id).toBe(link.id);
    const byId = await cli("links", "get", String(link.id));
    expect(byId.out).toMatch(/cli-code\s+https:\/\/example\.com\/by-code/);
  });

  it("writes QR codes: SVG to stdout, PNG to a file", async () => {
    const link = JSON.parse((await cli("links", "create", "https://example.com/qr", "--json")).out);
    const svg = await cli("links", "qr", String(link.id), "--format", "svg");
    expect(svg.code).toBe(0);
    expect(svg.out).toMatch(/<svg[\s\S]*<\/svg>/);
    const file = join(dir, "qr.png");
    const png = await cli("links", "qr", String(link.id), "--format", "png", "--size", "128", "--out", file);
    expect(png.code).toBe(0);
    expect(png.out).toContain(file);
    const bytes = await readFile(file);
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  });

  it("imports a CSV and summarises the rows", async () => {
    const file = join(dir, "links.csv");
    await writeFile(file, "url,slug,title,tags\nhttps://example.com/i1,cli-imp-1,One,x|y\nhttps://example.com/i2,cli-imp-2,Two,\nhttps://example.com/i3,cli-imp-3,Three,z\n");
    const r = await cli("links", "import", file);
    expect(r.code).toBe(0);
    expect(r.out).toContain("linkflow CSV: 3 created, 0 failed");
    const rows = await s.sql`SELECT code, url, title, tags FROM links WHERE code LIKE 'cli-imp-%' ORDER BY code`;
    expect(rows.map((x) => [x.code, x.url, x.title, x.tags])).toEqual([
      ["cli-imp-1", "https://example.com/i1", "One", ["x", "y"]],
      ["cli-imp-2", "https://example.com/i2", "Two", []],
      ["cli-imp-3", "https://example.com/i3", "Three", ["z"]],
    ]);
    // Again: every row's slug is taken now, so each fails on its own and the exit code says so.
    const again = await cli("links", "import", file, "--json");
    expect(again.code).toBe(1);
    expect(JSON.parse(again.out)).toMatchObject({ created: 0, failed: 3, results: [{ status: 409 }, { status: 409 }, { status: 409 }] });
  });

  it("prints a link's clicks over time and a breakdown", async () => {
    const link = JSON.parse((await cli("links", "create", "https://example.com/counted", "--slug", "cli-stats", "--json")).out);
    // A browser's user agent: stats leave bots out by default.
    const at = { link_id: link.id, domain: "", code: "cli-stats", short_url: link.short_url, original_url: link.url, user_agent: CHROME };
    const beacon = [clickEvent({ ...at }), clickEvent({ ...at, geo_location: { country: "FR", city: "Paris", colo: "CDG" } })];
    expect((await postBeacon(s.ingest.url, beacon)).status).toBe(202);
    // Until both clicks are through the pipeline (a bound, not a timing assertion).
    const seen = await eventually(async () => {
      const r = await body(await fetch(`${s.ingest.url}/api/stats?link=${link.id}&interval=hour`, { headers: json(s.adminKey) }));
      return r.totals?.clicks === 2;
    }, 20_000, 200);
    expect(seen).toBe(true);
    const series = await cli("stats", String(link.id), "--period", "24h");
    expect(series.code).toBe(0);
    expect(series.out).toMatch(/^2 clicks, \d+ visitors/);
    expect(series.out).toMatch(/^t\s+clicks\s+visitors$/m);
    expect(series.out).toMatch(/T\d\d:00:00\.000Z\s+2\s/);
    const by = await cli("stats", String(link.id), "--by", "country");
    expect(by.out).toMatch(/^value\s+clicks\s+visitors$/m);
    expect(by.out).toMatch(/^DE\s+1\s/m);
    expect(by.out).toMatch(/^FR\s+1\s/m);
    const raw = JSON.parse((await cli("stats", String(link.id), "--period", "24h", "--json")).out);
    expect(raw).toMatchObject({ interval: "hour", totals: { clicks: 2 }, links: 1 });
    const bad = await cli("stats", String(link.id), "--by", "shoe-size");
    expect([bad.code, bad.err]).toEqual([2, expect.stringContaining("country")]);
  });
});
