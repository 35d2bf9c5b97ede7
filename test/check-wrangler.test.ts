import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "smol-toml";
import { afterAll, describe, expect, it } from "vitest";
import { wranglerProblems } from "../scripts/check-wrangler.ts";

/**
 * scripts/check-wrangler.ts: production must not deploy with the repository's placeholders or the
 * local worker's values; a filled-in wrangler.toml passes.
 */
const root = new URL("..", import.meta.url).pathname;
const text = readFileSync(join(root, "wrangler.toml"), "utf8");
type Cfg = Parameters<typeof wranglerProblems>[0];
const cfgOf = (toml: string) => parse(toml) as unknown as Cfg;

/** wrangler.toml as an operator fills it in: a real namespace id, domain and ingest origin. */
const filled = text
  .replaceAll("22222222222222222222222222222222", "0f1e2d3c4b5a69788796a5b4c3d2e1f0")
  .replaceAll("11111111111111111111111111111111", "a1b2c3d4e5f60718293a4b5c6d7e8f90")
  .replaceAll("example.com", "lnkf.io");

const dir = mkdtempSync(join(tmpdir(), "check-wrangler-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = async (args: string[], env: Record<string, string> = {}) => {
  const { DEPLOY_ENV: _, ...base } = process.env;
  try {
    const { stdout, stderr } = await promisify(execFile)(join(root, "node_modules/.bin/tsx"), ["scripts/check-wrangler.ts", ...args], { cwd: root, env: { ...base, ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
};

describe("the production placeholder check", () => {
  it("refuses today's placeholders in [env.production], one line each", () => {
    const problems = wranglerProblems(cfgOf(text), "production");
    expect(problems).toHaveLength(5);
    for (const what of ['route "lnk.example.com/*"', 'zone_name "example.com"', 'KV LINKS id "2222', 'INGEST_URL "https://ingest.example.com"', 'PRIMARY_HOSTS entry "lnk.example.com"'])
      expect(problems.some((p) => p.includes(what)), what).toBe(true);
  });

  it("accepts a filled-in copy", () => {
    expect(wranglerProblems(cfgOf(filled), "production")).toEqual([]);
    expect(wranglerProblems(cfgOf(filled), "staging")).toEqual([]);
  });

  it("refuses the local worker's values copied into production", () => {
    const cfg = cfgOf(filled);
    const prod = cfg.env!.production!;
    prod.name = cfg.name;
    prod.vars = { ...prod.vars, INGEST_URL: "http://127.0.0.1:8788", PRIMARY_HOSTS: "localhost", EDGE_SECRET: "x".repeat(40) };
    prod.queues = cfg.queues;
    prod.observability = { enabled: false };
    prod.kv_namespaces = [{ binding: "LINKS", id: "not-an-id" }];
    const problems = wranglerProblems(cfg, "production");
    for (const what of ["name", "INGEST_URL", "PRIMARY_HOSTS", "vars.EDGE_SECRET", 'queue "linkflow-clicks-local"', 'queue "linkflow-clicks-dlq-local"', "observability", "not a namespace id"])
      expect(problems.some((p) => p.includes(what)), what).toBe(true);
    expect(wranglerProblems(cfgOf(text.replace(/\[env\.production[\s\S]*$/, "")), "production")).toEqual([
      "[env.production] is missing: wrangler would deploy the top level (the local worker) instead",
    ]);
  });

  it("as a script: exits 1 on placeholders; --warn (build:edge) reports them and exits 0 unless DEPLOY_ENV=production", async () => {
    const strict = await run(["production"]);
    expect(strict.code).toBe(1);
    expect(strict.stderr.trim().split("\n")).toHaveLength(5);
    expect(strict.stderr).toMatch(/^error: \[env\.production\] /);

    const warn = await run(["production", "--warn"]);
    expect(warn.code).toBe(0);
    expect(warn.stderr).toContain("warning: [env.production] KV LINKS id");

    expect((await run(["production", "--warn"], { DEPLOY_ENV: "production" })).code).toBe(1);

    const file = join(dir, "wrangler.toml");
    writeFileSync(file, filled);
    const ok = await run(["production", file], { DEPLOY_ENV: "production" });
    expect(ok).toMatchObject({ code: 0, stderr: "" });
  });

  it("is what npm run build:edge runs for production, after bundling every environment", () => {
    const scripts = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts as Record<string, string>;
    for (const env of ["--env=", "--env staging", "--env production"]) expect(scripts["build:edge"]).toContain(`wrangler deploy --dry-run ${env} --outdir`);
    expect(scripts["build:edge"]).toContain("tsx scripts/check-wrangler.ts production --warn");
    expect(scripts["deploy:production"]).toMatch(/^DEPLOY_ENV=production npm run build:edge && /);
  });
});
