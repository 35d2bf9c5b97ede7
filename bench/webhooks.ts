/**
 * `npx tsx bench/webhooks.ts [--quick]`: redirects with a webhook endpoint registered vs without,
 * in the same run. The stack as `npm run bench` runs it (workerd with beacons on, an ingest HTTP
 * process, an ingest pipeline process with the `webhooks` role, kinesalite in its own process,
 * PostgreSQL), plus a webhook receiver on loopback (in this process; it only counts). One link;
 * rounds alternate between its workspace's link.clicked endpoint enabled and disabled (a disabled
 * endpoint gets nothing: no webhook work at all), the order rotating per round. Before each load
 * the previous one's clicks are stored, in ClickHouse and (when enabled) delivered, so no load
 * shares the cores with another's backlog. Prints req/s, latency, the beacon acknowledgement
 * latency (ingest's /v1/clicks histogram) and the with/without ratio (median of the rounds' ratios).
 */
import { createServer } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import postgres from "postgres";
import { startEdge } from "../edge/miniflare.ts";
import { generateKey } from "../ingest/src/auth/keys.ts";
import { freePort, median, startChild } from "./ingest.ts";

const quick = process.argv.includes("--quick");
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

// The receiver: answers 204, counts the clicks of each link.clicked message.
let receivedClicks = 0;
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const m = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { type: string; data: { clicks?: unknown[] } };
    if (m.type === "link.clicked") receivedClicks += m.data.clicks?.length ?? 0;
    res.writeHead(204).end();
  });
});
await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;

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
  /** Every click stored so far is in ClickHouse, and no webhook message or queued click is waiting. */
  async function quiet(expectedClicks: number) {
    for (const until = Date.now() + 90_000; Date.now() < until; await sleep(250)) {
      const p = (await (await fetch(`http://127.0.0.1:${pipelinePort}/api/pipeline`, { headers: auth })).json()) as { postgres_clicks: number; clickhouse_clicks: number };
      const waiting = await count(`SELECT (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending') + (SELECT count(*) FROM webhook_clicks WHERE delivery_id IS NULL) AS n`);
      if (p.postgres_clicks >= expectedClicks && p.clickhouse_clicks === p.postgres_clicks && waiting === 0) return;
    }
    throw new Error("the pipeline did not drain within 90 s");
  }

  type Kind = "with" | "without";
  const runs: Record<Kind, { rps: number; p50: number; p99: number; non3xx: number; ackMs: number }[]> = { with: [], without: [] };
  let redirects = 0;
  let clicksWith = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of round % 2 ? (["without", "with"] as Kind[]) : (["with", "without"] as Kind[])) {
      await setEnabled(kind === "with");
      const before = await beaconHist();
      const r = await autocannon({ url: target, connections: CONNECTIONS, duration: LOAD_S, headers: { "user-agent": "bench" } });
      const done = r["3xx"] ?? 0;
      redirects += done;
      // The clicks the worker is still delivering, then the pipeline (and webhooks) catch up.
      await sleep(2_000);
      await quiet(0);
      const after = await beaconHist();
      if (kind === "with") clicksWith += done;
      runs[kind].push({ rps: r.requests.total / (r.duration || 1), p50: r.latency.p50, p99: r.latency.p99, non3xx: r.requests.total - done, ackMs: ((after.sum - before.sum) / Math.max(1, after.count - before.count)) * 1000 });
    }
  }
  const mid = (k: Kind, f: "rps" | "p50" | "p99" | "ackMs") => median(runs[k].map((x) => x[f]));
  const ratio = median(runs.with.map((w, i) => w.rps / runs.without[i]!.rps));
  console.log(`redirects, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${LOAD_S} s each, beacons on (workerd → ingest HTTP → PostgreSQL; pipeline process with the webhooks role)`);
  console.log(`${"".padEnd(36)} ${"req/s".padStart(8)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"beacon ack ms (mean)".padStart(21)}   req/s per round`);
  for (const [name, k] of [["webhook endpoint (link.clicked)", "with"], ["no webhook endpoint", "without"]] as const)
    console.log(`${name.padEnd(36)} ${mid(k, "rps").toFixed(0).padStart(8)} ${String(mid(k, "p50")).padStart(7)} ${String(mid(k, "p99")).padStart(7)} ${mid(k, "ackMs").toFixed(2).padStart(21)}   (${runs[k].map((x) => x.rps.toFixed(0)).join(", ")})`);
  console.log(`ratio with/without (median of the rounds' ratios): ${ratio.toFixed(3)}; non-3xx: ${[...runs.with, ...runs.without].reduce((t, x) => t + x.non3xx, 0)}`);
  const stored = await count("SELECT count(*) AS n FROM clicks");
  const queued = await count(`SELECT count(*) AS n FROM webhook_clicks`);
  // Clicks exceed the redirects counted by up to one request per connection a load (answered after autocannon stopped counting) plus the warm-up.
  console.log(`clicks stored ${stored} for ${redirects} redirects counted (+ up to ${CONNECTIONS} in flight at each load's end, + 1 warm-up); queued for the webhook ${queued}, received by it ${receivedClicks} (the enabled rounds' counted redirects: ${clicksWith})`);
} finally {
  await edge.close();
  for (const p of [http, pipeline, kinesis]) {
    p.kill("SIGTERM");
    await new Promise((r) => p.once("exit", r));
  }
  await pg.end();
  receiver.close();
  await rm(dataDir, { recursive: true, force: true });
  await admin`DROP DATABASE ${admin(dbName)} WITH (FORCE)`;
  await admin.end();
}
