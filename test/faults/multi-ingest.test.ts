import { request as httpRequest, createServer, Agent, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdge, type Edge } from "../../edge/miniflare.ts";
import { deaggregate } from "../../ingest/src/pipeline/aggregate.ts";
import { EDGE_SECRET, json } from "../helpers.ts";
import { createLink } from "./load.ts";
import { metricsText, postgresIds, streamRecords, waitDrained } from "./probes.ts";
import { clickhouseIds, IngestProcess } from "./processes.ts";
import { freePort, scenario, type Scenario } from "./scenario.ts";
import { sleep } from "./util.ts";

/**
 * Scale-out (issue 9): two ingest processes behind a round-robin balancer, the real worker in
 * workerd in front, steady redirect load. Both processes take beacons and both run the
 * forwarder (outbox rows claimed with FOR UPDATE SKIP LOCKED); the loader runs in the first one
 * only (embedded chDB is one folder per process, so one loader keeps ClickHouse in one place).
 * Afterwards: PostgreSQL == ClickHouse == the redirects served, per link; and every record in
 * the Kinesis stream is read back and counted, so a double send shows up as records beyond the
 * distinct clicks — allowed only up to the re-sends the forwarders themselves counted.
 */
const LOAD_MS = 20_000;
const CONNECTIONS = 12;
const LINKS = 4;

/**
 * A round-robin HTTP balancer on loopback: each request (not each connection: workerd keeps
 * connections alive, and a TCP balancer would pin them to one backend) goes to the next target.
 * Counts beacons (POST /v1/clicks) per target.
 */
class RoundRobin {
  targets: string[] = [];
  readonly beacons: number[] = [];
  private next = 0;
  private agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private server: Server = createServer((req, res) => {
    if (!this.targets.length) return void req.socket.destroy();
    const i = this.next++ % this.targets.length;
    if (req.method === "POST" && req.url!.startsWith("/v1/clicks")) this.beacons[i] = (this.beacons[i] ?? 0) + 1;
    const t = new URL(this.targets[i]!);
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent: this.agent }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  url = "";
  async listen(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  close() {
    this.agent.destroy();
    this.server.closeAllConnections();
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Sum of a Prometheus counter's samples (all label sets) in /metrics text. */
const counter = (text: string, name: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith(name + " ") || l.startsWith(name + "{"))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);

/** One world: a scenario (database, kinesalite behind its proxy), the balancer, the worker, two ingests. */
interface World {
  s: Scenario;
  lb: RoundRobin;
  edge: Edge;
  a: IngestProcess;
  b: IngestProcess;
}

async function world(name: string): Promise<World> {
  const s = await scenario(name);
  const lb = await new RoundRobin().listen();
  const edge = await startEdge({ vars: { INGEST_URL: lb.url, EDGE_SECRET, BEACON_BASE_DELAY_MS: "50" } });
  // Both push link changes to the worker's KV (write-through), as deployed ingests do.
  const common = { EDGE_ADMIN_URL: edge.url };
  const a = new IngestProcess(s, { env: { ...common, PIPELINE_ROLES: "forwarder,loader" } });
  const b = new IngestProcess(s, { port: await freePort(), dataDir: join(s.dataDir, "b"), env: { ...common, PIPELINE_ROLES: "forwarder" } });
  // One after the other: the first runs the migrations and creates the stream.
  await a.start();
  await b.start();
  lb.targets = [a.url, b.url];
  return { s, lb, edge, a, b };
}

async function closeWorld(w: Partial<World>) {
  for (const p of [w.a, w.b]) await p?.kill("SIGKILL").catch(() => {});
  await w.edge?.close();
  await w.lb?.close();
  await w.s?.close();
}

/** Every click in the stream, read back from the start of every shard (`records`: clicks read, repeats included). */
async function readStream(s: Scenario): Promise<{ records: number; ids: Map<string, number> }> {
  const ids = new Map<string, number>();
  let records = 0;
  for (const shard of (await streamRecords(s)).values())
    // Clicks, not records: an aggregated record holds many (ingest/src/pipeline/aggregate.ts).
    for (const rec of shard)
      for (const part of deaggregate(rec.Data!) ?? [Buffer.from(rec.Data!)]) {
        records++;
        const id = (JSON.parse(part.toString("utf8")) as { click_id: string }).click_id;
        ids.set(id, (ids.get(id) ?? 0) + 1);
      }
  return { records, ids };
}

/**
 * Seeds LINKS links, runs the redirect load (with `fault` alongside it), waits for the drain and
 * checks everything this file promises; returns the Kinesis and forwarder figures.
 */
async function redirectsThroughTwoIngests(w: World, label: string, fault?: (until: number) => Promise<void>) {
  const { s, lb, edge, a, b } = w;
  const headers = json(s.adminKey);
  const links: { id: number; code: string }[] = [];
  for (let i = 0; i < LINKS; i++) links.push(await createLink(a.url, s, { url: `https://example.com/multi/${i}`, slug: `multi${i}` }));

  // Steady load: CONNECTIONS loops, each waiting for its answer, spread over the links.
  const served = new Map<string, number>(links.map((l) => [l.code, 0]));
  const other: string[] = [];
  const stopAt = Date.now() + LOAD_MS;
  let n = 0;
  await Promise.all([
    ...Array.from({ length: CONNECTIONS }, async () => {
      while (Date.now() < stopAt) {
        const code = links[n++ % LINKS]!.code;
        try {
          const res = await fetch(`${edge.url}/${code}`, { redirect: "manual" });
          await res.arrayBuffer();
          if (res.status === 302) served.set(code, served.get(code)! + 1);
          else other.push(`${code}: ${res.status}`);
        } catch (err) {
          other.push(`${code}: ${String(err)}`);
        }
      }
    }),
    fault?.(stopAt),
  ]);
  // An error after the worker answered could still be a click: the counts would be ambiguous.
  expect(other).toEqual([]);
  const total = [...served.values()].reduce((x, y) => x + y, 0);

  const drain = await waitDrained(s, total, 120_000);
  expect(drain.drained, `not drained: ${JSON.stringify({ ...drain.status, shards: undefined })}`).toBe(true);

  // Per link: PostgreSQL rows and ClickHouse distinct clicks (stats API over the loader's chDB).
  const pgByCode = new Map(
    (await s.pg<{ code: string; n: number }[]>`SELECT code, count(*)::int AS n FROM clicks GROUP BY code`).map((r) => [r.code, r.n]),
  );
  const chByCode = new Map<string, number>();
  for (const l of links) {
    const res = await fetch(`${a.url}/api/stats?link=${l.id}&interval=hour&bots=include`, { headers });
    expect(res.status).toBe(200);
    chByCode.set(l.code, ((await res.json()) as { totals: { clicks: number } }).totals.clicks);
  }
  expect(Object.fromEntries(pgByCode)).toEqual(Object.fromEntries(served));
  expect(Object.fromEntries(chByCode)).toEqual(Object.fromEntries(served));

  // Kinesis: every record read back, against the forwarders' own counters.
  const stream = await readStream(s);
  const [ma, mb] = [await metricsText({ ...s, url: a.url }), await metricsText({ ...s, url: b.url })];
  const sent = [counter(ma, "linkflow_kinesis_records_sent_total"), counter(mb, "linkflow_kinesis_records_sent_total")];
  const resent = counter(ma, "linkflow_kinesis_records_resent_total") + counter(mb, "linkflow_kinesis_records_resent_total");
  const failed = counter(ma, "linkflow_kinesis_records_failed_total") + counter(mb, "linkflow_kinesis_records_failed_total");
  const stored = [counter(ma, "linkflow_clicks_stored_total"), counter(mb, "linkflow_clicks_stored_total")];
  const doubled = [...stream.ids.values()].filter((c) => c > 1).length;

  // Then ClickHouse by id, from the loader's chDB folder once that process has stopped.
  await b.kill("SIGTERM");
  await a.kill("SIGTERM");
  const pgIds = await postgresIds(s);
  const ch = await clickhouseIds(s);

  console.log(
    `[multi-ingest: ${label}] ${total} redirects in ${LOAD_MS / 1000} s (${Math.round(total / (LOAD_MS / 1000))}/s) over ${LINKS} links; ` +
      `beacons via the balancer a/b ${lb.beacons.join("/")}; clicks stored a/b ${stored.join("/")}; ` +
      `PostgreSQL ${pgIds.size}; ClickHouse rows ${ch.rows}, distinct ${ch.distinct}; ` +
      `Kinesis records read ${stream.records}, distinct ${stream.ids.size}, ids sent more than once ${doubled}; ` +
      `forwarder sends a/b ${sent.join("/")} (sum ${sent[0]! + sent[1]!}), re-sends ${resent}, failures ${failed}; drained ${(drain.ms / 1000).toFixed(1)} s after the load`,
  );

  // Both processes took a share of the beacons, and both forwarders sent.
  expect(lb.beacons.length).toBe(2);
  expect(lb.beacons.every((x) => x > 0)).toBe(true);
  expect(stored.every((x) => x > 0)).toBe(true);
  expect(stored[0]! + stored[1]!).toBe(total);
  expect(sent.every((x) => x > 0)).toBe(true);

  // PostgreSQL: one row per click; ClickHouse: exactly PostgreSQL's ids.
  expect(pgIds.size).toBe(total);
  expect([...pgIds.values()].every((c) => c === 1)).toBe(true);
  expect(ch.distinct).toBe(total);
  expect([...pgIds.keys()].filter((id) => !ch.ids.has(id))).toEqual([]);

  // Kinesis: every click is there, and copies beyond one only as many as the counted re-sends.
  expect(stream.ids.size).toBe(total);
  expect([...pgIds.keys()].filter((id) => !stream.ids.has(id))).toEqual([]);
  expect(stream.records - stream.ids.size).toBeLessThanOrEqual(resent);
  expect(sent[0]! + sent[1]!).toBeGreaterThanOrEqual(total);
  return { total, records: stream.records, distinct: stream.ids.size, resent, failed };
}

describe("scale-out: two ingest processes behind the edge", () => {
  const w: Partial<World> = {};
  beforeAll(async () => Object.assign(w, await world("2 ingest processes + edge")));
  afterAll(() => closeWorld(w));

  it("counts every redirect once in PostgreSQL and ClickHouse, and sends no record twice beyond counted retries", async () => {
    const r = await redirectsThroughTwoIngests(w as World, "no faults");
    // Nothing failed, so nothing may have been sent twice.
    expect(r.failed).toBe(0);
    expect(r.resent).toBe(0);
    expect(r.records).toBe(r.total);
  });
});

describe("scale-out: two ingest processes, Kinesis cut three times under load", () => {
  const w: Partial<World> = {};
  beforeAll(async () => Object.assign(w, await world("2 ingest processes + edge, Kinesis cuts")));
  afterAll(() => closeWorld(w));

  it("still counts every redirect once, and every extra Kinesis copy is a counted re-send", async () => {
    // Cuts of 1.5 s (connections dropped, new ones refused) while beacons keep arriving: puts
    // in flight fail (some after Kinesis accepted them), their rows are claimed again.
    const cuts = async (until: number) => {
      for (let i = 0; i < 3 && Date.now() + 3_000 < until; i++) {
        await sleep(3_000);
        w.s!.kinesisProxy.down();
        await sleep(1_500);
        w.s!.kinesisProxy.up();
      }
    };
    const r = await redirectsThroughTwoIngests(w as World, "Kinesis cut 3 × 1.5 s", cuts);
    // The cuts did hit the forwarders (otherwise this scenario proved nothing).
    expect(r.failed).toBeGreaterThan(0);
    expect(r.resent).toBeGreaterThan(0);
  });
});
