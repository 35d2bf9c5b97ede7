/**
 * Durable beacon ingest, side by side in one run (part of `npm run bench`; alone:
 * `tsx bench/ingest.ts [--quick]`):
 *  - single-click beacons, 256 connections, each 202 only after its PostgreSQL commit (group
 *    commit), vs the same-run ceiling of a no-op Hono/Node endpoint parsing the same JSON;
 *  - batched beacons (100 clicks a request) vs the same-run ceiling of the same PostgreSQL:
 *    COPY of the same rows from this process.
 * Ingest runs as its own process with PIPELINE_ROLES="" (the durable write path only; the
 * pipeline workers run in other processes at scale). Prints a table, returns the figures.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import autocannon from "autocannon";
import postgres from "postgres";

const SECRET = "bench-edge-secret-0123456789";
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });

async function startChild(args: string[], env: Record<string, string>, ready: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ["--import", "tsx", ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on("data", (d: Buffer) => d.toString().includes(ready) && resolve());
    proc.on("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}`)));
  });
  return proc;
}
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
const signed = (body: string) => `t=${Math.floor(Date.now() / 1000)},v1=${createHmac("sha256", SECRET).update(`${Math.floor(Date.now() / 1000)}.${body}`).digest("hex")}`;

/** autocannon POSTing fresh signed beacons of `perRequest` clicks; returns requests/s with 202. */
async function beaconLoad(url: string, perRequest: number, connections: number, durationS: number) {
  const r = await autocannon({
    url: `${url}/v1/clicks`,
    connections,
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
  });
  const ok = r["2xx"] ?? 0;
  return { rps: ok / durationS, non2xx: r.non2xx, p50: r.latency.p50, p99: r.latency.p99 };
}

/** COPY of click rows (as ingest writes them) into a same-shape table, for `durationS`. */
async function copyCeiling(sql: postgres.Sql, durationS: number, perChunk = 1000): Promise<number> {
  await sql`CREATE TABLE copy_ceiling (LIKE clicks INCLUDING DEFAULTS)`;
  const until = Date.now() + durationS * 1000;
  let rows = 0;
  const t0 = Date.now();
  while (Date.now() < until) {
    const now = new Date().toISOString();
    const lines: string[] = [];
    for (let i = 0; i < perChunk; i++) {
      const e = event(now);
      lines.push([e.click_id, e.link_id, e.domain, e.code, e.short_url, e.original_url, e.timestamp, e.user_agent, e.ip_address, e.referer, JSON.stringify(e.geo_location), e.redirect_status, e.cache_tier, now].join("\t"));
    }
    const w = await sql`COPY copy_ceiling (click_id, link_id, domain, code, short_url, original_url, ts, user_agent, ip_address, referer, geo_location, redirect_status, cache_tier, received_at) FROM STDIN`.writable();
    await pipeline(Readable.from([lines.join("\n") + "\n"]), w);
    rows += perChunk;
  }
  return rows / ((Date.now() - t0) / 1000);
}

export async function benchIngest(quick: boolean) {
  const durationS = quick ? 3 : 10;
  const dbName = `linkflow_bench_ingest_${process.pid}`;
  const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin`CREATE DATABASE ${admin(dbName)}`;
  const dbUrl = Object.assign(new URL(DATABASE_URL), { pathname: `/${dbName}` }).toString();
  const [ingestPort, noopPort] = [await freePort(), await freePort()];
  const ingest = await startChild(["ingest/src/main.ts"], { DATABASE_URL: dbUrl, PORT: String(ingestPort), EDGE_SECRET: SECRET, ADMIN_API_KEY: "bench-admin-key-0123456789", EDGE_ADMIN_URL: "", LOG_LEVEL: "warn", PIPELINE_ROLES: "" }, "listening");
  const noop = await startChild(["bench/noop-server.ts"], { PORT: String(noopPort) }, "listening");
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
  try {
    const ceiling = await beaconLoad(`http://127.0.0.1:${noopPort}`, 1, 256, durationS);
    const single = await beaconLoad(`http://127.0.0.1:${ingestPort}`, 1, 256, durationS);
    const batch = await beaconLoad(`http://127.0.0.1:${ingestPort}`, 100, 32, durationS);
    const stored = Number((await sql`SELECT count(*) AS n FROM clicks`)[0]!.n);
    const pgCeiling = await copyCeiling(sql, durationS);
    const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
    const out = {
      ingest_single_cps: Math.round(single.rps),
      http_ceiling_rps: Math.round(ceiling.rps),
      ingest_single_ratio: ratio(single.rps, ceiling.rps),
      ingest_batch_cps: Math.round(batch.rps * 100),
      pg_ceiling_cps: Math.round(pgCeiling),
      ingest_batch_ratio: ratio(batch.rps * 100, pgCeiling),
    };
    console.log(`\ndurable beacon ingest (${durationS}s each; ingest and the no-op server in their own processes):`);
    console.log(`  no-op Hono endpoint, 256 conns        ${out.http_ceiling_rps} req/s (p99 ${ceiling.p99} ms)`);
    console.log(`  ingest, single-click beacons          ${out.ingest_single_cps} clicks/s (p99 ${single.p99} ms, non-2xx ${single.non2xx})  ratio ${out.ingest_single_ratio}`);
    console.log(`  ingest, 100-click beacons, 32 conns   ${out.ingest_batch_cps} clicks/s (p99 ${batch.p99} ms, non-2xx ${batch.non2xx})`);
    console.log(`  PostgreSQL COPY ceiling (same rows)   ${out.pg_ceiling_cps} rows/s  ratio ${out.ingest_batch_ratio}`);
    console.log(`  clicks committed by ingest: ${stored}`);
    return out;
  } finally {
    await sql.end();
    await stop(ingest);
    await stop(noop);
    await admin`DROP DATABASE ${admin(dbName)} WITH (FORCE)`;
    await admin.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchIngest(process.argv.includes("--quick"));
