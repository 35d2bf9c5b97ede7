/**
 * The API description as a build artefact, without a database or a running server:
 *   tsx scripts/openapi.ts spec [file]   writes /openapi.json (stdout without a file)
 *   tsx scripts/openapi.ts types         regenerates shared/api-types.ts (`npm run gen:api`)
 *   tsx scripts/openapi.ts lint          runs Redocly's linter on it (`npm run lint:api`)
 * The app is built as ingest builds it (http/app.ts createApp) with inert dependencies: nothing
 * connects (postgres.js connects on the first query), and the spec needs no request to run.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";
import { pino } from "pino";
import { keysOf } from "../shared/keys.ts";
import { createApp } from "../ingest/src/http/app.ts";
import { connect } from "../ingest/src/db/connect.ts";
import { createMetrics } from "../ingest/src/metrics.ts";
import type { Pipeline } from "../ingest/src/pipeline/index.ts";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
export const API_TYPES = join(root, "shared/api-types.ts");
const REDOCLY = join(root, "node_modules/@redocly/cli/bin/cli.js");

/** ingest's app on inert dependencies (an unreachable database it never queries); `close` ends the client. */
export async function buildApp() {
  const sql = connect("postgres://nobody@127.0.0.1:1/none", { max: 1 });
  const metrics = createMetrics();
  const unused = () => Promise.reject(new Error("not available while building the spec"));
  const pipeline = {
    ch: undefined,
    status: unused,
    lag: unused,
    analytics: { database: "linkflow", replica: sql, streamsMax: 1, streamMaxS: 1, metrics },
  } as unknown as Pipeline;
  const app = createApp({
    sql,
    config: { SHORT_BASE_URL: "http://localhost:8787", PRIMARY_HOSTS: "", ALLOW_PRIVATE_DESTINATIONS: "false", DNS_RESOLVER: "", STATS_STREAMS_PER_KEY: 1, STATS_STREAMS_PER_WORKSPACE: 1, AUTH_FAILURES_PER_MINUTE: 0 } as never,
    keys: [await keysOf("spec-only-secret-never-used-0123456789")],
    storeClicks: async () => new Set(),
    log: pino({ level: "silent" }),
    pushEdge: async () => false,
    metrics,
    pipeline,
  });
  return { app, close: () => sql.end({ timeout: 0 }) };
}

/** /openapi.json of that app. */
export async function buildSpec(): Promise<unknown> {
  const { app, close } = await buildApp();
  try {
    const res = await app.request("/openapi.json");
    if (res.status !== 200) throw new Error(`/openapi.json answered ${res.status}: ${await res.text()}`);
    return await res.json();
  } finally {
    await close();
  }
}

/** The TypeScript types of a spec, as committed in shared/api-types.ts. */
export async function apiTypes(spec: unknown): Promise<string> {
  const ast = await openapiTS(spec as Parameters<typeof openapiTS>[0], { alphabetize: false });
  return (
    "/**\n * Generated from /openapi.json by openapi-typescript (`npm run gen:api`); do not edit.\n" +
    " * test/openapi-lint.test.ts fails when the server's spec and this file differ.\n */\n\n" +
    astToString(ast)
  );
}

/** Redocly's lint of a spec (redocly.yaml applies): the parsed JSON report. */
export async function lintSpec(spec: unknown): Promise<{ errors: number; warnings: number; problems: { ruleId: string; severity: string; message: string; location?: { pointer?: string }[] }[] }> {
  const dir = await mkdtemp(join(tmpdir(), "linkflow-openapi-"));
  try {
    const file = join(dir, "openapi.json");
    await writeFile(file, JSON.stringify(spec, null, 2));
    const run = spawnSync(process.execPath, [REDOCLY, "lint", file, "--format=json", `--config=${join(root, "redocly.yaml")}`], { cwd: root, encoding: "utf8", env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" } });
    const report = JSON.parse(run.stdout.slice(run.stdout.indexOf("{")));
    return { errors: report.totals.errors, warnings: report.totals.warnings, problems: report.problems };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [cmd, out] = process.argv.slice(2);
  const spec = await buildSpec();
  if (cmd === "spec") {
    if (out) await writeFile(out, JSON.stringify(spec, null, 2) + "\n");
    else process.stdout.write(JSON.stringify(spec, null, 2) + "\n");
  } else if (cmd === "types") {
    await writeFile(API_TYPES, await apiTypes(spec));
    console.log(`wrote ${API_TYPES}`);
  } else if (cmd === "lint") {
    const r = await lintSpec(spec);
    for (const p of r.problems) console.log(`${p.severity.padEnd(7)} ${p.ruleId}: ${p.message} ${p.location?.[0]?.pointer ?? ""}`);
    console.log(`${r.errors} errors, ${r.warnings} warnings`);
    process.exitCode = r.errors ? 1 : 0;
  } else {
    console.error("usage: tsx scripts/openapi.ts spec [file] | types | lint");
    process.exitCode = 2;
  }
}
