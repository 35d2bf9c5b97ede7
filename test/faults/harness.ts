/**
 * Fault-suite harness (`npm run test:faults`): ingest as a real child process (so it can be
 * SIGKILLed), a fresh database on the PostgreSQL server per scenario, kinesalite in this test
 * process (it survives ingest kills) behind a TCP fault-injection proxy, chDB inside ingest.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { startEmbeddedKinesis } from "../../ingest/src/pipeline/embedded-kinesis.ts";
import { generateKey } from "../../ingest/src/auth/keys.ts";
import type { ClickEvent } from "../../shared/event.ts";
import { sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import { clickEvent } from "../fixtures.ts";
import { DATABASE_URL, EDGE_SECRET, KEYS, TcpProxy } from "../helpers.ts";

export const ROOT = resolve(import.meta.dirname, "../..");
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const rand = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

export const freePort = () =>
  new Promise<number>((done) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => done(port));
    });
  });

/** Only what node and tsx need from our environment, plus ingest's settings (no stray CLICKHOUSE_URL etc.). */
const baseEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ["PATH", "HOME", "TMPDIR", "LANG", "TZ"]) if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
};

/** `node --import tsx <script>`, output kept (last 400 lines) for diagnostics. */
function spawnTsx(script: string, env: NodeJS.ProcessEnv, args: string[] = []) {
  const proc = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let partial = "";
  const take = (d: Buffer) => {
    const parts = (partial + d.toString("utf8")).split("\n");
    partial = parts.pop()!;
    lines.push(...parts);
    if (lines.length > 400) lines.splice(0, lines.length - 400);
  };
  proc.stdout!.on("data", take);
  proc.stderr!.on("data", take);
  const exited = new Promise<number | null>((r) => proc.once("exit", (code, sig) => r(code ?? (sig ? -1 : null))));
  return { proc, lines, exited, output: () => [...lines, partial].join("\n") };
}

/** One scenario's world: database, kinesalite (+ proxy), data folder, ingest port. */
export interface Scenario {
  name: string;
  dbName: string;
  databaseUrl: string;
  /** What ingest connects to: `databaseUrl`, or the same database through `pgProxy`. */
  ingestDatabaseUrl: string;
  /** With `{ pgProxy: true }`: a TCP fault-injection proxy between ingest and PostgreSQL. */
  pgProxy?: TcpProxy;
  /** Admin connection to the scenario's database (direct checks). */
  pg: postgres.Sql;
  kinesisProxy: TcpProxy;
  dataDir: string;
  port: number;
  url: string;
  adminKey: string;
  stream: string;
  close: () => Promise<void>;
}

let seq = 0;
export async function scenario(name: string, opts: { pgProxy?: boolean } = {}): Promise<Scenario> {
  const dbName = `linkflow_fault_${process.pid}_${++seq}_${randomBytes(3).toString("hex")}`;
  const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${dbName}`);
  const u = new URL(DATABASE_URL);
  u.pathname = `/${dbName}`;
  const databaseUrl = u.toString();
  const pg = postgres(databaseUrl, { max: 2, onnotice: () => {} });
  const kinesis = await startEmbeddedKinesis();
  const kinesisProxy = await new TcpProxy(Number(new URL(kinesis.endpoint).port)).listen();
  const dataDir = await mkdtemp(join(tmpdir(), "linkflow-fault-"));
  const port = await freePort();
  const pgProxy = opts.pgProxy ? await new TcpProxy(Number(u.port || 5432), { host: u.hostname }).listen() : undefined;
  const viaProxy = new URL(databaseUrl);
  if (pgProxy) (viaProxy.hostname = "127.0.0.1"), (viaProxy.port = String(pgProxy.port));
  return {
    name,
    dbName,
    databaseUrl,
    ingestDatabaseUrl: viaProxy.toString(),
    pgProxy,
    pg,
    kinesisProxy,
    dataDir,
    port,
    url: `http://127.0.0.1:${port}`,
    adminKey: generateKey(),
    stream: `clicks-${dbName.replaceAll("_", "-")}`,
    close: async () => {
      await pg.end({ timeout: 5 });
      await pgProxy?.close();
      await kinesisProxy.close();
      await kinesis.stop();
      await rm(dataDir, { recursive: true, force: true });
      await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end({ timeout: 5 });
    },
  };
}

/** Ingest as a child process: `node --import tsx ingest/src/main.ts`. */
export class IngestProcess {
  private child?: ReturnType<typeof spawnTsx>;
  starts = 0;
  /** `over`: another port, data folder (chDB: one per process) or settings, for extra processes. */
  constructor(
    private s: Scenario,
    private over: { port?: number; dataDir?: string; env?: NodeJS.ProcessEnv } = {},
  ) {}

  get url() {
    return this.over.port ? `http://127.0.0.1:${this.over.port}` : this.s.url;
  }

  get pid() {
    return this.child?.proc.pid;
  }

  env(): NodeJS.ProcessEnv {
    return {
      ...baseEnv(),
      DATABASE_URL: this.s.ingestDatabaseUrl,
      PORT: String(this.over.port ?? this.s.port),
      EDGE_SECRET,
      ADMIN_API_KEY: this.s.adminKey,
      EDGE_ADMIN_URL: "",
      DATA_DIR: this.over.dataDir ?? this.s.dataDir,
      KINESIS_ENDPOINT: `http://127.0.0.1:${this.s.kinesisProxy.port}`,
      KINESIS_STREAM: this.s.stream,
      LOG_LEVEL: "warn",
      BREAKER_RESET_MS: "1000",
      LOADER_BATCH_MS: "200",
      ...this.over.env,
    };
  }

  /** Starts ingest and waits for "ingest listening on <url>"; returns the start-up time in ms. */
  async start(timeoutMs = 60_000): Promise<number> {
    const t0 = Date.now();
    const c = spawnTsx("ingest/src/main.ts", this.env());
    this.child = c;
    this.starts++;
    const until = t0 + timeoutMs;
    while (!c.lines.some((l) => l.includes(`ingest listening on ${this.url}`))) {
      if (c.proc.exitCode !== null || c.proc.signalCode !== null) throw new Error(`ingest exited during start-up:\n${c.output()}`);
      if (Date.now() > until) {
        c.proc.kill("SIGKILL");
        throw new Error(`ingest did not start within ${timeoutMs} ms:\n${c.output()}`);
      }
      await sleep(25);
    }
    void c.exited.then(() => this.exitedOnItsOwn(c));
    return Date.now() - t0;
  }

  /** Exits nobody asked for (a crash), with when and the output's last lines. */
  readonly crashes: { at: number; upAgainAt?: number; tail: string }[] = [];
  private supervised = false;
  private restarting?: Promise<void>;

  /**
   * From now on, an ingest that exits on its own is recorded in `crashes` and started again
   * (retrying until it comes up), as a process supervisor would. kill() ends the supervision.
   */
  supervise() {
    this.supervised = true;
    return this;
  }

  private exitedOnItsOwn(c: ReturnType<typeof spawnTsx>) {
    if (this.child !== c || !this.supervised) return;
    const crash: (typeof this.crashes)[number] = { at: Date.now(), tail: c.output().split("\n").slice(-12).join("\n") };
    this.crashes.push(crash);
    this.restarting = (async () => {
      while (this.supervised) {
        try {
          await this.start();
          crash.upAgainAt = Date.now();
          return;
        } catch {
          await sleep(500); // e.g. its dependency still down: migrations cannot run yet
        }
      }
    })();
  }

  get running() {
    return !!this.child && this.child.proc.exitCode === null && this.child.proc.signalCode === null;
  }

  async kill(signal: NodeJS.Signals = "SIGKILL", timeoutMs = 20_000): Promise<void> {
    this.supervised = false;
    await this.restarting;
    const c = this.child;
    if (!c || !this.running) return;
    c.proc.kill(signal);
    const done = await Promise.race([c.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
    if (!done) {
      c.proc.kill("SIGKILL");
      await c.exited;
      throw new Error(`ingest did not exit within ${timeoutMs} ms of ${signal}:\n${c.output()}`);
    }
  }

  output() {
    return this.child?.output() ?? "";
  }
}

// ---------------------------------------------------------------------------------------------
// Load: steady signed beacons, retried with the same click_id until acknowledged (like the edge).

export interface LoadStats {
  generated: number;
  /** Slots of the steady rate skipped because maxInFlight beacons were still being retried. */
  skipped: number;
  acked: Set<string>;
  /** Attempts that failed with a network error or 5xx (then retried). */
  failedAttempts: number;
  /** Ids that needed more than one attempt. */
  retriedIds: number;
  /** 202s saying the click was already stored (a retry of a commit whose answer was lost). */
  duplicateAcks: number;
  /** Non-retryable answers (4xx): a bug, never expected. */
  refused: { id: string; status: number; body: string }[];
  /** Ids still unacknowledged when the load gave up. */
  unacked: string[];
}

const DEFAULT_CODES = ["code0", "code1", "code2", "code3", "code4"];

/**
 * The links a BeaconLoad's clicks name, created in the scenario's database (after ingest ran its
 * migrations): ingest takes a click only for the link at its domain/code. Ids come from the
 * sequence, so links made through the API before or after do not collide. Returns code → id.
 */
export async function loadLinks(s: Scenario, codes = DEFAULT_CODES): Promise<Map<string, number>> {
  const rows = await s.pg<{ id: string; code: string }[]>`
    INSERT INTO links (workspace_id, domain, code, url)
    SELECT (SELECT min(id) FROM workspaces), '', c, 'https://example.com/landing' FROM unnest(${codes}::text[]) AS c
    RETURNING id, code`;
  return new Map(rows.map((r) => [r.code, Number(r.id)]));
}

/**
 * `n` codes per shard of a stream of `shards` evenly split shards (Kinesis: the MD5 of the
 * partition key — the code — as a 128-bit number picks the shard), so a load reaches every shard.
 */
export function codesCoveringShards(shards: number, n = 2): string[] {
  const per = new Map<number, string[]>();
  for (let i = 0; [...per.values()].reduce((a, l) => a + l.length, 0) < shards * n; i++) {
    const code = `code${i}`;
    const shard = Number((BigInt("0x" + createHash("md5").update(code).digest("hex")) * BigInt(shards)) >> 128n);
    const list = per.get(shard) ?? [];
    if (list.length < n) per.set(shard, [...list, code]);
  }
  return [...per.values()].flat();
}

export class BeaconLoad {
  readonly stats: LoadStats = { generated: 0, skipped: 0, acked: new Set(), failedAttempts: 0, retriedIds: 0, duplicateAcks: 0, refused: [], unacked: [] };
  private inflight = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private giveUpAt = Infinity;
  private t0 = 0;
  private slots = 0;

  constructor(
    private url: string,
    /** `links`: code → link id, from `loadLinks` (the load spreads its clicks over them). */
    private opts: { rate: number; maxInFlight: number; links: Map<string, number> },
  ) {}

  start() {
    this.t0 = Date.now();
    this.timer = setInterval(() => {
      const due = Math.floor(((Date.now() - this.t0) / 1000) * this.opts.rate) - this.slots;
      for (let i = 0; i < due; i++) {
        this.slots++;
        if (this.inflight.size >= this.opts.maxInFlight) {
          // Back-pressure (ingest down, everything retrying): skip this slot rather than pile up.
          this.stats.skipped++;
          continue;
        }
        const n = this.stats.generated++;
        const codes = [...this.opts.links.keys()];
        const code = codes[n % codes.length]!;
        const p = this.deliver(clickEvent({ link_id: this.opts.links.get(code)!, code }));
        this.inflight.add(p);
        void p.finally(() => this.inflight.delete(p));
      }
    }, 20);
    return this;
  }

  private async deliver(e: ClickEvent) {
    for (let attempt = 0; ; attempt++) {
      if (attempt === 1) this.stats.retriedIds++;
      if (Date.now() > this.giveUpAt) {
        this.stats.unacked.push(e.click_id);
        return;
      }
      try {
        // As fixtures.ts postBeacon (re-signed each attempt), plus a bound on each attempt.
        const raw = JSON.stringify(e);
        const r = await fetch(`${this.url}/v1/clicks`, {
          method: "POST",
          headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(KEYS.beacon, raw) },
          body: raw,
          signal: AbortSignal.timeout(10_000),
        });
        const res = { status: r.status, text: await r.text() };
        if (res.status === 202) {
          if ((JSON.parse(res.text) as { duplicates: number }).duplicates) this.stats.duplicateAcks++;
          this.stats.acked.add(e.click_id);
          return;
        }
        if (res.status < 500) {
          this.stats.refused.push({ id: e.click_id, status: res.status, body: res.text.slice(0, 300) });
          return;
        }
      } catch {
        // connection refused / reset / timeout: ingest is down (or hung)
      }
      this.stats.failedAttempts++;
      await sleep(rand(50, Math.min(1000, 100 * 2 ** attempt)));
    }
  }

  /** Stops generating; waits (up to `ms`) until every generated beacon is acknowledged. */
  async stop(ms = 60_000): Promise<LoadStats> {
    clearInterval(this.timer);
    this.giveUpAt = Date.now() + ms;
    while (this.inflight.size) await Promise.all([...this.inflight]);
    return this.stats;
  }
}

// ---------------------------------------------------------------------------------------------
// Checks.

/** What GET /api/pipeline answers (the type ingest itself declares). */
export type { PipelineStatus } from "../../ingest/src/pipeline/index.ts";
import type { PipelineStatus } from "../../ingest/src/pipeline/index.ts";

export async function pipelineStatus(s: Scenario): Promise<PipelineStatus> {
  const res = await fetch(`${s.url}/api/pipeline`, { headers: { Authorization: `Bearer ${s.adminKey}` }, signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`/api/pipeline answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as PipelineStatus;
}

export async function metricsText(s: Scenario): Promise<string> {
  return (await fetch(`${s.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
}

/**
 * Waits until the pipeline has drained: outbox empty, and ClickHouse (uniqExact) and PostgreSQL
 * both at `expected`. Returns the last status and how long it took (or null status on timeout).
 */
export async function waitDrained(s: Scenario, expected: number, ms: number): Promise<{ drained: boolean; status: PipelineStatus; ms: number }> {
  const t0 = Date.now();
  let status: PipelineStatus | undefined;
  for (;;) {
    try {
      status = await pipelineStatus(s);
      if (status.outbox_backlog === 0 && status.clickhouse_clicks === expected && status.postgres_clicks === expected)
        return { drained: true, status, ms: Date.now() - t0 };
    } catch {
      // ingest busy or restarting: poll again
    }
    if (Date.now() - t0 > ms) return { drained: false, status: status!, ms: Date.now() - t0 };
    await sleep(250);
  }
}

/** Click ids in PostgreSQL (the scenario's database), with how many rows each has. */
export async function postgresIds(s: Scenario): Promise<Map<string, number>> {
  const rows = await s.pg<{ id: string; n: number }[]>`SELECT click_id::text AS id, count(*)::int AS n FROM clicks GROUP BY 1`;
  return new Map(rows.map((r) => [r.id, r.n]));
}

/**
 * Click ids in ClickHouse, read from chDB's folder by a separate process once ingest has stopped
 * (chDB allows one process per folder): distinct ids and the raw row count (redeliveries not yet
 * merged away by the ReplacingMergeTree).
 */
export async function clickhouseIds(s: Scenario, dataDir = s.dataDir): Promise<{ ids: Set<string>; rows: number; distinct: number }> {
  const c = spawnTsx("test/faults/chdb-dump.ts", baseEnv(), [join(dataDir, "chdb")]);
  const code = await Promise.race([c.exited, sleep(60_000).then(() => "timeout" as const)]);
  if (code !== 0) {
    c.proc.kill("SIGKILL");
    throw new Error(`chdb-dump failed (${code}):\n${c.output()}`);
  }
  const line = c.output().split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`chdb-dump printed no result:\n${c.output()}`);
  const r = JSON.parse(line.slice(7)) as { rows: number; distinct: number; ids: string[] };
  return { ids: new Set(r.ids), rows: r.rows, distinct: r.distinct };
}

export interface Report {
  scenario: string;
  /** Clicks ingest acknowledged (202) to the direct beacon load. */
  acked: number;
  /** Scenarios with the worker: redirects served (302) under load, each one click to count. */
  redirects?: number;
  lost: number;
  duplicated: number;
  recoveryS: number;
  notes: string;
}

const TABLE_HEAD = [
  "| scenario | clicks acknowledged | redirects served | lost | duplicated in stats | recovery time (fault end → drained) |",
  "|---|---:|---:|---:|---:|---:|",
];
const tableLine = (r: Report) =>
  `| ${r.scenario} | ${r.acked} | ${r.redirects ?? "–"} | ${r.lost} | ${r.duplicated} | ${r.recoveryS.toFixed(1)} s |`;

/** The combined table of a whole `npm run test:faults` run (printed by its global teardown). */
export function reportTable(rows: Report[]): string {
  return [...TABLE_HEAD, ...rows.map(tableLine), "", ...rows.filter((r) => r.notes).map((r) => `- ${r.scenario}: ${r.notes}`)].join("\n");
}

/**
 * Prints the scenario's row, and appends it to the run's report file (set by the suite's global
 * setup, test/faults/report-setup.ts) so the whole table is printed once at the end.
 */
export function printReport(r: Report) {
  console.log(["", ...TABLE_HEAD, tableLine(r), r.notes ? `  ${r.notes}` : "", ""].join("\n"));
  if (process.env.LINKFLOW_FAULTS_REPORT) appendFileSync(process.env.LINKFLOW_FAULTS_REPORT, JSON.stringify(r) + "\n");
}

export { rand };

export interface Verdict {
  report: Report;
  /** Acknowledged ids missing from PostgreSQL / ClickHouse; ids there that were never acknowledged. */
  missingPg: string[];
  missingCh: string[];
  extraPg: string[];
  extraCh: string[];
  /** PostgreSQL click_ids with more than one row. */
  pgDuplicateRows: number;
  ch: { rows: number; distinct: number };
  /** Per `edge` link: its distinct clicks in PostgreSQL vs the redirects served. */
  edges: EdgeVerdict[];
  /** The first (usually only) entry of `edges`. */
  edge?: EdgeVerdict;
}

/**
 * Scenarios with the worker: `served` redirects of link `code` were answered 302. Their click
 * ids are not known to the client, so the link's rows in PostgreSQL stand for them (expected:
 * exactly `served`); each must then be in ClickHouse exactly once, like an acknowledged click.
 * With a `label`, the link gets its own row in the table ("<scenario>: <label>").
 */
export interface EdgeCheck {
  code: string;
  served: number;
  label?: string;
  notes?: string;
}
export interface EdgeVerdict {
  code: string;
  served: number;
  stored: number;
  /** Redirects without a stored click, and stored clicks beyond the redirects. */
  lost: number;
  extra: number;
  /** Of the link's stored clicks, those ClickHouse does not have. */
  missingCh: number;
}

/**
 * The end of every scenario: compares the acknowledged ids with PostgreSQL (queried directly)
 * and, after a graceful ingest stop, with ClickHouse (chDB folder read by a separate process);
 * prints the scenario's table row(s).
 */
export async function verify(
  s: Scenario,
  ingest: IngestProcess,
  acked: Set<string>,
  status: PipelineStatus,
  recoveryMs: number,
  notes: string,
  edge?: EdgeCheck | EdgeCheck[],
): Promise<Verdict> {
  const checks = edge === undefined ? [] : Array.isArray(edge) ? edge : [edge];
  const pg = await postgresIds(s);
  const edgeIds = await Promise.all(checks.map((c) => edgeClickIds(s, c.code)));
  await ingest.kill("SIGTERM");
  const ch = await clickhouseIds(s);
  const expected = new Set([...acked, ...edgeIds.flat()]);
  const missingPg = [...acked].filter((id) => !pg.has(id));
  const missingCh = [...expected].filter((id) => !ch.ids.has(id));
  const extraPg = [...pg.keys()].filter((id) => !expected.has(id));
  const extraCh = [...ch.ids].filter((id) => !expected.has(id));
  const pgDuplicateRows = [...pg.values()].reduce((n, c) => n + c - 1, 0);
  const edges: EdgeVerdict[] = checks.map((c, i) => ({
    code: c.code,
    served: c.served,
    stored: edgeIds[i]!.length,
    lost: Math.max(0, c.served - edgeIds[i]!.length),
    extra: Math.max(0, edgeIds[i]!.length - c.served),
    missingCh: edgeIds[i]!.filter((id) => !ch.ids.has(id)).length,
  }));
  const over = (n: number | null) => Math.max(0, (n ?? 0) - expected.size);
  // Counted twice anywhere: in PostgreSQL or ClickHouse beyond the expected ids, a repeated row.
  const duplicatedAnywhere = over(status.postgres_clicks) + over(status.clickhouse_clicks) + pgDuplicateRows + extraCh.length;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const where =
    `PostgreSQL rows ${sum([...pg.values()])} (ids ${pg.size}); ClickHouse rows ${ch.rows}, ` +
    `uniqExact ${ch.distinct} (${ch.rows - ch.distinct} redelivered rows collapsed); /api/pipeline ${JSON.stringify({ ...status, shards: undefined })}`;
  const reports: Report[] = checks.some((c) => c.label)
    ? edges.map((e, i) => ({
        scenario: `${s.name}: ${checks[i]!.label ?? checks[i]!.code}`,
        acked: i === 0 ? acked.size : 0,
        redirects: e.served,
        lost: e.lost + e.missingCh + (i === 0 ? missingPg.length + missingCh.length - sum(edges.map((x) => x.missingCh)) : 0),
        duplicated: e.extra + (i === 0 ? duplicatedAnywhere : 0),
        recoveryS: recoveryMs / 1000,
        notes: [checks[i]!.notes, i === 0 ? `${notes}; ${where}` : ""].filter(Boolean).join("; "),
      }))
    : [
        {
          scenario: s.name,
          acked: acked.size,
          redirects: checks.length ? sum(checks.map((c) => c.served)) : undefined,
          lost: new Set([...missingPg, ...missingCh]).size + sum(edges.map((e) => e.lost)),
          duplicated: duplicatedAnywhere + sum(edges.map((e) => e.extra)),
          recoveryS: recoveryMs / 1000,
          notes: `${notes}; ${where}`,
        },
      ];
  for (const r of reports) printReport(r);
  return { report: reports[0]!, missingPg, missingCh, extraPg, extraCh, pgDuplicateRows, ch: { rows: ch.rows, distinct: ch.distinct }, edges, edge: edges[0] };
}

// ---------------------------------------------------------------------------------------------
// The worker: scenarios where visitors go through the edge (workerd via Miniflare, in this
// test process) and the clicks reach ingest as the worker's own beacons.

/** Creates a link through ingest's API (admin key); returns its id and code. */
export async function createLink(ingestUrl: string, s: Scenario, link: Record<string, unknown>): Promise<{ id: number; code: string }> {
  const res = await fetch(`${ingestUrl}/api/links`, {
    method: "POST",
    headers: { Authorization: `Bearer ${s.adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(link),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 201) throw new Error(`POST /api/links answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as { id: number; code: string };
}

/** The distinct click ids PostgreSQL holds for one link code (clicks from the worker). */
export async function edgeClickIds(s: Scenario, code: string): Promise<string[]> {
  const rows = await s.pg<{ id: string }[]>`SELECT DISTINCT click_id::text AS id FROM clicks WHERE code = ${code}`;
  return rows.map((r) => r.id);
}

/**
 * Waits until the worker's beacons have settled: the link's clicks in PostgreSQL reach `served`,
 * or stop changing for `quietMs` (longer than the worker's largest retry gap plus an attempt's
 * timeout), bounded by `ms`. Returns the count and how long it took.
 */
export async function settleEdgeClicks(s: Scenario, code: string, served: number, { quietMs = 20_000, ms = 90_000 } = {}) {
  const t0 = Date.now();
  let last = -1;
  let changedAt = Date.now();
  for (;;) {
    const n = (await edgeClickIds(s, code)).length;
    if (n !== last) (last = n), (changedAt = Date.now());
    if (n >= served || Date.now() - changedAt > quietMs || Date.now() - t0 > ms) return { stored: n, ms: Date.now() - t0, complete: n >= served };
    await sleep(250);
  }
}

export interface RedirectSample {
  /** When the request started (epoch ms) and how long the answer took. */
  at: number;
  ms: number;
  /** HTTP status, or the network error / timeout. */
  status: number | string;
  location: string | null;
}

/**
 * Steady visitors of one short URL: `rate` requests per second (redirect: "manual", the redirect
 * itself is the answer), at most `maxInFlight` at once (a slot is skipped beyond that), each
 * bounded by `timeoutMs`. Every answer is kept as a sample.
 */
export class RedirectLoad {
  readonly samples: RedirectSample[] = [];
  skipped = 0;
  private inflight = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private t0 = 0;
  private slots = 0;

  constructor(
    private url: string,
    private opts: { rate: number; maxInFlight: number; timeoutMs?: number } = { rate: 40, maxInFlight: 16 },
  ) {}

  start() {
    this.t0 = Date.now();
    this.timer = setInterval(() => {
      const due = Math.floor(((Date.now() - this.t0) / 1000) * this.opts.rate) - this.slots;
      for (let i = 0; i < due; i++) {
        this.slots++;
        if (this.inflight.size >= this.opts.maxInFlight) {
          this.skipped++;
          continue;
        }
        const p = this.visit();
        this.inflight.add(p);
        void p.finally(() => this.inflight.delete(p));
      }
    }, 20);
    return this;
  }

  private async visit() {
    const at = Date.now();
    try {
      const res = await fetch(this.url, {
        redirect: "manual",
        headers: { "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 linkflow-fault-suite" },
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
      });
      await res.arrayBuffer();
      this.samples.push({ at, ms: Date.now() - at, status: res.status, location: res.headers.get("location") });
    } catch (err) {
      this.samples.push({ at, ms: Date.now() - at, status: String((err as Error).name ?? err), location: null });
    }
  }

  /** Stops starting requests and waits for those in flight. */
  async stop() {
    clearInterval(this.timer);
    while (this.inflight.size) await Promise.all([...this.inflight]);
    return this;
  }

  /** Samples of requests started in [from, to). */
  between(from: number, to: number) {
    return this.samples.filter((r) => r.at >= from && r.at < to);
  }

  get served() {
    return this.samples.filter((r) => r.status === 302).length;
  }

  /** Status → count, e.g. { "302": 2400 }. */
  statuses(samples: { status: number | string }[] = this.samples) {
    const out: Record<string, number> = {};
    for (const r of samples) out[r.status] = (out[r.status] ?? 0) + 1;
    return out;
  }
}

/** The p-th percentile (0–100, nearest rank) of some numbers. */
export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
