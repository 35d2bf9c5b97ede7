import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { body, DATABASE_URL, eventually, startStack, TcpProxy, type Stack } from "./helpers.ts";

/**
 * Monitoring: /metrics as Prometheus' own linter sees it, the alert rules (checked and
 * unit-tested by promtool), the Grafana dashboard's queries against what a live ingest exposes,
 * and the orchestrator probes /livez and /readyz.
 */
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const RULES_DIR = join(ROOT, "ops/prometheus");
const PROMTOOL = "/usr/bin/promtool";
const NO_PROMTOOL = `${PROMTOOL} is not installed (apt-get install prometheus; .ci/run installs it)`;
/** Runs promtool without blocking the event loop (the ingest under test lives in this process). */
function promtool(args: string[], input = ""): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(PROMTOOL, args, { cwd: RULES_DIR });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("error", reject).on("close", (status) => resolve({ status, stdout, stderr }));
    p.stdin.end(input);
  });
}

/** Every series name a scrape can hold: TYPE lines (histograms expand to their three series) and sample lines. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
    else names.add(name!);
  }
  for (const [, name] of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)) names.add(name!);
  return names;
}
const linkflowNames = (text: string) => [...new Set(text.match(/\blinkflow_[a-z0-9_]+/g) ?? [])];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Panel = { title: string; type: string; datasource?: any; targets?: { expr: string; datasource?: any }[]; panels?: Panel[] };
const dashboard = JSON.parse(readFileSync(join(ROOT, "ops/grafana/linkflow.json"), "utf8"));
const panels: Panel[] = (dashboard.panels as Panel[]).flatMap((p) => [p, ...(p.panels ?? [])]);
const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

describe("/metrics of an ingest with the pipeline", () => {
  let s: Stack;
  let text: string;
  beforeAll(async () => {
    s = await startStack({ edge: false, pipeline: true });
    // Traffic, so the labelled series exist: a beacon taken, two refused.
    const ok = clickEvent();
    await seedLinks(s.sql, [ok]);
    expect((await postBeacon(s.ingest.url, ok)).status).toBe(202);
    expect((await fetch(`${s.ingest.url}/v1/clicks`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(401);
    expect((await postBeacon(s.ingest.url, {})).status).toBe(400);
    expect((await fetch(`${s.ingest.url}/readyz`)).status).toBe(200);
    text = await (await fetch(`${s.ingest.url}/metrics`)).text();
  });
  afterAll(async () => {
    await s?.close();
  });

  it("passes `promtool check metrics` with no findings", async (ctx) => {
    ctx.skip(!existsSync(PROMTOOL), NO_PROMTOOL);
    const r = await promtool(["check", "metrics"], text);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("uses base units, has linkflow_build_info, and latency buckets up to 10 s", () => {
    const names = [...exposedNames(text)];
    expect(names.filter((n) => /milli|_ms(_|$)/.test(n))).toEqual([]);
    expect(names).toContain("linkflow_kinesis_behind_latest_seconds");
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    expect(text).toMatch(new RegExp(`^linkflow_build_info\\{version="${version.replace(/\./g, "\\.")}",node_version="${process.version}"\\} 1$`, "m"));
    for (const h of ["linkflow_http_request_duration_seconds", "linkflow_stats_query_duration_seconds"])
      expect(text, h).toMatch(new RegExp(`^# TYPE ${h} histogram$`, "m"));
    const les = [...text.matchAll(/^linkflow_http_request_duration_seconds_bucket\{le="([^"]+)",[^}]*route="\/readyz"/gm)].map((m) => m[1]);
    expect(les.slice(-3)).toEqual(["5", "10", "+Inf"]);
  });

  it("counts refused beacons by reason (accepted ones not)", () => {
    expect(text).toMatch(/^linkflow_beacons_refused_total\{reason="bad_signature"\} 1$/m);
    expect(text).toMatch(/^linkflow_beacons_refused_total\{reason="invalid_body"\} 1$/m);
    expect([...text.matchAll(/^linkflow_beacons_refused_total\{/gm)].length).toBe(2);
  });

  it("the Grafana dashboard queries only metrics ingest exposes, through the ${DS_PROMETHEUS} input", () => {
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: "DS_PROMETHEUS", type: "datasource", pluginId: "prometheus" })]);
    for (const p of panels.filter((p) => p.type !== "row")) expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: "${DS_PROMETHEUS}" });
    const exposed = exposedNames(text);
    const queried = [...exprs.map((e) => e.expr), ...dashboard.templating.list.map((v: { definition: string }) => v.definition)].flatMap(linkflowNames);
    expect(queried.length).toBeGreaterThan(10);
    expect(queried.filter((n) => !exposed.has(n))).toEqual([]);
    // What the SRE view promises (docs/OPERATIONS.md).
    for (const m of ["linkflow_edge_clicks_total", "linkflow_outbox_backlog", "linkflow_loader_lag_seconds_bucket", "linkflow_breaker_state", "linkflow_dead_letters_open", "linkflow_http_request_duration_seconds_bucket"])
      expect(queried).toContain(m);
  });

  it("the dashboard's queries are valid PromQL (promtool parses them as rules)", async (ctx) => {
    ctx.skip(!existsSync(PROMTOOL), NO_PROMTOOL);
    // Grafana's variables replaced by what they expand to.
    const rules = exprs.map((e, i) => ({ record: `dashboard:q${i}`, expr: e.expr.replaceAll("$__rate_interval", "5m").replaceAll("$job", ".*") }));
    const dir = await mkdtemp(join(tmpdir(), "linkflow-dash-"));
    try {
      await writeFile(join(dir, "q.yml"), JSON.stringify({ groups: [{ name: "dashboard", rules }] })); // JSON is YAML
      const r = await promtool(["check", "rules", join(dir, "q.yml")]);
      expect(r.stdout + r.stderr, r.stderr).toContain(`SUCCESS: ${rules.length} rules found`);
      expect(r.status).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the alert rules pass `promtool check rules` and their unit tests (`promtool test rules`)", async (ctx) => {
    ctx.skip(!existsSync(PROMTOOL), NO_PROMTOOL);
    const check = await promtool(["check", "rules", "alerts.yml"]);
    expect(check.stdout + check.stderr).toMatch(/SUCCESS: \d+ rules found/);
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const test = await promtool(["test", "rules", "alerts.test.yml"]);
    expect(test.status, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toContain("SUCCESS");
  }, 60_000);

  it("every alert has for:, a severity, summary and description; every metric it names exists", () => {
    const yml = readFileSync(join(RULES_DIR, "alerts.yml"), "utf8");
    const alerts = yml.split(/^ {6}- alert: /m).slice(1);
    expect(alerts.length).toBeGreaterThanOrEqual(7);
    for (const a of alerts) {
      const name = a.split("\n")[0];
      expect(a, name).toMatch(/^ {8}for: \d+m$/m);
      expect(a, name).toMatch(/^ {10}severity: (critical|warning)$/m);
      expect(a, name).toMatch(/^ {10}summary: /m);
      expect(a, name).toMatch(/^ {10}description: /m);
      // Each alert's own unit test exists.
      expect(readFileSync(join(RULES_DIR, "alerts.test.yml"), "utf8"), name).toContain(`alertname: ${name}`);
    }
    const exposed = exposedNames(text);
    expect(linkflowNames(yml).filter((n) => !exposed.has(n))).toEqual([]);
  });

  it("GET /livez is 200; GET /readyz is 200, and 503 while the newest migration is missing", async () => {
    expect(await body(await fetch(`${s.ingest.url}/livez`))).toEqual({ ok: true });
    const ready = await fetch(`${s.ingest.url}/readyz`);
    expect(ready.status).toBe(200);
    const { migration } = await body(ready);
    expect(migration).toMatch(/^\d+_/);
    const newest = (await s.sql<{ v: string }[]>`SELECT max(version) AS v FROM schema_migrations`)[0]!.v;
    expect(migration).toBe(newest);

    // As if this code ran against a database an older version migrated.
    const [row] = await s.sql`DELETE FROM schema_migrations WHERE version = ${newest} RETURNING applied_at`;
    try {
      const res = await fetch(`${s.ingest.url}/readyz`);
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("5");
      expect((await body(res)).error).toMatchObject({ status: 503, code: "migrations_pending" });
      expect((await fetch(`${s.ingest.url}/livez`)).status).toBe(200);
    } finally {
      await s.sql`INSERT INTO schema_migrations (version, applied_at) VALUES (${newest}, ${row!.applied_at})`;
    }
    expect((await fetch(`${s.ingest.url}/readyz`)).status).toBe(200);
  });
});

describe("/readyz while PostgreSQL is unreachable", () => {
  let s: Stack;
  let pgProxy: TcpProxy;
  beforeAll(async () => {
    const u = new URL(DATABASE_URL);
    pgProxy = await new TcpProxy(Number(u.port || 5432)).listen();
    u.host = `127.0.0.1:${pgProxy.port}`;
    s = await startStack({ edge: false, env: { DATABASE_URL: u.toString() } });
  });
  afterAll(async () => {
    pgProxy?.up();
    await s?.close();
    await pgProxy?.close();
  });

  it("answers 503 unavailable with Retry-After (and /livez 200), then 200 once PostgreSQL is back", async () => {
    expect((await fetch(`${s.ingest.url}/readyz`)).status).toBe(200);
    pgProxy.down();
    const res = await fetch(`${s.ingest.url}/readyz`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect((await body(res)).error).toMatchObject({ status: 503, code: "unavailable" });
    expect((await fetch(`${s.ingest.url}/livez`)).status).toBe(200);
    pgProxy.up();
    expect(await eventually(async () => (await fetch(`${s.ingest.url}/readyz`)).status === 200, 15_000, 200)).toBe(true);
  }, 60_000);
});
