import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTcpServer, connect as tcpConnect, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, type _Record } from "@aws-sdk/client-kinesis";
import { deaggregateSync, type UserRecordV3 } from "aws-kinesis-agg";
import postgres, { type TransactionSql } from "postgres";
import { startEdge, type Edge } from "../edge/miniflare.ts";
import { keysOf } from "../shared/keys.ts";
import type { ClickEvent } from "../shared/event.ts";
import { loadConfig } from "../ingest/src/config.ts";
import { connect, type Sql } from "../ingest/src/db/connect.ts";
import { generateKey } from "../ingest/src/auth/keys.ts";
import { rows } from "../ingest/src/analytics/clickhouse.ts";
import { seal } from "../ingest/src/analytics/rollup.ts";
import { GZIP_MAGIC, KPL_MAGIC } from "../ingest/src/pipeline/aggregate.ts";
import { startEmbeddedKinesis } from "../ingest/src/pipeline/embedded-kinesis.ts";
import type { PipelineExtras } from "../ingest/src/pipeline/index.ts";
import { startIngest, type Ingest } from "../ingest/src/server.ts";

export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const EDGE_SECRET = "test-edge-secret-0123456789-abcdefghijkl";
/** The purpose keys both sides derive from EDGE_SECRET (shared/keys.ts): tests sign with these. */
export const KEYS = await keysOf(EDGE_SECRET);

/** A fresh schema on the real PostgreSQL server, dropped by `drop()`. */
export async function testSchema(): Promise<{ schema: string; sql: Sql; drop: () => Promise<void> }> {
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin`CREATE SCHEMA ${admin(schema)}`;
  const sql = connect(DATABASE_URL, { max: 4, schema });
  return {
    schema,
    sql,
    drop: async () => {
      await sql.end();
      await admin`DROP SCHEMA ${admin(schema)} CASCADE`;
      await admin.end();
    },
  };
}

/**
 * Runs `work` in a transaction; gives its result and the rows it read from `table` (by scans
 * and through indexes). Read from this backend's counters not yet reported, and none are
 * reported inside a transaction: for claims that must read about a batch, not a backlog.
 */
export async function rowsReadBy<T>(sql: Sql, table: string, work: (tx: TransactionSql) => Promise<T>): Promise<{ result: T; read: number }> {
  let out: { result: T; read: number } | undefined;
  await sql.begin(async (tx) => {
    const counted = async () =>
      Number((await tx<{ n: string }[]>`SELECT seq_tup_read + idx_tup_fetch AS n FROM pg_stat_xact_user_tables WHERE relid = ${table}::regclass`)[0]!.n);
    const before = await counted();
    const result = await work(tx);
    out = { result, read: (await counted()) - before };
  });
  return out!;
}

/**
 * A counting (and stoppable) HTTP proxy: sits between the worker and ingest so tests can see
 * which requests reached the origin, and cut the link to it.
 */
export class Proxy {
  target = "";
  /** When true, connections are answered with a dropped socket (ingest "unreachable"). */
  down = false;
  /** The next N requests under this path prefix get a 503 instead of reaching ingest. */
  failures = new Map<string, number>();
  readonly hits: { method: string; path: string; status: number }[] = [];
  /**
   * A lossy middle box for the completeness check: a beacon (POST /v1/clicks) this returns true
   * for is answered 202 as if stored and never reaches ingest; its clicks go to `dropped`.
   */
  dropBeacon?: (events: ClickEvent[]) => boolean;
  readonly dropped: ClickEvent[] = [];
  private server: Server;
  url = "";

  constructor() {
    this.server = createServer((req, res) => {
      if (this.down || !this.target) return void req.socket.destroy();
      for (const [prefix, n] of this.failures) {
        if (n > 0 && req.url!.startsWith(prefix)) {
          this.failures.set(prefix, n - 1);
          this.hits.push({ method: req.method!, path: req.url!, status: 503 });
          req.resume();
          return void res.writeHead(503, { "content-type": "application/json" }).end('{"error":{"status":503}}');
        }
      }
      if (this.dropBeacon && req.method === "POST" && req.url!.startsWith("/v1/clicks")) {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c)).on("end", () => {
          const raw = Buffer.concat(chunks);
          const parsed = JSON.parse(raw.toString("utf8")) as ClickEvent | ClickEvent[];
          const events = Array.isArray(parsed) ? parsed : [parsed];
          if (this.dropBeacon?.(events)) {
            this.dropped.push(...events);
            this.hits.push({ method: req.method!, path: req.url!, status: 202 });
            return void res.writeHead(202, { "content-type": "application/json" }).end(JSON.stringify({ accepted: events.length, duplicates: 0 }));
          }
          this.forward(req, res, raw);
        });
        return;
      }
      this.forward(req, res);
    });
  }
  private forward(req: IncomingMessage, res: ServerResponse, raw?: Buffer) {
    {
      const t = new URL(this.target);
      const up = httpRequest(
        { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          this.hits.push({ method: req.method!, path: req.url!, status: r.statusCode! });
          res.writeHead(r.statusCode!, r.headers);
          r.pipe(res);
        },
      );
      up.on("error", () => res.destroy());
      if (raw) up.end(raw);
      else req.pipe(up);
    }
  }
  async listen(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  count(prefix: string) {
    return this.hits.filter((h) => h.path.startsWith(prefix)).length;
  }
  close() {
    this.server.closeAllConnections();
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

/**
 * Forwards `from` to `to` with every chunk held back `delayMs()` ms (read per chunk, so the delay
 * can change under live keep-alive connections); a FIFO, so bytes never overtake each other.
 */
function delayedPipe(from: Socket, to: Socket, delayMs: () => number) {
  const q: { at: number; chunk: Buffer | "end" | "close" }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const drain = () => {
    timer = undefined;
    while (q.length && q[0]!.at <= Date.now()) {
      const { chunk } = q.shift()!;
      if (to.destroyed) return;
      if (chunk === "end") to.end();
      else if (chunk === "close") to.destroy();
      else to.write(chunk);
    }
    if (q.length) timer = setTimeout(drain, q[0]!.at - Date.now());
  };
  const push = (chunk: Buffer | "end" | "close") => {
    q.push({ at: Date.now() + delayMs(), chunk });
    if (!timer) drain();
  };
  // A close travels as late as the bytes before it, so they are delivered first.
  from.on("data", (c: Buffer) => push(c)).on("end", () => push("end")).on("close", () => push("close"));
}

/**
 * A TCP fault-injection proxy: `down()` drops every connection and refuses new ones (the
 * dependency is "unreachable"), `up()` restores it. Used in front of kinesalite (and, in the
 * fault suite, PostgreSQL and ingest). With `{ delayMs }` it is a slow network instead: each
 * chunk is held back `delayMs` ms in each direction (settable at any time, 0 = no delay).
 */
export class TcpProxy {
  private sockets = new Set<Socket>();
  private server = createTcpServer((client) => {
    if (this.isDown) return void client.destroy();
    const upstream = tcpConnect(this.targetPort, this.opts.host ?? "127.0.0.1");
    this.sockets.add(client).add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    if (this.opts.delayMs === undefined) {
      client.on("error", close).on("close", close).pipe(upstream);
      upstream.on("error", close).on("close", close).pipe(client);
    } else {
      const forget = (sock: Socket) => () => this.sockets.delete(sock);
      client.on("error", close).on("close", forget(client));
      upstream.on("error", close).on("close", forget(upstream));
      delayedPipe(client, upstream, () => this.delayMs);
      delayedPipe(upstream, client, () => this.delayMs);
    }
  });
  isDown = false;
  port = 0;
  /** Added latency per chunk and direction (only with the `delayMs` option). */
  delayMs: number;
  constructor(
    private targetPort: number,
    private opts: { host?: string; delayMs?: number } = {},
  ) {
    this.delayMs = opts.delayMs ?? 0;
  }
  async listen(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }
  down() {
    this.isDown = true;
    for (const s of this.sockets) s.destroy();
  }
  up() {
    this.isDown = false;
  }
  close() {
    this.down();
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

export interface Stack {
  ingest: Ingest;
  edge?: Edge;
  proxy: Proxy;
  sql: Sql;
  adminKey: string;
  /** With `pipeline`: the proxy in front of kinesalite, and the data folder (chDB lives there). */
  kinesisProxy?: TcpProxy;
  dataDir?: string;
  close: () => Promise<void>;
}

/**
 * Ingest on the real PostgreSQL (own schema) and, unless `edge: false`, the worker in workerd,
 * wired worker → proxy → ingest and ingest → worker (KV write-through).
 */
export async function startStack(
  opts: { edge?: boolean; verbose?: boolean; vars?: Record<string, string>; pipeline?: boolean; env?: Record<string, string>; extras?: PipelineExtras } = {},
): Promise<Stack> {
  const db = await testSchema();
  // The pipeline (when asked for): in-memory kinesalite behind a fault-injection proxy, and
  // chDB in a folder of this test process's own.
  let kinesisProxy: TcpProxy | undefined;
  let stopKinesis: (() => Promise<void>) | undefined;
  let dataDir: string | undefined;
  if (opts.pipeline) {
    const k = await startEmbeddedKinesis();
    stopKinesis = k.stop;
    kinesisProxy = await new TcpProxy(Number(new URL(k.endpoint).port)).listen();
    dataDir = await mkdtemp(join(tmpdir(), "linkflow-test-"));
  }
  const proxy = await new Proxy().listen();
  const edge =
    opts.edge === false
      ? undefined
      : await startEdge({ verbose: opts.verbose, vars: { INGEST_URL: proxy.url, EDGE_SECRET, BEACON_BASE_DELAY_MS: "50", ...opts.vars } });
  const adminKey = generateKey();
  const config = loadConfig({
    DATABASE_URL,
    PORT: "0",
    EDGE_SECRET,
    ADMIN_API_KEY: adminKey,
    EDGE_ADMIN_URL: edge?.url ?? "",
    SHORT_BASE_URL: "http://localhost:8787",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    PIPELINE_ROLES: opts.pipeline ? "forwarder,loader,maintenance" : "",
    // Tests that check stored IPs see them as sent; test/stats*.test.ts turns anonymizing on.
    IP_ANONYMIZE: "false",
    ...(opts.pipeline
      ? { KINESIS_ENDPOINT: `http://127.0.0.1:${kinesisProxy!.port}`, DATA_DIR: dataDir!, KINESIS_STREAM: `clicks-${db.schema}`, BREAKER_RESET_MS: "1000", LOADER_BATCH_MS: "200", ROLLUP_INTERVAL_MS: "200" }
      : {}),
    ...opts.env,
  });
  const ingest = await startIngest(config, { schema: db.schema, pipeline: opts.extras });
  proxy.target = ingest.url;
  return {
    ingest,
    edge,
    proxy,
    sql: db.sql,
    adminKey,
    kinesisProxy,
    dataDir,
    close: async () => {
      await edge?.close();
      await proxy.close();
      await ingest.close();
      await kinesisProxy?.close();
      await stopKinesis?.();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
      await db.drop();
    },
  };
}

/** Every record of a pipeline stack's stream, each shard read from its start, and how many shards. */
export async function streamRecords(s: Stack): Promise<{ shards: number; records: _Record[] }> {
  const kinesis = s.ingest.pipeline.kinesis!;
  const stream = `clicks-${(await s.sql`SELECT current_schema() AS s`)[0]!.s}`;
  const shards = (await kinesis.send(new ListShardsCommand({ StreamName: stream }))).Shards!;
  const records: _Record[] = [];
  for (const shard of shards) {
    let it = (await kinesis.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId!, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
    for (;;) {
      const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
      records.push(...(out.Records ?? []));
      it = out.NextShardIterator;
      if (!out.Records?.length) break;
    }
  }
  return { shards: shards.length, records };
}

/**
 * A record's clicks as an AWS consumer (Firehose, a Lambda) reads them: gunzipped when gzipped
 * (KINESIS_COMPRESSION), then deaggregated with aws-kinesis-agg; a plain click stays one.
 */
export function userRecords(rec: _Record): { gz: boolean; kpl: boolean; users: { partitionKey: string; data: Buffer }[] } {
  const gz = Buffer.from(rec.Data!.subarray(0, 3)).equals(GZIP_MAGIC);
  const data = gz ? gunzipSync(rec.Data!) : rec.Data!;
  const kpl = Buffer.from(data.subarray(0, 4)).equals(KPL_MAGIC);
  let users: UserRecordV3[] = [];
  let failed: unknown;
  deaggregateSync({ ...rec, Data: data } as { Data: Uint8Array }, true, (err: Error | null | undefined, out?: UserRecordV3[]) => {
    failed = err;
    users = out ?? [];
  });
  if (failed) throw failed;
  // Deaggregated records come back base64; a plain record as it was.
  return { gz, kpl, users: users.map((u) => ({ partitionKey: u.PartitionKey, data: kpl ? Buffer.from(u.Data, "base64") : Buffer.from(u.Data as unknown as Uint8Array) })) };
}

/** The rollups' click totals, all workspaces, once the sealer is told two days have passed. */
export async function sealedTotals(s: Stack): Promise<{ hourly: number; daily: number }> {
  const ch = s.ingest.pipeline.ch!;
  await seal({ sql: s.sql, ch, database: "linkflow", now: () => Date.now() + 48 * 3_600_000, wait: true });
  const total = async (table: string) =>
    Number((await rows<{ n: number }>(ch, `SELECT sum(c) AS n FROM (SELECT max(clicks) AS c FROM linkflow.${table} WHERE level = 'all' AND dim = '' GROUP BY t, is_bot)`))[0]!.n);
  return { hourly: await total("rollup_hourly"), daily: await total("rollup_daily") };
}

/**
 * A free port below the kernel's ephemeral range (32768–60999 on Linux), for a process that
 * must be told its port: one asked for with 0 and released again can be handed to another
 * test's server, or to one of that process's own services, before it listens (EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createTcpServer()
        .once("error", () => resolve(false))
        .listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** Polls `probe` until it returns a truthy value or `ms` pass (a bound, not a timing assertion). */
export async function eventually<T>(probe: () => Promise<T>, ms = 5000, every = 50): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, every));
  }
}

export const json = (key: string) => ({ Authorization: `Bearer ${key}`, "content-type": "application/json" });

/** A response's JSON body, untyped (tests assert its shape). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const body = (res: Response): Promise<any> => res.json();
