/**
 * `npm run soak [-- --minutes N]` (not in CI; issue 18 item 5): steady mixed load against
 * `npm start`'s stack (PGlite, chDB, kinesalite, workerd, in a fresh data folder) for N minutes
 * (default 30), sampled every 10 s. Passes when
 *
 *  - memory is flat after warm-up: the least-squares slope of each process's RSS over the samples
 *    after the warm-up (the first 20% of the run, at least 1 min) is below --max-slope (MiB/min,
 *    default 2): the slope of each minute's lowest RSS (the post-GC floor), so at least two
 *    minutes after the warm-up are needed for a figure,
 *  - the loader lag p99 (GET /api/pipeline loader_lag, PostgreSQL commit → ClickHouse, last 5 min)
 *    stays below 2 s in every sample,
 *  - no click is lost: every redirect served (302) is one click in PostgreSQL and in ClickHouse,
 *    and the completeness check reports 0 missing.
 *
 * Load: redirects (with their beacons) at --rate per second over a few links, one API write (a
 * new link) every 2 s, one stats read every 2 s. Samples: RSS and open file descriptors of every
 * process of the stack (and threads), the JS heap of each worker in workerd (V8 inspector),
 * outbox backlog, clicks in PostgreSQL and ClickHouse, lag p99, errors. Writes bench/results/soak-<time>.json
 * (the last run, with every sample) and prints a summary; exit 0 on pass, 1 on fail.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, readlink, rm, writeFile, mkdir } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { Command } from "commander";
import postgres from "postgres";
import WebSocket from "ws";

const program = new Command()
  .name("soak")
  .option("--minutes <n>", "how long to run", "30")
  .option("--rate <n>", "redirects per second", "40")
  .option("--max-slope <mib>", "largest RSS growth per process after warm-up, MiB per minute", "2")
  .option("--sample-s <n>", "seconds between samples", "10")
  .parse();
const opts = program.opts<{ minutes: string; rate: string; maxSlope: string; sampleS: string }>();
const MINUTES = Number(opts.minutes);
const RATE = Number(opts.rate);
const MAX_SLOPE = Number(opts.maxSlope);
const SAMPLE_MS = Number(opts.sampleS) * 1000;
const LAG_P99_LIMIT_MS = 2000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });

// ---- the stack -------------------------------------------------------------------------------
const dataDir = await mkdtemp(join(tmpdir(), "linkflow-soak-"));
const ports = { edge: await freePort(), ingest: await freePort(), inspector: await freePort() };
const env: NodeJS.ProcessEnv = {
  ...process.env,
  DATA_DIR: dataDir,
  PORT: String(ports.ingest),
  EDGE_PORT: String(ports.edge),
  EDGE_INSPECTOR_PORT: String(ports.inspector),
  LOG_LEVEL: "warn",
  CLICKS_MISSING_WINDOW_MS: "10000",
};
for (const k of ["DATABASE_URL", "ADMIN_API_KEY", "EDGE_SECRET", "SHORT_BASE_URL", "EDGE_ADMIN_URL", "CLICKHOUSE_URL", "KINESIS_ENDPOINT"]) delete env[k];
const stack: ChildProcess = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
let out = "";
stack.stdout!.on("data", (d) => (out += d));
stack.stderr!.on("data", (d) => (out += d));
for (let t = 0; !out.includes("Ctrl-C stops everything"); t += 100) {
  if (stack.exitCode !== null || t > 120_000) throw new Error(`npm start did not come up:\n${out}`);
  await sleep(100);
}
const key = /admin API key\s+(lf_\S+)/.exec(out)![1]!;
const pgUrl = /PostgreSQL\s+(postgres:\/\/\S+)/.exec(out)![1]!;
const ingest = `http://127.0.0.1:${ports.ingest}`;
const edge = `http://127.0.0.1:${ports.edge}`;
const headers = { Authorization: `Bearer ${key}`, "content-type": "application/json" };
console.log(`soak: ${MINUTES} min, ${RATE} redirects/s, stack pid ${stack.pid}, data ${dataDir}`);

/** Every process of the stack: its process group (npm start's node, workerd, …). */
async function stackProcesses(): Promise<{ pid: number; name: string }[]> {
  const found: { pid: number; name: string }[] = [];
  for (const e of await readdir("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const stat = await readFile(`/proc/${e}/stat`, "utf8").catch(() => "");
    // pid (comm) state ppid pgrp …: comm may hold spaces, so split after its closing parenthesis.
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    if (Number(fields[2]) === stack.pid) found.push({ pid: Number(e), name: stat.slice(stat.indexOf("(") + 1, close) });
  }
  return found;
}
const rssMiB = async (pid: number) => {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, "utf8").catch(() => ""));
  return m ? Number(m[1]) / 1024 : null;
};
/** Threads (chDB's pools grow on demand and keep idle threads; each thread that ran a query holds three /proc descriptors). */
const threadCount = async (pid: number) => {
  const m = /^Threads:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, "utf8").catch(() => ""));
  return m ? Number(m[1]) : null;
};
/**
 * The JS heap of each worker in workerd (ours, and Miniflare's own: KV, cache, queue broker),
 * through the V8 inspector (EDGE_INSPECTOR_PORT): tells a growing isolate heap from native
 * memory when workerd's RSS rises. usedSize in MiB (workerd's inspector cannot force a collection).
 */
async function workerHeaps(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const noAnswer = () => sleep(5000).then(() => Promise.reject(new Error("inspector: no answer")));
  try {
    const targets = (await (await fetch(`http://127.0.0.1:${ports.inspector}/json`, { signal: AbortSignal.timeout(5000) })).json()) as { title: string; webSocketDebuggerUrl: string }[];
    for (const t of targets) {
      const ws = new WebSocket(t.webSocketDebuggerUrl);
      try {
        await Promise.race([once(ws, "open"), noAnswer()]);
        const reply = once(ws, "message");
        ws.send(JSON.stringify({ id: 1, method: "Runtime.getHeapUsage" }));
        const [data] = await Promise.race([reply, noAnswer()]);
        const used = (JSON.parse(String(data)) as { result?: { usedSize: number } }).result?.usedSize;
        if (used !== undefined) out[t.title.replace(/^workerd: worker /, "")] = Math.round((used / 2 ** 20) * 10) / 10;
      } finally {
        ws.close();
      }
    }
  } catch {
    // no inspector: RSS only
  }
  return out;
}
const openFds = async (pid: number) => (await readdir(`/proc/${pid}/fd`).catch(() => [])).length;
/** Open descriptors by kind: sockets, pipes, files of each data subfolder (pglite, chdb, kinesis, kv), other. */
const fdKinds = async (pid: number) => {
  const kinds: Record<string, number> = {};
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    const kind = target.startsWith("socket:")
      ? "socket"
      : target.startsWith("pipe:")
        ? "pipe"
        : target.startsWith(dataDir)
          ? `data/${target.slice(dataDir.length + 1).split("/")[0]}`
          : target.startsWith("anon_inode:")
            ? target
            : "other";
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
};

// ---- the load --------------------------------------------------------------------------------
const errors = { redirect: 0, redirectNetwork: 0, apiWrite: 0, statsRead: 0, pipeline: 0 };
let served = 0;
let writes = 0;
let reads = 0;
const codes: string[] = [];
const linkIds: number[] = [];
for (let i = 0; i < 4; i++) {
  const res = await fetch(`${ingest}/api/links`, { method: "POST", headers, body: JSON.stringify({ url: `https://example.com/soak/${i}`, slug: `soak${i}` }) });
  if (res.status !== 201) throw new Error(`creating a link: ${res.status} ${await res.text()}`);
  const l = (await res.json()) as { id: number; code: string };
  codes.push(l.code);
  linkIds.push(l.id);
}
let stopping = false;
const inflight = new Set<Promise<void>>();
let tick = 0;
const MAX_IN_FLIGHT = 64;
const redirects = setInterval(() => {
  // RATE per second in 50 ms slots.
  const n = Math.floor(((tick + 1) * RATE) / 20) - Math.floor((tick * RATE) / 20);
  tick++;
  for (let i = 0; i < n && inflight.size < MAX_IN_FLIGHT; i++) {
    const code = codes[(tick + i) % codes.length]!;
    const p = fetch(`${edge}/${code}`, { redirect: "manual", signal: AbortSignal.timeout(10_000), headers: { "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 linkflow-soak" } })
      .then(async (r) => {
        await r.arrayBuffer();
        if (r.status === 302) served++;
        else errors.redirect++;
      })
      .catch(() => void errors.redirectNetwork++);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }
}, 50);
const api = setInterval(() => {
  if (stopping) return;
  void fetch(`${ingest}/api/links`, { method: "POST", headers, body: JSON.stringify({ url: `https://example.com/soak/w${writes}` }), signal: AbortSignal.timeout(10_000) })
    .then(async (r) => (await r.arrayBuffer(), r.status === 201 ? writes++ : errors.apiWrite++))
    .catch(() => void errors.apiWrite++);
  const link = linkIds[reads % linkIds.length];
  void fetch(`${ingest}/api/stats?link=${link}&interval=minute&group_by=country`, { headers, signal: AbortSignal.timeout(10_000) })
    .then(async (r) => (await r.arrayBuffer(), r.status === 200 ? reads++ : errors.statsRead++))
    .catch(() => void errors.statsRead++);
}, 2000);

// ---- sampling --------------------------------------------------------------------------------
interface Sample {
  t_s: number;
  processes: { pid: number; name: string; rss_mib: number | null; threads: number | null; fds: number; fd_kinds: Record<string, number> }[];
  /** JS heap per worker in workerd, MiB. */
  worker_heaps_mib: Record<string, number>;
  outbox_backlog: number | null;
  lag_p99_ms: number | null;
  clicks_missing: number | null;
  /** Clicks in PostgreSQL, and as ClickHouse's stats path counts them: a gap is the pipeline's lag, or a loss if it stays. */
  postgres_clicks: number | null;
  clickhouse_clicks: number | null;
  served: number;
  errors: typeof errors;
}
interface Pipeline {
  postgres_clicks: number;
  clickhouse_clicks: number | null;
  outbox_backlog: number;
  dlq: number;
  clicks_missing: number;
  loader_lag: { p99_ms: number } | null;
}
const samples: Sample[] = [];
const t0 = Date.now();
async function sample() {
  const processes = await Promise.all((await stackProcesses()).map(async (p) => ({ ...p, rss_mib: await rssMiB(p.pid), threads: await threadCount(p.pid), fds: await openFds(p.pid), fd_kinds: await fdKinds(p.pid) })));
  let pipe: Pipeline | null = null;
  try {
    pipe = (await (await fetch(`${ingest}/api/pipeline`, { headers, signal: AbortSignal.timeout(10_000) })).json()) as Pipeline;
  } catch {
    errors.pipeline++;
  }
  const s: Sample = {
    t_s: Math.round((Date.now() - t0) / 1000),
    processes,
    worker_heaps_mib: await workerHeaps(),
    outbox_backlog: pipe?.outbox_backlog ?? null,
    lag_p99_ms: pipe?.loader_lag?.p99_ms ?? null,
    clicks_missing: pipe?.clicks_missing ?? null,
    postgres_clicks: pipe?.postgres_clicks ?? null,
    clickhouse_clicks: pipe?.clickhouse_clicks ?? null,
    served,
    errors: { ...errors },
  };
  samples.push(s);
  console.log(
    `t=${String(s.t_s).padStart(5)}s rss ${processes.map((p) => `${p.name}:${p.rss_mib?.toFixed(0)}M/${p.fds}fd`).join(" ")} worker heaps ${Object.values(s.worker_heaps_mib).reduce((a, b) => a + b, 0).toFixed(1)}M backlog ${s.outbox_backlog} pg/ch ${s.postgres_clicks}/${s.clickhouse_clicks} lag p99 ${s.lag_p99_ms} ms served ${served} errors ${JSON.stringify(errors)}`,
  );
}
await sample();
const end = t0 + MINUTES * 60_000;
while (Date.now() < end) {
  await sleep(Math.min(SAMPLE_MS, end - Date.now()));
  await sample();
}

// ---- verdict ---------------------------------------------------------------------------------
stopping = true;
clearInterval(redirects);
clearInterval(api);
while (inflight.size) await Promise.all([...inflight]);
// Every served redirect's click in PostgreSQL (the worker's beacons go out after the response)…
const pg = postgres(pgUrl, { max: 1, onnotice: () => {} });
const storedClicks = async () => Number((await pg.unsafe(`SELECT count(*) AS n FROM clicks WHERE link_id IN (${linkIds.map(Number).join(",")})`).simple())[0]!.n);
let stored = 0;
for (let t = 0; t < 120_000; t += 1000) {
  stored = await storedClicks();
  if (stored >= served) break;
  await sleep(1000);
}
// …and in ClickHouse; the completeness check after its window.
let final: Pipeline | null = null;
for (let t = 0; t < 180_000; t += 1000) {
  final = (await (await fetch(`${ingest}/api/pipeline`, { headers })).json()) as Pipeline;
  if (final!.outbox_backlog === 0 && final!.clickhouse_clicks === final!.postgres_clicks) break;
  await sleep(1000);
}
await sleep(11_000);
final = (await (await fetch(`${ingest}/api/pipeline`, { headers })).json()) as Pipeline;
await pg.end();

/** Least-squares slope of y over x. */
const slope = (pts: [number, number][]) => {
  const n = pts.length;
  if (n < 2) return 0;
  const mx = pts.reduce((a, [x]) => a + x, 0) / n;
  const my = pts.reduce((a, [, y]) => a + y, 0) / n;
  const num = pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const den = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return den ? num / den : 0;
};
const warmupS = Math.max(60, MINUTES * 60 * 0.2);
const after = samples.filter((s) => s.t_s >= warmupS);
const names = [...new Set(samples.flatMap((s) => s.processes.map((p) => `${p.name}#${p.pid}`)))];
/**
 * Per process: the slope of its post-GC floor, the lowest RSS of each minute after the warm-up
 * (a garbage-collected heap saws up and down between samples; a leak lifts the floor).
 */
const memory = names.map((id) => {
  const pid = Number(id.split("#")[1]);
  const rss = (s: Sample) => s.processes.find((p) => p.pid === pid)?.rss_mib ?? null;
  const floors = new Map<number, number>();
  for (const s of after) {
    const v = rss(s);
    const minute = Math.floor(s.t_s / 60);
    if (v !== null) floors.set(minute, Math.min(v, floors.get(minute) ?? Infinity));
  }
  const all = samples.map(rss).filter((v): v is number => v !== null);
  const fds = samples.flatMap((s) => s.processes.filter((p) => p.pid === pid).map((p) => p.fds));
  return {
    process: id,
    rss_first_mib: Math.round(all[0] ?? 0),
    rss_last_mib: Math.round(all.at(-1) ?? 0),
    rss_max_mib: Math.round(Math.max(...all)),
    floor_by_minute_mib: [...floors.values()].map(Math.round),
    slope_mib_per_min: Math.round(slope([...floors].map(([m, v]) => [m + 0.5, v])) * 100) / 100,
    fds_first: fds[0],
    fds_last: fds.at(-1),
    fds_max: Math.max(...fds),
    fd_kinds_last: samples.at(-1)?.processes.find((p) => p.pid === pid)?.fd_kinds,
  };
});
/** The workers' JS heaps (diagnostic, not a check): per worker, the same per-minute floors and slope. */
const heapSummary = [...new Set(samples.flatMap((s) => Object.keys(s.worker_heaps_mib)))].map((worker) => {
  const floors = new Map<number, number>();
  for (const s of after) {
    const v = s.worker_heaps_mib[worker];
    const minute = Math.floor(s.t_s / 60);
    if (v !== undefined) floors.set(minute, Math.min(v, floors.get(minute) ?? Infinity));
  }
  const all = samples.map((s) => s.worker_heaps_mib[worker]).filter((v): v is number => v !== undefined);
  return { worker, heap_first_mib: all[0], heap_last_mib: all.at(-1), heap_max_mib: Math.max(...all), slope_mib_per_min: Math.round(slope([...floors].map(([m, v]) => [m + 0.5, v])) * 1000) / 1000 };
});
const lagMax = Math.max(0, ...samples.map((s) => s.lag_p99_ms ?? 0));
const lost = Math.max(0, served - stored) + Math.max(0, (final?.postgres_clicks ?? 0) - (final?.clickhouse_clicks ?? 0));
const checks = {
  memory_flat: memory.every((m) => m.slope_mib_per_min < MAX_SLOPE),
  lag_p99_below_2s: lagMax < LAG_P99_LIMIT_MS,
  no_click_lost: lost === 0 && stored === served && final?.clicks_missing === 0,
};
const pass = Object.values(checks).every(Boolean);
const result = {
  at: new Date().toISOString(),
  minutes: MINUTES,
  rate_per_s: RATE,
  warmup_s: warmupS,
  max_slope_mib_per_min: MAX_SLOPE,
  served,
  stored_postgres: stored,
  pipeline: final,
  api_writes: writes,
  stats_reads: reads,
  errors,
  lag_p99_max_ms: lagMax,
  memory,
  worker_heaps: heapSummary,
  checks,
  pass,
  samples,
};
await mkdir("bench/results", { recursive: true });
const file = "bench/results/soak.json";
await writeFile(file, JSON.stringify(result, null, 1));
console.log(`\nsoak ${pass ? "PASSED" : "FAILED"} (${file})`);
console.log(JSON.stringify({ served, stored_postgres: stored, pipeline: final, api_writes: writes, stats_reads: reads, errors, lag_p99_max_ms: lagMax, checks }, null, 1));
console.table(memory);
console.table(heapSummary);

stack.kill("SIGINT");
for (let t = 0; stack.exitCode === null && t < 30_000; t += 100) await sleep(100);
if (stack.exitCode === null) process.kill(-stack.pid!, "SIGKILL");
// A failed run keeps its data folder (PGlite, chDB, kinesalite) for a look at what went wrong.
if (pass) await rm(dataDir, { recursive: true, force: true });
else console.log(`data kept for inspection: ${dataDir}`);
process.exit(pass ? 0 : 1);
