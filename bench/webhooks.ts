/**
 * `npm run bench:webhooks [-- --quick] [-- --split]`: redirects with a webhook endpoint registered
 * vs without, in the same run. The stack as `npm run bench` runs it (workerd with beacons on, an
 * ingest HTTP process, an ingest pipeline process with the `webhooks` role, kinesalite in its own
 * process, PostgreSQL), plus a webhook receiver on loopback (bench/webhook-sink.ts, its own
 * process; it only counts). `--split`: workerd and the load generator pinned to core 0, the region
 * (ingest, kinesalite, receiver, PostgreSQL) to core 1 (taskset), as an edge and a region are
 * different machines. CPU per redirect of each side is measured from /proc. One link;
 * rounds alternate between its workspace's link.clicked endpoint enabled and disabled (a disabled
 * endpoint gets nothing: no webhook work at all), the order rotating per round. Before each load
 * the previous one's clicks are stored, in ClickHouse and (when enabled) delivered, so no load
 * shares the cores with another's backlog. Prints req/s, latency, the beacon acknowledgement
 * latency (ingest's /v1/clicks histogram) and the with/without ratio (median of the rounds' ratios).
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import postgres from "postgres";
import { startEdge } from "../edge/miniflare.ts";
import { generateKey } from "../ingest/src/auth/keys.ts";
import { freePort, median, startChild } from "./ingest.ts";
import { childPids, cpuMs } from "./proc.ts";

const quick = process.argv.includes("--quick");
const split = process.argv.includes("--split");
const ROUNDS = quick ? 3 : 5;
const LOAD_S = quick ? 2 : 3;
const CONNECTIONS = 32;
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SECRET = "bench-edge-secret-0123456789-abcdef";

const dbName = `linkflow_bench_wh_${process.pid}`;
const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
await admin`CREATE DATABASE ${admin(dbName)}`;
const dbUrl = Object.assign(new URL(DATABASE_URL), { pathname: `/${dbName}` }).toString();
const adminKey = generateKey();
const dataDir = await mkdtemp(join(tmpdir(), "linkflow-bench-wh-"));
const [httpPort, pipelinePort, edgePort, kinesisPort] = [await freePort(), await freePort(), await freePort(), await freePort()];

const sinkPort = await freePort();
const sink = await startChild(["bench/webhook-sink.ts"], { PORT: String(sinkPort) }, "listening");
const receiverUrl = `http://127.0.0.1:${sinkPort}/hook`;
const receivedClicks = async () => ((await (await fetch(`http://127.0.0.1:${sinkPort}/`)).json()) as { clicks: number }).clicks;

const common = { DATABASE_URL: dbUrl, EDGE_SECRET: SECRET, ADMIN_API_KEY: adminKey, LOG_LEVEL: "warn", DATA_DIR: dataDir, ALLOW_PRIVATE_DESTINATIONS: "true" };
const kinesis = await startChild(["bench/kinesalite-server.ts"], { PORT: String(kinesisPort), KDIR: join(dataDir, "kinesis") }, "listening");
const pipeline = await startChild(
  ["ingest/src/main.ts"],
  { ...common, PORT: String(pipelinePort), EDGE_ADMIN_URL: `http://127.0.0.1:${edgePort}`, KINESIS_ENDPOINT: `http://127.0.0.1:${kinesisPort}`, PIPELINE_ROLES: "forwarder,loader,maintenance,webhooks" },
  "listening",
);
const http = await startChild(["ingest/src/main.ts"], { ...common, PORT: String(httpPort), PIPELINE_ROLES: "", EDGE_ADMIN_URL: "" }, "listening");
const edge = await startEdge({ port: edgePort, vars: { INGEST_URL: `http://127.0.0.1:${httpPort}`, EDGE_SECRET: SECRET } });
const pg = postgres(dbUrl, { max: 1, onnotice: () => {} });
const auth = { Authorization: `Bearer ${adminKey}`, "content-type": "application/json" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const [workerdPid] = await childPids(process.pid, "workerd");
/** This database's PostgreSQL backends (ingest's connections), and with `server` the server's own processes (WAL writer…). */
const pgPids = async (server = false) =>
  (await pg<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE (datname = current_database() ${server ? pg`OR backend_type <> 'client backend'` : pg``}) AND pid <> pg_backend_pid()`).map((r) => r.pid);
const pin = (pid: number, cpus: string) => {
  try {
    execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};
const region = async () => [http.pid!, pipeline.pid!, kinesis.pid!, sink.pid!, ...(await pgPids(true))];
const pinned = split && [pin(process.pid, "0"), workerdPid ? pin(workerdPid, "0") : false, ...[http, pipeline, kinesis, sink].map((p) => pin(p.pid!, "1"))].every(Boolean);
if (split && !pinned) console.log("(taskset unavailable or not permitted: not split)");
/**
 * CPU ms of the edge side (workerd), the region (ingest HTTP, pipeline, kinesalite, this
 * database's backends) and the receiver (the customer's machine, deployed: not the region's)
 * while `work` runs.
 */
async function cpuDuring<T>(work: () => Promise<T>): Promise<{ result: T; edgeMs: number; regionMs: number; receiverMs: number }> {
  const regionPids = [http.pid!, pipeline.pid!, kinesis.pid!, ...(await pgPids())];
  const snap = async (pids: number[]) => Promise.all(pids.map((p) => cpuMs(p).catch(() => 0)));
  const all = async () => [await snap(workerdPid ? [workerdPid] : []), await snap(regionPids), await snap([sink.pid!])];
  const before = await all();
  const result = await work();
  const after = await all();
  const sum = (i: number) => after[i]!.reduce((t, x, j) => t + x - (before[i]![j] ?? 0), 0);
  return { result, edgeMs: sum(0), regionMs: sum(1), receiverMs: sum(2) };
}

/** Sum and count of ingest's /v1/clicks latency histogram (beacon acknowledgements). */
async function beaconHist(): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const get = (suffix: string) =>
    [...text.matchAll(new RegExp(`^linkflow_http_request_duration_seconds_${suffix}\\{[^}]*route="/v1/clicks"[^}]*\\} ([0-9.e+-]+)`, "gm"))].reduce((t, m) => t + Number(m[1]), 0);
  return { sum: get("sum"), count: get("count") };
}

try {
  const link = (await (await fetch(`http://127.0.0.1:${pipelinePort}/api/links`, { method: "POST", headers: auth, body: JSON.stringify({ url: "https://example.com/bench" }) })).json()) as { code: string };
  const ep = (await (await fetch(`http://127.0.0.1:${pipelinePort}/api/webhooks`, { method: "POST", headers: auth, body: JSON.stringify({ url: receiverUrl, events: ["link.clicked"] }) })).json()) as { id: number };
  const target = `${edge.url}/${link.code}`;
  await fetch(target, { redirect: "manual" });
  const setEnabled = (enabled: boolean) => fetch(`http://127.0.0.1:${pipelinePort}/api/webhooks/${ep.id}`, { method: "PATCH", headers: auth, body: JSON.stringify({ enabled }) });
  const count = async (q: string) => Number((await pg.unsafe(q))[0]!.n);
  /** Every click stored so far is in ClickHouse (so handed to webhooks too), and no webhook message is waiting. */
  async function quiet(expectedClicks: number) {
    for (const until = Date.now() + 90_000; Date.now() < until; await sleep(250)) {
      const p = (await (await fetch(`http://127.0.0.1:${pipelinePort}/api/pipeline`, { headers: auth })).json()) as { postgres_clicks: number; clickhouse_clicks: number };
      const waiting = await count(`SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'`);
      if (p.postgres_clicks >= expectedClicks && p.clickhouse_clicks === p.postgres_clicks && waiting === 0) return;
    }
    throw new Error("the pipeline did not drain within 90 s");
  }

  type Kind = "with" | "without";
  const runs: Record<Kind, { rps: number; p50: number; p99: number; non3xx: number; ackMs: number; edgeUs: number; regionUs: number; receiverUs: number }[]> = { with: [], without: [] };
  let redirects = 0;
  let clicksWith = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of round % 2 ? (["without", "with"] as Kind[]) : (["with", "without"] as Kind[])) {
      await setEnabled(kind === "with");
      if (pinned) for (const p of await pgPids(true)) pin(p, "1");
      const before = await beaconHist();
      // The load, and the region's work for its clicks (beacons, pipeline, webhooks) until it is quiet again.
      const { result: r, edgeMs, regionMs, receiverMs } = await cpuDuring(async () => {
        const out = await autocannon({ url: target, connections: CONNECTIONS, duration: LOAD_S, headers: { "user-agent": "bench" } });
        await sleep(2_000); // the clicks the worker is still delivering
        await quiet(0);
        return out;
      });
      const done = r["3xx"] ?? 0;
      redirects += done;
      const after = await beaconHist();
      if (kind === "with") clicksWith += done;
      runs[kind].push({ rps: r.requests.total / (r.duration || 1), p50: r.latency.p50, p99: r.latency.p99, non3xx: r.requests.total - done, ackMs: ((after.sum - before.sum) / Math.max(1, after.count - before.count)) * 1000, edgeUs: (edgeMs / Math.max(1, done)) * 1000, regionUs: (regionMs / Math.max(1, done)) * 1000, receiverUs: (receiverMs / Math.max(1, done)) * 1000 });
    }
  }
  const mid = (k: Kind, f: "rps" | "p50" | "p99" | "ackMs" | "edgeUs" | "regionUs" | "receiverUs") => median(runs[k].map((x) => x[f]));
  const ratio = median(runs.with.map((w, i) => w.rps / runs.without[i]!.rps));
  console.log(`redirects, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${LOAD_S} s each, beacons on (workerd → ingest HTTP → PostgreSQL; pipeline process with the webhooks role); ${pinned ? "split: edge on core 0, region on core 1" : "all on the same cores"}`);
  console.log(`${"".padEnd(36)} ${"req/s".padStart(8)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"beacon ack ms".padStart(14)} ${"CPU µs/redirect edge".padStart(21)} ${"region".padStart(7)} ${"receiver".padStart(9)}   req/s per round`);
  for (const [name, k] of [["webhook endpoint (link.clicked)", "with"], ["no webhook endpoint", "without"]] as const)
    console.log(`${name.padEnd(36)} ${mid(k, "rps").toFixed(0).padStart(8)} ${String(mid(k, "p50")).padStart(7)} ${String(mid(k, "p99")).padStart(7)} ${mid(k, "ackMs").toFixed(2).padStart(14)} ${mid(k, "edgeUs").toFixed(0).padStart(21)} ${mid(k, "regionUs").toFixed(0).padStart(7)} ${mid(k, "receiverUs").toFixed(0).padStart(9)}   (${runs[k].map((x) => x.rps.toFixed(0)).join(", ")})`);
  console.log(`ratio with/without (median of the rounds' ratios): ${ratio.toFixed(3)}; non-3xx: ${[...runs.with, ...runs.without].reduce((t, x) => t + x.non3xx, 0)}`);
  const stored = await count("SELECT count(*) AS n FROM clicks");
  const queued = await count(`SELECT coalesce(sum(jsonb_array_length(payload->'data'->'clicks')), 0) AS n FROM webhook_deliveries WHERE event_type = 'link.clicked'`);
  // Clicks exceed the redirects counted by up to one request per connection a load (answered after autocannon stopped counting) plus the warm-up.
  // Merged into latest.json under webhooks_<split|shared>_* (one run of each kind kept).
  const file = new URL("results/latest.json", import.meta.url);
  const prev = JSON.parse(await readFile(file, "utf8").catch(() => "{}")) as Record<string, unknown>;
  const tag = `webhooks_${pinned ? "split" : "shared"}`;
  await writeFile(file, JSON.stringify({
    ...prev,
    [`${tag}_ratio`]: Number(ratio.toFixed(3)),
    ...Object.fromEntries((["with", "without"] as Kind[]).flatMap((k) => (["rps", "p50", "p99", "ackMs", "edgeUs", "regionUs", "receiverUs"] as const).map((f) => [`${tag}_${k}_${f}`, Number(mid(k, f).toFixed(2))]))),
  }, null, 2) + "\n");
  console.log(`clicks stored ${stored} for ${redirects} redirects counted (+ up to ${CONNECTIONS} in flight at each load's end, + 1 warm-up); queued for the webhook ${queued}, received by it ${await receivedClicks()} (the enabled rounds' counted redirects: ${clicksWith})`);
} finally {
  await edge.close();
  if (pinned) for (const p of [process.pid, workerdPid, ...(await region())]) if (p) pin(p, "0-1");
  for (const p of [http, pipeline, kinesis, sink]) {
    p.kill("SIGTERM");
    await new Promise((r) => p.once("exit", r));
  }
  await pg.end();
  await rm(dataDir, { recursive: true, force: true });
  await admin`DROP DATABASE ${admin(dbName)} WITH (FORCE)`;
  await admin.end();
}
