/**
 * `npm run bench [-- --quick | --region]`: figures measured side by side in one run on this machine,
 * printed as a table and written to bench/results/latest.json (flat keys; null = not measured yet).
 *
 * Redirects: our worker on a warm code vs a constant-302 worker in the same workerd, our worker
 * with beacons on (delivered to a real ingest + PostgreSQL) vs off; a cold code (KV hit,
 * isolate miss) and an origin miss (code not in KV: the worker asks ingest's /v1/resolve).
 * Ingest runs as deployed: an HTTP process (PIPELINE_ROLES="": beacons, resolve, API) and a
 * pipeline process (forwarder, loader, archiver, maintenance: chDB embedded), and Kinesis is
 * kinesalite in a process of its own (bench/kinesalite-server.ts), as a service would be.
 * The warm/off/on series runs twice: everything on the shared 2 cores, then split with taskset
 * (workerd + the load generator on core 0; both ingest processes, kinesalite and this database's
 * PostgreSQL backends on core 1, as an edge and a region would be different machines).
 * Load: autocannon on loopback, from this process, bounded in time. CPU: /proc times of
 * workerd, the ingest processes and the PostgreSQL backends during each load. Memory: peak RSS
 * of each process (/proc VmHWM, and the highest VmRSS sampled under load). Then bench/stats.ts
 * in a process of its own: stats query latency over 10M seeded clicks (1M with --quick).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { benchIngest, freePort, median, startChild } from "./ingest.ts";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import postgres from "postgres";
import { edgeWorker, startEdge } from "../edge/miniflare.ts";
import { edgeBundleSize } from "../scripts/edge-size.ts";
import { generateKey } from "../ingest/src/auth/keys.ts";
import { keysOf } from "../shared/keys.ts";
import { sign, SIGNATURE_HEADER } from "../shared/signing.ts";
import { childPids, cpuMs, mib, procStatusKb, rssSampler, threadCpuMs } from "./proc.ts";

const quick = process.argv.includes("--quick");
/** `--region`: only the pipeline lag load and the region's CPU (about a minute; for A/B work on the pipeline); writes no results. */
const regionOnly = process.argv.includes("--region");
const DURATION_S = quick ? 2 : 10;
/** Redirect series: rounds of (constant-302, beacons off, beacons on), and seconds per load. */
const ROUNDS = quick ? 1 : 5;
const LOAD_S = quick ? 1.5 : 3;
const CONNECTIONS = 32;
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SECRET = "bench-edge-secret-0123456789-abcdef";
/** The beacon key both sides derive from SECRET (shared/keys.ts): this process's own beacons are signed with it. */
const BEACON_KEY = (await keysOf(SECRET)).beacon;
/** Links created only in PostgreSQL (not in KV) for the origin-miss load: each is asked for once. */
const ORIGIN_CODES = quick ? 300 : 3000;

/** The worker as `wrangler deploy` would upload it (minified), measured before any load starts. */
const edgeBundle = edgeBundleSize();
console.log(`worker bundle: ${edgeBundle.kib} KiB minified, ${edgeBundle.gzip_kib} KiB gzip`);

const BASELINE = `export default { fetch() { return new Response(null, { status: 302, headers: { Location: "https://example.com/", "Cache-Control": "private, max-age=0" } }); } };`;

interface Load {
  rps: number;
  redirects: number;
  p50: number;
  p99: number;
  non3xx: number;
}

/** A timed load on one URL, or `paths` each requested once (amount-bounded: an origin miss happens once per code). */
async function load(url: string, host: string, paths?: string[], seconds = LOAD_S): Promise<Load> {
  let i = 0;
  const r = await autocannon({
    url,
    connections: CONNECTIONS,
    headers: { host, "user-agent": "bench" },
    ...(paths ? { amount: paths.length, requests: [{ setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length] }) }] } : { duration: seconds }),
  });
  const non3xx = r.requests.total - (r["3xx"] ?? 0);
  // Requests over the load's own elapsed time (autocannon's per-second average needs whole seconds).
  return { rps: paths ? (r["3xx"] ?? 0) / (r.duration || 1) : r.requests.total / (r.duration || 1), redirects: r["3xx"] ?? 0, p50: r.latency.p50, p99: r.latency.p99, non3xx };
}

// A database of its own, and ingest in its own processes (as deployed), so the load generator
// in this process does not share an event loop with it.
const dbName = `linkflow_bench_${process.pid}`;
const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
await admin`CREATE DATABASE ${admin(dbName)}`;
const benchDbUrl = Object.assign(new URL(DATABASE_URL), { pathname: `/${dbName}` }).toString();
const adminKey = generateKey();
const [httpPort, pipelinePort, edgePort] = [await freePort(), await freePort(), await freePort()];
const dataDir = await mkdtemp(join(tmpdir(), "linkflow-bench-"));

/** BENCH_PIPELINE_NODE_ARGS, BENCH_HTTP_NODE_ARGS: node flags for the pipeline or the HTTP process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"). */
async function startIngestProc(port: number, env: Record<string, string>, nodeArgs: string[] = []): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [...nodeArgs, "--import", "tsx", "ingest/src/main.ts"], {
    env: { ...process.env, DATABASE_URL: benchDbUrl, PORT: String(port), EDGE_SECRET: SECRET, ADMIN_API_KEY: adminKey, LOG_LEVEL: "warn", DATA_DIR: dataDir, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on("data", (d: Buffer) => d.toString().includes("listening") && resolve());
    proc.on("exit", (code) => reject(new Error(`ingest exited with ${code}`)));
  });
  return proc;
}
// Kinesis: kinesalite in its own process (deployed, Kinesis is a service ingest reaches over the
// network; its CPU is measured apart, and still shares these cores).
const kinesisPort = await freePort();
const kinesisProc = await startChild(["bench/kinesalite-server.ts"], { PORT: String(kinesisPort), KDIR: join(dataDir, "kinesis") }, "listening");
// The pipeline process first (it runs the migrations); it pushes links to the worker's KV.
const pipelineProc = await startIngestProc(
  pipelinePort,
  { EDGE_ADMIN_URL: `http://127.0.0.1:${edgePort}`, KINESIS_ENDPOINT: `http://127.0.0.1:${kinesisPort}` },
  process.env.BENCH_PIPELINE_NODE_ARGS?.split(" ").filter(Boolean),
);
// The HTTP process: beacons, /v1/resolve and the API, no pipeline role, no KV push (so links
// created through it reach the edge only through /v1/resolve: the origin-miss load).
const httpProc = await startIngestProc(httpPort, { PIPELINE_ROLES: "", EDGE_ADMIN_URL: "" }, process.env.BENCH_HTTP_NODE_ARGS?.split(" ").filter(Boolean));
const ingest = { url: `http://127.0.0.1:${httpPort}` };
const pipelineUrl = `http://127.0.0.1:${pipelinePort}`;
const pg = postgres(benchDbUrl, { max: 1, onnotice: () => {} });
const vars = { INGEST_URL: ingest.url, EDGE_SECRET: SECRET };
const edge = await startEdge({
  port: edgePort,
  vars,
  extraWorkers: [
    { name: "baseline", modules: true, script: BASELINE, compatibilityDate: "2026-04-01", routes: ["baseline.test/*"] },
    { ...(await edgeWorker({ ...vars, BEACONS: "off", PRIMARY_HOSTS: "nobeacon.test" }, "edge-no-beacon")), routes: ["nobeacon.test/*"] },
    // No isolate cache for found links: every request reads KV (a cold code), or asks ingest (origin miss).
    { ...(await edgeWorker({ ...vars, BEACONS: "off", PRIMARY_HOSTS: "cold.test", ISOLATE_TTL_MS: "0" }, "edge-cold")), routes: ["cold.test/*"] },
  ],
});

// workerd: Miniflare's child (one process for all the workers).
const [workerdPid] = await childPids(process.pid, "workerd");
const samplers = {
  ingest: rssSampler(httpProc.pid!),
  pipeline: rssSampler(pipelineProc.pid!),
  worker: workerdPid ? rssSampler(workerdPid) : undefined,
};
let results: Record<string, unknown> = {};

/** This database's PostgreSQL backends (the ingest processes' connections, not ours). */
const backends = async () => (await pg<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).map((r) => r.pid);
/** CPU ms each group of processes used while `work` ran. */
async function cpuDuring<T>(work: () => Promise<T>) {
  const groups = async () => ({ workerd: workerdPid ? [workerdPid] : [], ingest: [httpProc.pid!], pipeline: [pipelineProc.pid!], kinesis: [kinesisProc.pid!], postgres: await backends() });
  const snap = async () => Object.fromEntries(await Promise.all(Object.entries(await groups()).map(async ([k, pids]) => [k, new Map(await Promise.all(pids.map(async (p) => [p, await cpuMs(p)] as const)))] as const)));
  const before = await snap();
  const result = await work();
  const after = await snap();
  const cpu = Object.fromEntries(Object.entries(after).map(([k, m]) => [k, Math.round([...m].reduce((t, [p, ms]) => t + ms - (before[k]!.get(p) ?? 0), 0))])) as Record<"workerd" | "ingest" | "pipeline" | "kinesis" | "postgres", number>;
  return { result, cpu };
}
/**
 * Waits (at most 30 s) until the region is quiet: ingest, kinesalite and this database's
 * PostgreSQL backends together under 10 % of a core over 300 ms. After a beacons-on
 * load the pipeline goes on working for seconds once the clicks are in ClickHouse (its
 * background merges), and a load started then shares the cores with that: in one run the loads
 * right after a beacons-on load did ~half the req/s of the same loads a round later.
 */
async function settle() {
  for (const until = Date.now() + 30_000; Date.now() < until; ) {
    const pids = [httpProc.pid!, pipelineProc.pid!, kinesisProc.pid!, ...(await backends())];
    const before = await Promise.all(pids.map(cpuMs));
    await new Promise((r) => setTimeout(r, 300));
    const used = (await Promise.all(pids.map(cpuMs))).reduce((t, ms, i) => t + ms - before[i]!, 0);
    if (used < 30) return;
  }
}
/** `taskset` on every thread of a process; false if it could not (no taskset, not permitted). */
const pin = (pid: number, cpuList: string) => {
  try {
    execFileSync("taskset", ["-a", "-p", "-c", cpuList, String(pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};
const allCpus = `0-${cpus().length - 1}`;

try {
  const auth = { Authorization: `Bearer ${adminKey}`, "content-type": "application/json" };
  const res = await fetch(`${pipelineUrl}/api/links`, { method: "POST", headers: auth, body: JSON.stringify({ url: "https://example.com/bench" }) });
  const { code, id: linkId } = (await res.json()) as { code: string; id: number };
  const target = `${edge.url}/${code}`;
  // Warm every isolate (KV → isolate cache) before measuring.
  for (const host of ["127.0.0.1", "nobeacon.test", "baseline.test", "cold.test"]) await fetch(target, { headers: { host }, redirect: "manual" });
  const clicks = async () => Number((await pg`SELECT count(*) AS n FROM clicks`)[0]!.n);
  /** Beacon requests the HTTP process answered so far (its /metrics request counter for /v1/clicks). */
  const beaconsServed = async () => {
    const text = await (await fetch(`${ingest.url}/metrics`)).text();
    return [...text.matchAll(/^linkflow_http_request_duration_seconds_count\{[^}]*route="\/v1\/clicks"[^}]*\} (\d+)/gm)].reduce((t, m) => t + Number(m[1]), 0);
  };

  type Run = Awaited<ReturnType<typeof cpuDuring<Load>>>;
  type Kind = "baseline" | "off" | "on";
  const HOSTS: Record<Kind, string> = { baseline: "baseline.test", off: "nobeacon.test", on: "127.0.0.1" };
  /**
   * Constant-302, ours with beacons off, ours with beacons on, in ROUNDS rounds whose order
   * rotates, so each ratio compares loads run next to each other (this machine's speed drifts
   * by tens of percent within minutes: one long load of each put minutes between the two sides
   * of a ratio). After a beacons-on load, the clicks it made are waited for (stored, then
   * loaded into ClickHouse), and every load waits for a quiet region (settle), so no load runs
   * while the region works off the previous one's backlog. `before()` runs before each load
   * (the split series pins new processes there).
   * Ratios are the medians of the per-round ratios; req/s, latency and CPU the medians of the rounds.
   */
  async function series(label: string, before: () => Promise<void> = async () => {}) {
    const runs: Record<Kind, Run[]> = { baseline: [], off: [], on: [] };
    let redirects = 0;
    let stored = 0;
    let atStop = 0;
    let beacons = 0;
    const order: Kind[] = ["baseline", "off", "on"];
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of [...order.slice(round % 3), ...order.slice(0, round % 3)]) {
        await before();
        await settle();
        if (kind !== "on") {
          runs[kind].push(await cpuDuring(() => load(target, HOSTS[kind])));
          continue;
        }
        const clicks0 = await clicks();
        const beacons0 = await beaconsServed();
        const run = await cpuDuring(() => load(target, HOSTS.on));
        runs.on.push(run);
        atStop += (await clicks()) - clicks0;
        // Every redirect must become a click: give the worker's retries the whole waitUntil window.
        let n = 0;
        for (const until = Date.now() + 35_000; (n = (await clicks()) - clicks0) < run.result.redirects && Date.now() < until; ) await new Promise((r) => setTimeout(r, 250));
        redirects += run.result.redirects;
        stored += n;
        beacons += (await beaconsServed()) - beacons0;
        await drained(60_000);
      }
    }
    const mid = (kind: Kind) => {
      const rs = runs[kind];
      const per = (k: keyof Run["cpu"]) => median(rs.map((r) => (r.cpu[k] / Math.max(1, r.result.redirects + r.result.non3xx)) * 1000));
      return {
        rps: median(rs.map((r) => r.result.rps)),
        p50: median(rs.map((r) => r.result.p50)),
        p99: median(rs.map((r) => r.result.p99)),
        non3xx: rs.reduce((t, r) => t + r.result.non3xx, 0),
        redirects: rs.reduce((t, r) => t + r.result.redirects, 0),
        cpu: { workerd: per("workerd"), ingest: per("ingest"), pipeline: per("pipeline"), kinesis: per("kinesis"), postgres: per("postgres") },
      };
    };
    const m = { baseline: mid("baseline"), off: mid("off"), on: mid("on") };
    const roundRatio = (a: Kind, b: Kind) => Math.round(median(runs[a].map((r, i) => r.result.rps / Math.max(1, runs[b][i]!.result.rps))) * 1000) / 1000;
    const ratios = { onOff: roundRatio("on", "off"), offBaseline: roundRatio("off", "baseline"), onBaseline: roundRatio("on", "baseline") };
    console.log(`\n${label}:`);
    console.log(`${"".padEnd(44)} ${"req/s".padStart(9)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"non-3xx".padStart(8)}   CPU µs per request: workerd / ingest HTTP / pipeline / kinesalite / PostgreSQL   (medians of ${ROUNDS} rounds; req/s of each round)`);
    for (const [name, kind] of [["constant-302 worker (same workerd)", "baseline"], ["linkflow, beacons off", "off"], ["linkflow, beacons on", "on"]] as const) {
      const l = m[kind];
      const c = l.cpu;
      console.log(`${name.padEnd(44)} ${l.rps.toFixed(0).padStart(9)} ${String(l.p50).padStart(7)} ${String(l.p99).padStart(7)} ${String(l.non3xx).padStart(8)}   ${[c.workerd, c.ingest, c.pipeline, c.kinesis, c.postgres].map((x) => x.toFixed(0)).join(" / ")}   (${runs[kind].map((r) => r.result.rps.toFixed(0)).join(", ")})`);
    }
    const perBeacon = beacons ? Math.round((stored / beacons) * 10) / 10 : null;
    console.log(`ratios (median of the rounds' own ratios): beacons on/off ${ratios.onOff}, off/constant-302 ${ratios.offBaseline}, on/constant-302 ${ratios.onBaseline}; workerd CPU per request off/on ${(m.off.cpu.workerd / m.on.cpu.workerd).toFixed(3)}`);
    console.log(`clicks stored when each beacons-on load stopped: ${atStop} of ${redirects} redirects; after the retries: ${stored} (lost: ${redirects - stored}); ${beacons} beacons, ${perBeacon} clicks per beacon`);
    return { ...m, ratios, stored, redirects, perBeacon };
  }
  const drained = async (ms: number) => {
    for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 250))) {
      const p = (await (await fetch(`${pipelineUrl}/api/pipeline`, { headers: auth })).json()) as { postgres_clicks: number; clickhouse_clicks: number };
      if (p.clickhouse_clicks === p.postgres_clicks) return true;
    }
    return false;
  };

  /**
   * Pipeline lag: a steady 5k clicks/s (batched beacons of 50, every 10 ms) once the backlog
   * of any earlier load has drained; then PostgreSQL commit → ClickHouse, p50/p99. The region's
   * CPU during the load and until its clicks are in ClickHouse, per click: what a click costs
   * the region at that rate (the issue's ≤ 250 µs target), apart from the edge; and the
   * pipeline process's part of it by thread (JavaScript, libuv's pool, chDB's pools).
   */
  async function regionLoad() {
    await drained(120_000);
    await settle();
    const since = new Date().toISOString();
    let sentClicks = 0;
    let refused = 0;
    const threads0 = await threadCpuMs(pipelineProc.pid!);
    const lagLoad = await cpuDuring(async () => {
      const RATE = 5000;
      const BATCH = 50;
      const inflight = new Set<Promise<void>>();
      const t0 = Date.now();
      for (let tick = 0; Date.now() - t0 < DURATION_S * 1000; tick++) {
        const due = t0 + (tick * BATCH * 1000) / RATE;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        const now = new Date().toISOString();
        const events = Array.from({ length: BATCH }, () => ({
          click_id: crypto.randomUUID(), short_url: `http://localhost:8787/${code}`, original_url: "https://example.com/bench", timestamp: now,
          user_agent: "bench", ip_address: "203.0.113.1", referer: "", geo_location: { country: "US", colo: "DEV" },
          domain: "", code, link_id: Number(linkId), redirect_status: 302, cache_tier: "isolate",
        }));
        const raw = JSON.stringify(events);
        const p = (async () => {
          // A reused keep-alive socket the server just closed fails the fetch (ECONNRESET): send
          // again, as the edge would (click_ids make a repeat harmless).
          for (let attempt = 0; attempt < 3; attempt++) {
            try {
              const res = await fetch(`${ingest.url}/v1/clicks`, { method: "POST", headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(BEACON_KEY, raw) }, body: raw });
              await res.arrayBuffer();
              if (res.status === 202) sentClicks += events.length;
              else refused += events.length;
              return;
            } catch {
              // network error: next attempt
            }
          }
          refused += events.length;
        })().finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await Promise.all(inflight);
      const offeredRate = sentClicks / ((Date.now() - t0) / 1000);
      return { offeredRate, lagDrained: await drained(120_000) };
    });
    const { offeredRate, lagDrained } = lagLoad.result;
    const threads1 = await threadCpuMs(pipelineProc.pid!);
    const perClick = (ms: number) => Math.round((ms * 1000) / Math.max(1, sentClicks));
    const regionCpu = { ingest: perClick(lagLoad.cpu.ingest), pipeline: perClick(lagLoad.cpu.pipeline), kinesis: perClick(lagLoad.cpu.kinesis), postgres: perClick(lagLoad.cpu.postgres) };
    const regionUs = regionCpu.ingest + regionCpu.pipeline + regionCpu.kinesis + regionCpu.postgres;
    const lag = (await (await fetch(`${pipelineUrl}/api/pipeline/lag?since=${since}`, { headers: auth })).json()) as { clicks: number; p50_ms: number; p99_ms: number; max_ms: number };
    console.log(`\npipeline lag at ${offeredRate.toFixed(0)} clicks/s for ${DURATION_S}s (${sentClicks} acknowledged, ${refused} refused, drained: ${lagDrained}):`);
    console.log(`  PostgreSQL commit → ClickHouse  p50 ${lag.p50_ms} ms  p99 ${lag.p99_ms} ms  max ${lag.max_ms} ms  (${lag.clicks} clicks)`);
    console.log(`  region CPU per click, load until loaded: ${regionUs} µs (ingest HTTP ${regionCpu.ingest} / pipeline ${regionCpu.pipeline} / kinesalite ${regionCpu.kinesis} / PostgreSQL backends ${regionCpu.postgres})`);
    const byThread = [...threads1].map(([name, ms]) => [name, ms - (threads0.get(name) ?? 0)] as const).filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]);
    console.log(`  pipeline process by thread, µs per click: ${byThread.map(([name, ms]) => `${name} ${perClick(ms)}`).join(", ")}`);
    return { lag, regionCpu, regionUs, offeredRate };
  }

  if (regionOnly) await regionLoad();
  else {
    console.log(`redirect load: ${CONNECTIONS} connections, ${ROUNDS} round(s) of ${LOAD_S}s per load, autocannon on loopback`);
    const shared = await series("all on the same 2 cores (workerd, load generator, ingest HTTP + pipeline processes, kinesalite, PostgreSQL)");
    await drained(120_000);
    // Fair split: the edge side (workerd + load generator) on core 0, the region on core 1:
    // ingest, kinesalite, and the PostgreSQL server's processes that serve it (this database's
    // backends, which ingest opens as it needs them, so they are pinned again before each load,
    // and the server's shared ones: WAL writer, checkpointer…).
    const pgProcs = async () =>
      (await pg<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE (datname = current_database() OR backend_type <> 'client backend') AND pid <> pg_backend_pid()`).map((r) => r.pid);
    const region = async () => [httpProc.pid!, pipelineProc.pid!, kinesisProc.pid!, ...(await pgProcs())];
    // PostgreSQL's processes are pinned as well as can be (one may have exited since the query).
    const pinRegion = async () => void (await pgProcs()).forEach((p) => pin(p, "1"));
    const pinned =
      cpus().length >= 2 && [pin(process.pid, "0"), workerdPid ? pin(workerdPid, "0") : false, ...[httpProc, pipelineProc, kinesisProc].map((p) => pin(p.pid!, "1"))].every(Boolean);
    const split = pinned
      ? await series("split with taskset: workerd + load generator on core 0; ingest HTTP + pipeline + kinesalite + PostgreSQL (this database's backends, WAL writer…) on core 1", pinRegion)
      : null;
    if (pinned) {
      for (const p of [process.pid, workerdPid, ...(await region())]) if (p) pin(p, allCpus);
    } else console.log("\n(taskset unavailable or not permitted: no split-core series)");
    await drained(120_000);

    // Cold code: a KV hit on every request (the cold worker keeps no found link in its isolate).
    const cold = await load(target, "cold.test", undefined, DURATION_S);
    // Origin miss: codes only PostgreSQL knows (created through the HTTP process, which pushes
    // nothing to KV), each asked for once: isolate miss, KV miss, signed /v1/resolve, KV write-back.
    // (Unknown codes would mostly hit the isolate's negative cache, NEGATIVE_TTL_MS: not a miss.)
    const originCodes: string[] = [];
    for (let n = 0; n < ORIGIN_CODES; n += 1000) {
      const links = Array.from({ length: Math.min(1000, ORIGIN_CODES - n) }, (_, i) => ({ url: `https://example.com/origin/${n + i}` }));
      const r = await fetch(`${ingest.url}/api/links/bulk`, { method: "POST", headers: auth, body: JSON.stringify({ links }) });
      const out = (await r.json()) as { results: { link?: { code: string } }[] };
      for (const x of out.results) if (x.link) originCodes.push(`/${x.link.code}`);
    }
    const origin = await load(edge.url, "cold.test", originCodes);
    const originTiers = originCodes.length; // every code asked once
    console.log(`\n${"".padEnd(44)} ${"req/s".padStart(9)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"non-3xx".padStart(8)}`);
    for (const [name, l] of [["cold code (KV hit, isolate miss), beacons off", cold], [`origin miss (${originTiers} codes once each), beacons off`, origin]] as const)
      console.log(`${name.padEnd(44)} ${l.rps.toFixed(0).padStart(9)} ${String(l.p50).padStart(7)} ${String(l.p99).padStart(7)} ${String(l.non3xx).padStart(8)}`);

    const ratio = (a: number, b: number) => (b ? Math.round((a / b) * 1000) / 1000 : null);

    const { lag, regionCpu, regionUs, offeredRate } = await regionLoad();


    const { baseline, off, on } = shared;
    console.log(`\nredirect ratio (beacons on / constant-302): ${shared.ratios.onBaseline}; beacons off / constant-302: ${shared.ratios.offBaseline}`);
    console.log(`beacon on/off ratio: ${shared.ratios.onOff} on shared cores${split ? `, ${split.ratios.onOff} split (off / constant-302 split: ${split.ratios.offBaseline})` : ""}`);

    // Peak resident set over the whole run (VmHWM), read before the processes stop.
    const hwm = async (pid: number | undefined) => (pid ? mib(await procStatusKb(pid, "VmHWM")) : null);
    const memory = {
      ingest_rss_mib: await hwm(httpProc.pid),
      ingest_rss_sampled_mib: mib(samplers.ingest.stop()),
      pipeline_rss_mib: await hwm(pipelineProc.pid),
      pipeline_rss_sampled_mib: mib(samplers.pipeline.stop()),
      worker_rss_mib: await hwm(workerdPid),
      worker_rss_sampled_mib: mib(samplers.worker?.stop() ?? null),
    };
    console.log(`\npeak RSS: ingest HTTP ${memory.ingest_rss_mib} MiB (highest sample ${memory.ingest_rss_sampled_mib}), pipeline process (chDB) ${memory.pipeline_rss_mib} MiB (${memory.pipeline_rss_sampled_mib}), workerd ${memory.worker_rss_mib ?? "?"} MiB (${memory.worker_rss_sampled_mib ?? "?"}; pid ${workerdPid ?? "not found"}, all four workers)`);

    results = {
      machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
      quick,
      edge_bundle_kib: edgeBundle.kib,
      edge_bundle_gzip_kib: edgeBundle.gzip_kib,
      redirect_warm_rps: Math.round(on.rps),
      redirect_baseline_rps: Math.round(baseline.rps),
      redirect_ratio: shared.ratios.onBaseline,
      redirect_warm_p50_ms: on.p50,
      redirect_warm_p99_ms: on.p99,
      redirect_baseline_p50_ms: baseline.p50,
      redirect_baseline_p99_ms: baseline.p99,
      redirect_p50_ratio: ratio(on.p50, baseline.p50),
      redirect_p99_ratio: ratio(on.p99, baseline.p99),
      redirect_nobeacon_rps: Math.round(off.rps),
      redirect_nobeacon_p50_ms: off.p50,
      redirect_nobeacon_p99_ms: off.p99,
      redirect_nobeacon_ratio: shared.ratios.offBaseline,
      beacon_on_off_ratio: shared.ratios.onOff,
      redirect_rounds: ROUNDS,
      beacon_redirects: shared.redirects,
      beacon_clicks_stored: shared.stored,
      beacon_clicks_lost: shared.redirects - shared.stored,
      beacon_clicks_per_beacon: shared.perBeacon,
      // CPU per 1000 redirects with beacons on vs off (shared cores): what the beacons cost, and where.
      beacon_workerd_cpu_ms_per_1k: Math.round(on.cpu.workerd),
      nobeacon_workerd_cpu_ms_per_1k: Math.round(off.cpu.workerd),
      baseline_workerd_cpu_ms_per_1k: Math.round(baseline.cpu.workerd),
      beacon_ingest_cpu_ms_per_1k: Math.round(on.cpu.ingest),
      beacon_pipeline_cpu_ms_per_1k: Math.round(on.cpu.pipeline),
      beacon_kinesis_cpu_ms_per_1k: Math.round(on.cpu.kinesis),
      beacon_postgres_cpu_ms_per_1k: Math.round(on.cpu.postgres),
      redirect_split_baseline_rps: split ? Math.round(split.baseline.rps) : null,
      redirect_split_nobeacon_rps: split ? Math.round(split.off.rps) : null,
      redirect_split_warm_rps: split ? Math.round(split.on.rps) : null,
      redirect_split_ratio: split ? split.ratios.onBaseline : null,
      redirect_split_nobeacon_ratio: split ? split.ratios.offBaseline : null,
      beacon_on_off_ratio_split: split ? split.ratios.onOff : null,
      beacon_clicks_lost_split: split ? split.redirects - split.stored : null,
      beacon_workerd_cpu_ms_per_1k_split: split ? Math.round(split.on.cpu.workerd) : null,
      nobeacon_workerd_cpu_ms_per_1k_split: split ? Math.round(split.off.cpu.workerd) : null,
      baseline_workerd_cpu_ms_per_1k_split: split ? Math.round(split.baseline.cpu.workerd) : null,
      redirect_cold_rps: Math.round(cold.rps),
      redirect_cold_p50_ms: cold.p50,
      redirect_cold_p99_ms: cold.p99,
      redirect_cold_ratio: ratio(cold.rps, baseline.rps),
      redirect_cold_p99_ratio: ratio(cold.p99, baseline.p99),
      redirect_origin_miss_rps: Math.round(origin.rps),
      redirect_origin_miss_p50_ms: origin.p50,
      redirect_origin_miss_p99_ms: origin.p99,
      redirect_origin_miss_ratio: ratio(origin.rps, baseline.rps),
      redirect_origin_miss_p99_ratio: ratio(origin.p99, baseline.p99),
      redirect_origin_miss_codes: originCodes.length,
      redirect_origin_miss_non3xx: origin.non3xx,
      ingest_single_cps: null,
      http_ceiling_rps: null,
      ingest_single_ratio: null,
      ingest_batch_cps: null,
      pg_ceiling_cps: null,
      ingest_batch_ratio: null,
      lag_p50_ms: lag.p50_ms,
      lag_p99_ms: lag.p99_ms,
      lag_rate_cps: Math.round(offeredRate),
      region_cpu_us_per_click_5k: regionUs,
      region_ingest_cpu_us_per_click_5k: regionCpu.ingest,
      region_pipeline_cpu_us_per_click_5k: regionCpu.pipeline,
      region_kinesis_cpu_us_per_click_5k: regionCpu.kinesis,
      region_postgres_cpu_us_per_click_5k: regionCpu.postgres,
      stats_p50_ms: null,
      stats_p95_ms: null,
      ...memory,
    };
  }
} finally {
  samplers.ingest.stop();
  samplers.pipeline.stop();
  samplers.worker?.stop();
  await edge.close();
  for (const p of [httpProc, pipelineProc, kinesisProc]) {
    p.kill("SIGTERM");
    await new Promise((r) => p.once("exit", r));
  }
  await pg.end();
  await rm(dataDir, { recursive: true, force: true });
  await admin`DROP DATABASE ${admin(dbName)} WITH (FORCE)`;
  await admin.end();
}

if (regionOnly) process.exit(0);

// Stats over seeded clicks: its own process (chDB holds one data folder per process), after the
// load above so the two never share the cores.
const stats = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("stats.ts", import.meta.url)), ...(quick ? ["--quick"] : [])], {
  stdio: ["ignore", "inherit", "inherit", "ipc"],
});
let statsOut: Record<string, unknown> | undefined;
stats.on("message", (m) => void (statsOut = m as Record<string, unknown>));
// Bounded: SIGTERM at the deadline (it cleans up), SIGKILL if that does not end it.
// Seeding 10M clicks and rolling up their 2,160 hours takes most of it (docs/BENCHMARKS.md).
const statsTerm = setTimeout(() => stats.kill("SIGTERM"), (quick ? 120 : 900) * 1000);
const statsKill = setTimeout(() => stats.kill("SIGKILL"), (quick ? 150 : 930) * 1000);
const statsCode = await new Promise<number | null>((r) => stats.once("close", r));
clearTimeout(statsTerm);
clearTimeout(statsKill);
// A stats failure (e.g. its deadline on a busy machine) leaves its keys null; the rest still counts.
if (statsCode !== 0 || !statsOut) console.error(`\nbench/stats.ts failed (exit ${statsCode}): stats figures left null`);
else results = { ...results, ...statsOut };

// Durable beacon ingest against its same-run ceilings (ingest and a no-op server in their own processes).
results = { ...results, ...(await benchIngest(quick)) };
// What the standalone benches wrote (bench:stats --clicks N per size, bench:growth) is not
// measured here: kept as it was, not dropped.
const latest = new URL("results/latest.json", import.meta.url);
const before = JSON.parse(await readFile(latest, "utf8").catch(() => "{}")) as Record<string, unknown>;
for (const key of ["stats_scale", "stats_growth"]) if (key in before) results[key] = before[key];
await writeFile(latest, JSON.stringify(results, null, 2) + "\n");
console.log("\nwritten: bench/results/latest.json");
