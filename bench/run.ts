/**
 * `npm run bench [-- --quick]`: figures measured side by side in one run on this machine,
 * printed as a table and written to bench/results/latest.json (flat keys; null = not measured yet).
 *
 * Redirects: our worker on a warm code vs a constant-302 worker in the same workerd, and our
 * worker with beacons on (delivered to a real ingest + PostgreSQL) vs off. Load: autocannon on
 * loopback, from this process, bounded in time. Memory: peak RSS of the ingest process and of
 * workerd (/proc VmHWM, and the highest VmRSS sampled under load). Then bench/stats.ts in a
 * process of its own: stats query latency over 10M seeded clicks (1M with --quick).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { benchIngest } from "./ingest.ts";
import { createServer } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import postgres from "postgres";
import { edgeWorker, startEdge } from "../edge/miniflare.ts";
import { generateKey } from "../ingest/src/keys.ts";
import { sign, SIGNATURE_HEADER } from "../shared/signing.ts";
import { childPids, mib, procStatusKb, rssSampler } from "./proc.ts";

const quick = process.argv.includes("--quick");
const DURATION_S = quick ? 3 : 10;
const CONNECTIONS = 32;
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SECRET = "bench-edge-secret-0123456789";

const BASELINE = `export default { fetch() { return new Response(null, { status: 302, headers: { Location: "https://example.com/", "Cache-Control": "private, max-age=0" } }); } };`;

interface Load {
  rps: number;
  redirects: number;
  p50: number;
  p99: number;
  non3xx: number;
}

async function load(url: string, host: string): Promise<Load> {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_S, headers: { host, "user-agent": "bench" } });
  const non3xx = r.requests.total - (r["3xx"] ?? 0);
  return { rps: r.requests.average, redirects: r["3xx"] ?? 0, p50: r.latency.p50, p99: r.latency.p99, non3xx };
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });

// A database of its own, and ingest in its own process (as deployed), so the load generator
// in this process does not share an event loop with it.
const dbName = `linkflow_bench_${process.pid}`;
const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
await admin`CREATE DATABASE ${admin(dbName)}`;
const benchDbUrl = Object.assign(new URL(DATABASE_URL), { pathname: `/${dbName}` }).toString();
const adminKey = generateKey();
const ingestPort = await freePort();
const dataDir = await mkdtemp(join(tmpdir(), "linkflow-bench-"));
// The whole pipeline runs in ingest: kinesalite and chDB embedded in dataDir.
const ingestProc = spawn(process.execPath, ["--import", "tsx", "ingest/src/main.ts"], {
  env: { ...process.env, DATABASE_URL: benchDbUrl, PORT: String(ingestPort), EDGE_SECRET: SECRET, ADMIN_API_KEY: adminKey, EDGE_ADMIN_URL: "", LOG_LEVEL: "warn", DATA_DIR: dataDir },
  stdio: ["ignore", "pipe", "inherit"],
});
await new Promise<void>((resolve, reject) => {
  ingestProc.stdout!.on("data", (d: Buffer) => d.toString().includes("listening") && resolve());
  ingestProc.on("exit", (code) => reject(new Error(`ingest exited with ${code}`)));
});
const ingest = { url: `http://127.0.0.1:${ingestPort}` };
const pg = postgres(benchDbUrl, { max: 1, onnotice: () => {} });
const vars = { INGEST_URL: ingest.url, EDGE_SECRET: SECRET };
const edge = await startEdge({
  vars,
  extraWorkers: [
    { name: "baseline", modules: true, script: BASELINE, compatibilityDate: "2026-04-01", routes: ["baseline.test/*"] },
    { ...(await edgeWorker({ ...vars, BEACONS: "off", PRIMARY_HOSTS: "nobeacon.test" }, "edge-no-beacon")), routes: ["nobeacon.test/*"] },
  ],
});

// workerd: Miniflare's child (one process for all three workers).
const [workerdPid] = await childPids(process.pid, "workerd");
const ingestRss = rssSampler(ingestProc.pid!);
const workerRss = workerdPid ? rssSampler(workerdPid) : undefined;
let results: Record<string, unknown> = {};
let memory = { ingest_rss_mib: null as number | null, ingest_rss_sampled_mib: null as number | null, worker_rss_mib: null as number | null, worker_rss_sampled_mib: null as number | null };

try {
  const res = await fetch(`${ingest.url}/api/links`, {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({ url: "https://example.com/bench" }),
  });
  const { code } = (await res.json()) as { code: string };
  const target = `${edge.url}/${code}`;
  // Warm both isolates (KV → isolate cache) before measuring.
  for (const host of ["127.0.0.1", "nobeacon.test", "baseline.test"]) await fetch(target, { headers: { host }, redirect: "manual" });

  console.log(`redirect load: ${CONNECTIONS} connections × ${DURATION_S}s each, autocannon on loopback`);
  const baseline = await load(target, "baseline.test");
  const off = await load(target, "nobeacon.test");
  const clicksBefore = Number((await pg`SELECT count(*) AS n FROM clicks`)[0]!.n);
  const on = await load(target, "127.0.0.1");
  const beaconed = Number((await pg`SELECT count(*) AS n FROM clicks`)[0]!.n) - clicksBefore;
  // Every redirect must become a click: give the worker's retries the whole waitUntil window.
  let clicksAfter = 0;
  for (const until = Date.now() + 35_000; Date.now() < until; await new Promise((r) => setTimeout(r, 500))) {
    clicksAfter = Number((await pg`SELECT count(*) AS n FROM clicks`)[0]!.n) - clicksBefore;
    if (clicksAfter >= on.redirects) break;
  }

  const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;

  // Pipeline lag: a steady 5k clicks/s (batched beacons of 50, every 10 ms) once the backlog
  // of the redirect part has drained; then PostgreSQL commit → ClickHouse, p50/p99.
  const auth = { Authorization: `Bearer ${adminKey}` };
  const pipeline = async () => (await (await fetch(`${ingest.url}/api/pipeline`, { headers: auth })).json()) as { postgres_clicks: number; clickhouse_clicks: number };
  const drained = async (ms: number) => {
    for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 250))) {
      const p = await pipeline();
      if (p.clickhouse_clicks === p.postgres_clicks) return true;
    }
    return false;
  };
  await drained(120_000);
  const since = new Date().toISOString();
  const RATE = 5000;
  const BATCH = 50;
  let sentClicks = 0;
  let refused = 0;
  const inflight = new Set<Promise<void>>();
  const t0 = Date.now();
  for (let tick = 0; Date.now() - t0 < DURATION_S * 1000; tick++) {
    const due = t0 + (tick * BATCH * 1000) / RATE;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    const now = new Date().toISOString();
    const events = Array.from({ length: BATCH }, (_, i) => ({
      click_id: crypto.randomUUID(), short_url: `http://localhost:8787/${code}`, original_url: "https://example.com/bench", timestamp: now,
      user_agent: "bench", ip_address: "203.0.113.1", referer: "", geo_location: { country: "US", colo: "DEV" },
      domain: "", code, link_id: 1, redirect_status: 302, cache_tier: "isolate",
    }));
    const raw = JSON.stringify(events);
    const p = (async () => {
      const res = await fetch(`${ingest.url}/v1/clicks`, { method: "POST", headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(SECRET, raw) }, body: raw });
      await res.arrayBuffer();
      if (res.status === 202) sentClicks += events.length;
      else refused += events.length;
    })().finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
  const offeredRate = sentClicks / ((Date.now() - t0) / 1000);
  const lagDrained = await drained(120_000);
  const lag = (await (await fetch(`${ingest.url}/api/pipeline/lag?since=${since}`, { headers: auth })).json()) as { clicks: number; p50_ms: number; p99_ms: number; max_ms: number };
  console.log(`\npipeline lag at ${offeredRate.toFixed(0)} clicks/s for ${DURATION_S}s (${sentClicks} acknowledged, ${refused} refused, drained: ${lagDrained}):`);
  console.log(`  PostgreSQL commit → ClickHouse  p50 ${lag.p50_ms} ms  p99 ${lag.p99_ms} ms  max ${lag.max_ms} ms  (${lag.clicks} clicks)`);
  const rows = [
    ["constant-302 worker (same workerd)", baseline],
    ["linkflow, beacons off", off],
    ["linkflow, beacons on (ingest + PostgreSQL)", on],
  ] as const;
  console.log(`\n${"".padEnd(44)} ${"req/s".padStart(9)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"non-3xx".padStart(8)}`);
  for (const [name, l] of rows)
    console.log(`${name.padEnd(44)} ${l.rps.toFixed(0).padStart(9)} ${String(l.p50).padStart(7)} ${String(l.p99).padStart(7)} ${String(l.non3xx).padStart(8)}`);
  console.log(`\nredirect ratio (beacons on / constant-302): ${ratio(on.rps, baseline.rps)}`);
  console.log(`beacon on/off ratio:                        ${ratio(on.rps, off.rps)}`);
  if (process.env.BENCH_VERBOSE) console.log((await (await fetch(`${ingest.url}/metrics`)).text()).split("\n").filter((l) => l.startsWith("linkflow_http_request_duration_seconds_count")).join("\n"));
  console.log(`clicks in PostgreSQL when load stopped:     ${beaconed} of ${on.redirects} redirects; after the retries: ${clicksAfter} (lost: ${on.redirects - clicksAfter})`);

  // Peak resident set over the whole run (VmHWM), read before the processes stop.
  memory = {
    ingest_rss_mib: mib(await procStatusKb(ingestProc.pid!, "VmHWM")),
    ingest_rss_sampled_mib: mib(ingestRss.stop()),
    worker_rss_mib: workerdPid ? mib(await procStatusKb(workerdPid, "VmHWM")) : null,
    worker_rss_sampled_mib: mib(workerRss?.stop() ?? null),
  };
  console.log(`\npeak RSS: ingest ${memory.ingest_rss_mib} MiB (highest sample under load ${memory.ingest_rss_sampled_mib}), workerd ${memory.worker_rss_mib ?? "?"} MiB (${memory.worker_rss_sampled_mib ?? "?"}; pid ${workerdPid ?? "not found"}, all three workers)`);

  results = {
    machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
    quick,
    redirect_warm_rps: Math.round(on.rps),
    redirect_baseline_rps: Math.round(baseline.rps),
    redirect_ratio: ratio(on.rps, baseline.rps),
    redirect_warm_p50_ms: on.p50,
    redirect_warm_p99_ms: on.p99,
    redirect_baseline_p50_ms: baseline.p50,
    redirect_baseline_p99_ms: baseline.p99,
    redirect_nobeacon_rps: Math.round(off.rps),
    beacon_on_off_ratio: ratio(on.rps, off.rps),
    beacon_redirects: on.redirects,
    beacon_clicks_stored: clicksAfter,
    beacon_clicks_lost: on.redirects - clicksAfter,
    ingest_single_cps: null,
    http_ceiling_rps: null,
    ingest_single_ratio: null,
    ingest_batch_cps: null,
    pg_ceiling_cps: null,
    ingest_batch_ratio: null,
    lag_p50_ms: lag.p50_ms,
    lag_p99_ms: lag.p99_ms,
    lag_rate_cps: Math.round(offeredRate),
    stats_p50_ms: null,
    stats_p95_ms: null,
    ...memory,
  };
} finally {
  ingestRss.stop();
  workerRss?.stop();
  await edge.close();
  ingestProc.kill("SIGTERM");
  await new Promise((r) => ingestProc.once("exit", r));
  await pg.end();
  await rm(dataDir, { recursive: true, force: true });
  await admin`DROP DATABASE ${admin(dbName)}`;
  await admin.end();
}

// Stats over seeded clicks: its own process (chDB holds one data folder per process), after the
// load above so the two never share the cores.
const stats = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("stats.ts", import.meta.url)), ...(quick ? ["--quick"] : [])], {
  stdio: ["ignore", "inherit", "inherit", "ipc"],
});
let statsOut: Record<string, unknown> | undefined;
stats.on("message", (m) => void (statsOut = m as Record<string, unknown>));
// Bounded: SIGTERM at the deadline (it cleans up), SIGKILL if that does not end it.
const statsTerm = setTimeout(() => stats.kill("SIGTERM"), (quick ? 60 : 420) * 1000);
const statsKill = setTimeout(() => stats.kill("SIGKILL"), (quick ? 80 : 450) * 1000);
const statsCode = await new Promise<number | null>((r) => stats.once("close", r));
clearTimeout(statsTerm);
clearTimeout(statsKill);
if (statsCode !== 0 || !statsOut) throw new Error(`bench/stats.ts failed (exit ${statsCode})`);
results = { ...results, ...statsOut };

// Durable beacon ingest against its same-run ceilings (ingest and a no-op server in their own processes).
results = { ...results, ...(await benchIngest(quick)) };
await writeFile(new URL("results/latest.json", import.meta.url), JSON.stringify(results, null, 2) + "\n");
console.log("\nwritten: bench/results/latest.json");
