/**
 * Durable beacon ingest, side by side in one run (part of `npm run bench`; alone:
 * `tsx bench/ingest.ts [--quick]`):
 *  - single-click beacons, 256 connections, each 202 only after its PostgreSQL commit (group
 *    commit), vs the same-run ceilings of a no-op Hono/Node endpoint parsing the same JSON
 *    (bench/noop-server.ts: `c.req.text()` as the issue describes it, and the body read
 *    straight from Node's request as ingest reads it: the only one ingest cannot beat);
 *  - batched beacons (100 clicks a request) vs the same-run ceiling of the same PostgreSQL:
 *    COPY of the same rows from this process, on as many connections as ingest's lanes.
 * Ingest runs as BENCH_INGEST_PROCS processes (default 2: one per core here) with
 * PIPELINE_ROLES="" (the durable write path only; the pipeline workers run in another process,
 * as deployed), each on its own port, and the load spreads its connections over them; the
 * no-op ceiling is measured the same way (as many no-op processes), so the ratio compares like
 * with like. One process of each is measured too (what the second core buys). PostgreSQL side:
 * transactions committed during the single-click load (pg_stat_database), so clicks per flush.
 * Prints a table, returns the figures.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import autocannon from "autocannon";
import postgres from "postgres";
import { keysOf } from "../shared/keys.ts";
import { cpuMs, mib, procStatusKb } from "./proc.ts";

const SECRET = "bench-edge-secret-0123456789-abcdef";
/** Beacons are signed with the key ingest derives for them from EDGE_SECRET (shared/keys.ts). */
const BEACON_KEY = (await keysOf(SECRET)).beacon;
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });

export async function startChild(args: string[], env: Record<string, string>, ready: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ["--import", "tsx", ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on("data", (d: Buffer) => d.toString().includes(ready) && resolve());
    proc.on("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}`)));
  });
  return proc;
}
/** The median of the rounds' figures (the mean of the middle two for an even count). */
export const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};
const stop = (p: ChildProcess) => new Promise((r) => (p.kill("SIGTERM"), p.once("exit", r)));

const event = (now: string) => ({
  click_id: randomUUID(),
  short_url: "http://localhost:8787/bench01",
  original_url: "https://example.com/bench",
  timestamp: now,
  user_agent: "Mozilla/5.0 (bench)",
  ip_address: "203.0.113.1",
  referer: "",
  geo_location: { country: "US", colo: "DEV" },
  domain: "",
  code: "bench01",
  link_id: 1,
  redirect_status: 302,
  cache_tier: "isolate",
});
/** One reading of the clock: two could straddle a second and sign another t than the header's (a 401). */
const signed = (body: string, t = Math.floor(Date.now() / 1000)) => `t=${t},v1=${createHmac("sha256", BEACON_KEY).update(`${t}.${body}`).digest("hex")}`;

/**
 * autocannon POSTing fresh signed beacons of `perRequest` clicks, `connections` spread over
 * `urls` (one autocannon per server, run together); returns requests/s answered 2xx.
 */
export async function beaconLoad(urls: string | string[], perRequest: number, connections: number, durationS: number) {
  const list = [urls].flat();
  const runs = await Promise.all(
    list.map((url) =>
      autocannon({
        url: `${url}/v1/clicks`,
        connections: Math.ceil(connections / list.length),
        duration: durationS,
        requests: [
          {
            method: "POST",
            setupRequest: (req) => {
              const now = new Date().toISOString();
              const body = JSON.stringify(perRequest === 1 ? event(now) : Array.from({ length: perRequest }, () => event(now)));
              return { ...req, body, headers: { "content-type": "application/json", "x-signature": signed(body) } };
            },
          },
        ],
      }),
    ),
  );
  const ok = runs.reduce((a, r) => a + (r["2xx"] ?? 0), 0);
  const p = (k: "p50" | "p99") => Math.max(...runs.map((r) => r.latency[k]));
  return { rps: ok / durationS, non2xx: runs.reduce((a, r) => a + r.non2xx, 0), p50: p("p50"), p99: p("p99") };
}

/**
 * What PostgreSQL itself takes: COPY of click rows (as ingest writes them) into a table like
 * `clicks`, with its primary key and indexes (INCLUDING ALL), on `lanes` connections at once
 * (ingest's processes × lanes), for `durationS`. The rows are made cheaply in the loop
 * (a counter in the click_id; the other fields as the beacons have them): made with
 * randomUUID and JSON on one connection, the ceiling measured this process's JavaScript rather
 * than PostgreSQL (~20k rows/s, which ingest's batches beat by 2×).
 */
async function copyCeiling(dbUrl: string, durationS: number, lanes = 4, perChunk = 5000): Promise<number> {
  const sql = postgres(dbUrl, { max: lanes, onnotice: () => {} });
  await sql`CREATE TABLE copy_ceiling (LIKE clicks INCLUDING ALL)`;
  const now = new Date().toISOString();
  const e = event(now);
  const rest = [e.link_id, e.domain, e.code, e.short_url, e.original_url, e.timestamp, e.user_agent, e.ip_address, e.referer, JSON.stringify(e.geo_location), e.redirect_status, e.cache_tier, now].join("\t");
  const prefix = randomUUID().slice(0, 24); // "xxxxxxxx-xxxx-4xxx-yxxx-"
  let id = 0;
  const chunk = () => {
    const lines: string[] = [];
    for (let i = 0; i < perChunk; i++) lines.push(`${prefix}${(id++).toString(16).padStart(12, "0")}\t${rest}`);
    return lines.join("\n") + "\n";
  };
  const t0 = Date.now();
  const until = t0 + durationS * 1000;
  let rows = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (Date.now() < until) {
        const w = await sql`COPY copy_ceiling (click_id, link_id, domain, code, short_url, original_url, ts, user_agent, ip_address, referer, geo_location, redirect_status, cache_tier, received_at) FROM STDIN`.writable();
        await pipeline(Readable.from([chunk()]), w);
        rows += perChunk;
      }
    }),
  );
  const rate = rows / ((Date.now() - t0) / 1000);
  const [counted] = await sql<{ n: string }[]>`SELECT count(*) AS n FROM copy_ceiling`;
  const n = Number(counted?.n);
  if (n !== rows) throw new Error(`COPY ceiling: ${n} rows in the table, ${rows} sent`);
  await sql.end();
  return rate;
}

export async function benchIngest(quick: boolean) {
  const durationS = quick ? 1.5 : 10;
  const rounds = quick ? 1 : 5;
  const loadS = quick ? 1.5 : 3;
  const procs = Math.max(1, Number(process.env.BENCH_INGEST_PROCS ?? 2));
  const dbName = `linkflow_bench_ingest_${process.pid}`;
  const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin`CREATE DATABASE ${admin(dbName)}`;
  const dbUrl = Object.assign(new URL(DATABASE_URL), { pathname: `/${dbName}` }).toString();
  const ingestEnv = { DATABASE_URL: dbUrl, EDGE_SECRET: SECRET, ADMIN_API_KEY: "bench-admin-key-0123456789", EDGE_ADMIN_URL: "", LOG_LEVEL: "warn", PIPELINE_ROLES: "" };
  const ingests: ChildProcess[] = [];
  const noops: ChildProcess[] = [];
  const ingestUrls: string[] = [];
  const noopUrls: string[] = [];
  const rawUrls: string[] = [];
  // The first ingest alone (it runs the migrations), then the others, which find them applied,
  // and the no-op servers, all starting at once.
  const ports = [];
  for (let i = 0; i < procs; i++) ports.push([await freePort(), await freePort(), await freePort()] as const);
  const startIngestProc = (port: number) => startChild(["ingest/src/main.ts"], { ...ingestEnv, PORT: String(port) }, "listening");
  const first = await startIngestProc(ports[0]![0]);
  ingests.push(first, ...(await Promise.all(ports.slice(1).map(([port]) => startIngestProc(port)))));
  noops.push(
    ...(await Promise.all(
      ports.flatMap(([, noopPort, rawPort]) => [
        startChild(["bench/noop-server.ts"], { PORT: String(noopPort), NOOP_BODY: "request" }, "listening"),
        startChild(["bench/noop-server.ts"], { PORT: String(rawPort), NOOP_BODY: "raw" }, "listening"),
      ]),
    )),
  );
  for (const [ingestPort, noopPort, rawPort] of ports) {
    ingestUrls.push(`http://127.0.0.1:${ingestPort}`);
    noopUrls.push(`http://127.0.0.1:${noopPort}`);
    rawUrls.push(`http://127.0.0.1:${rawPort}`);
  }
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
  const xacts = async () => Number((await sql`SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()`)[0]!.n);
  const clicks = async () => Number((await sql`SELECT count(*) AS n FROM clicks`)[0]!.n);
  // CPU time per click (ingest processes, and the PostgreSQL backends serving this database):
  // unlike req/s it barely moves when other work shares the cores, so it says what bounds us.
  const backends = async () => (await sql<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).map((r) => r.pid);
  const cpuOf = async (pids: number[]) => new Map(await Promise.all(pids.map(async (p) => [p, await cpuMs(p)] as const)));
  const cpu = async <T>(pids: number[], work: () => Promise<T>) => {
    const [own0, pg0] = [await cpuOf(pids), await cpuOf(await backends())];
    const result = await work();
    const [own1, pg1] = [await cpuOf(pids), await cpuOf(await backends())];
    const delta = (a: Map<number, number>, b: Map<number, number>) => [...b].reduce((t, [p, ms]) => t + ms - (a.get(p) ?? 0), 0);
    return { ...result, cpuMs: delta(own0, own1), pgCpuMs: delta(pg0, pg1) };
  };
  const perK = (ms: number, n: number) => (n ? Math.round((ms / n) * 1000 * 10) / 10 : null); // CPU ms per 1000
  try {
    // The link the beacons' clicks name (ingest takes a click only for the link at its domain/code).
    const e = event("");
    await sql`INSERT INTO links (id, workspace_id, domain, code, url) VALUES (${e.link_id}, (SELECT min(id) FROM workspaces), ${e.domain}, ${e.code}, ${e.original_url})`;
    await sql`SELECT setval(pg_get_serial_sequence('links', 'id'), (SELECT max(id) FROM links))`;
    // Rounds of the single-click loads whose order rotates, so each ratio compares loads run
    // next to each other (this machine's speed drifts by tens of percent within minutes); the
    // ratios are the medians of the rounds' own ratios. One process of each (what the second
    // core buys) in full runs only, to keep --quick short.
    type Kind = "ceiling1" | "single1" | "ceiling" | "raw" | "single";
    type Run = Awaited<ReturnType<typeof cpu<Awaited<ReturnType<typeof beaconLoad>>>>>;
    const runs: Record<Kind, Run[]> = { ceiling1: [], single1: [], ceiling: [], raw: [], single: [] };
    const kinds: Kind[] = quick ? ["ceiling", "raw", "single"] : ["ceiling1", "single1", "ceiling", "raw", "single"];
    let flushes = 0;
    let singleClicks = 0;
    for (let round = 0; round < rounds; round++) {
      for (const kind of [...kinds.slice(round % kinds.length), ...kinds.slice(0, round % kinds.length)]) {
        if (kind === "ceiling1") runs.ceiling1.push(await cpu([noops[0]!.pid!], () => beaconLoad(noopUrls[0]!, 1, 256, loadS)));
        else if (kind === "single1") runs.single1.push(await cpu([ingests[0]!.pid!], () => beaconLoad(ingestUrls[0]!, 1, 256, loadS)));
        else if (kind === "ceiling") runs.ceiling.push(await cpu(noops.filter((_, i) => i % 2 === 0).map((p) => p.pid!), () => beaconLoad(noopUrls, 1, 256, loadS)));
        else if (kind === "raw") runs.raw.push(await cpu(noops.filter((_, i) => i % 2 === 1).map((p) => p.pid!), () => beaconLoad(rawUrls, 1, 256, loadS)));
        else {
          const [x0, c0] = [await xacts(), await clicks()];
          runs.single.push(await cpu(ingests.map((p) => p.pid!), () => beaconLoad(ingestUrls, 1, 256, loadS)));
          // pg_stat_database counts a backend's transactions when it reports (at most every 500 ms
          // while busy, at once when idle): read after the load, once the last ones have reported.
          await new Promise((r) => setTimeout(r, 600));
          const [x1, c1] = [await xacts(), await clicks()];
          flushes += x1 - x0;
          singleClicks += c1 - c0;
        }
      }
    }
    /** Medians of a kind's rounds; CPU summed over them. */
    const mid = (kind: Kind) => {
      const rs = runs[kind];
      if (!rs.length) return null;
      return { rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), non2xx: rs.reduce((t, r) => t + r.non2xx, 0), cpuMs: rs.reduce((t, r) => t + r.cpuMs, 0), pgCpuMs: rs.reduce((t, r) => t + r.pgCpuMs, 0), requests: rs.reduce((t, r) => t + r.rps * loadS, 0) };
    };
    const roundRatio = (a: Kind, b: Kind) => (runs[a].length ? Math.round(median(runs[a].map((r, i) => r.rps / runs[b][i]!.rps)) * 1000) / 1000 : null);
    const [ceiling1, single1, ceiling, raw, single] = [mid("ceiling1"), mid("single1"), mid("ceiling")!, mid("raw")!, mid("single")!];
    const c2 = await clicks();
    const batch = await cpu(ingests.map((p) => p.pid!), () => beaconLoad(ingestUrls, 100, 32, durationS));
    const stored = await clicks();
    const rss = await Promise.all(ingests.map(async (p) => mib(await procStatusKb(p.pid!, "VmHWM"))));
    const pgCeiling = await copyCeiling(dbUrl, durationS);
    const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
    const out = {
      ingest_single_cps: Math.round(single.rps),
      http_ceiling_rps: Math.round(ceiling.rps),
      ingest_single_ratio: roundRatio("single", "ceiling"),
      http_ceiling_raw_rps: Math.round(raw.rps),
      ingest_single_raw_ratio: roundRatio("single", "raw"),
      ingest_single_rounds: rounds,
      ingest_single_p50_ms: single.p50,
      ingest_single_p99_ms: single.p99,
      ingest_procs: procs,
      ingest_single_1proc_cps: single1 && Math.round(single1.rps),
      http_ceiling_1proc_rps: ceiling1 && Math.round(ceiling1.rps),
      ingest_single_1proc_ratio: roundRatio("single1", "ceiling1"),
      ingest_single_clicks_per_flush: flushes ? Math.round((singleClicks / flushes) * 10) / 10 : null,
      ingest_single_flushes_per_s: flushes ? Math.round(flushes / (loadS * rounds)) : null,
      // CPU ms per 1000 single-click beacons: ingest processes, their PostgreSQL backends, and a no-op server per request.
      ingest_cpu_ms_per_1k: perK(single.cpuMs, singleClicks),
      pg_cpu_ms_per_1k: perK(single.pgCpuMs, singleClicks),
      noop_cpu_ms_per_1k: perK(ceiling.cpuMs, ceiling.requests),
      noop_raw_cpu_ms_per_1k: perK(raw.cpuMs, raw.requests),
      ingest_batch_cps: Math.round(batch.rps * 100),
      ingest_batch_cpu_ms_per_1k: perK(batch.cpuMs, stored - c2),
      pg_batch_cpu_ms_per_1k: perK(batch.pgCpuMs, stored - c2),
      pg_ceiling_cps: Math.round(pgCeiling),
      ingest_batch_ratio: ratio(batch.rps * 100, pgCeiling),
      ingest_http_rss_mib: Math.max(...rss.map((r) => r ?? 0)),
    };
    console.log(`\ndurable beacon ingest (single-click loads: ${rounds} round(s) of ${loadS}s each, medians, ratios of each round's pair; batch and COPY ${durationS}s; ${procs} ingest process(es) with PIPELINE_ROLES="", and as many no-op servers, load spread over their ports):`);
    if (ceiling1 && single1) {
      console.log(`  no-op Hono endpoint, 1 process, 256 conns      ${out.http_ceiling_1proc_rps} req/s (p99 ${ceiling1.p99} ms)`);
      console.log(`  ingest, 1 process, single-click beacons        ${out.ingest_single_1proc_cps} clicks/s (p99 ${single1.p99} ms, non-2xx ${single1.non2xx})  ratio ${out.ingest_single_1proc_ratio}`);
    }
    console.log(`  no-op Hono endpoint, ${procs} processes, 256 conns    ${out.http_ceiling_rps} req/s (p99 ${ceiling.p99} ms)`);
    console.log(`  no-op, body read from Node's request, ${procs} procs  ${out.http_ceiling_raw_rps} req/s (p99 ${raw.p99} ms)`);
    console.log(`  ingest, ${procs} processes, single-click beacons      ${out.ingest_single_cps} clicks/s (p50 ${single.p50} ms, p99 ${single.p99} ms, non-2xx ${single.non2xx})  ratio ${out.ingest_single_ratio} (to the raw-body no-op: ${out.ingest_single_raw_ratio})`);
    console.log(`    PostgreSQL: ${out.ingest_single_flushes_per_s} transactions/s, ${out.ingest_single_clicks_per_flush} clicks per flush`);
    console.log(`    CPU per 1000 clicks: ingest ${out.ingest_cpu_ms_per_1k} ms, PostgreSQL backends ${out.pg_cpu_ms_per_1k} ms (no-op servers: ${out.noop_cpu_ms_per_1k} ms, raw-body ${out.noop_raw_cpu_ms_per_1k} ms per 1000 requests)`);
    console.log(`  ingest, ${procs} processes, 100-click beacons, 32 conns  ${out.ingest_batch_cps} clicks/s (p99 ${batch.p99} ms, non-2xx ${batch.non2xx})`);
    console.log(`    CPU per 1000 clicks: ingest ${out.ingest_batch_cpu_ms_per_1k} ms, PostgreSQL backends ${out.pg_batch_cpu_ms_per_1k} ms`);
    console.log(`  PostgreSQL COPY ceiling (same rows)            ${out.pg_ceiling_cps} rows/s  ratio ${out.ingest_batch_ratio}`);
    console.log(`  clicks committed by ingest: ${stored}; peak RSS per ingest process: ${rss.join(", ")} MiB`);
    return out;
  } finally {
    await sql.end();
    await Promise.all([...ingests, ...noops].map(stop));
    await admin`DROP DATABASE ${admin(dbName)} WITH (FORCE)`;
    await admin.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchIngest(process.argv.includes("--quick"));
