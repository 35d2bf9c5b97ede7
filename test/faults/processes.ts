/**
 * The fault suite's child processes: ingest (so it can be SIGKILLed; chDB lives inside it) and
 * the short-lived reader of a stopped ingest's chDB folder.
 */
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { EDGE_SECRET } from "../helpers.ts";
import { kinesisEndpoint, type Scenario } from "./scenario.ts";
import { sleep } from "./util.ts";

const ROOT = resolve(import.meta.dirname, "../..");

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

export interface IngestOverrides {
  /** Another port and data folder (chDB: one per process), for extra processes. */
  port?: number;
  dataDir?: string;
  /** Settings on top of the scenario's. */
  env?: NodeJS.ProcessEnv;
  /**
   * Every ClickHouse insert fails while this file exists: ingest then runs through
   * test/faults/ingest-with-faults.ts (chDB is inside the child, out of the test's reach).
   */
  clickhouseFaultFile?: string;
}

/** Ingest as a child process: `node --import tsx ingest/src/main.ts` (or the fault entry). */
export class IngestProcess {
  private child?: ReturnType<typeof spawnTsx>;
  starts = 0;
  constructor(
    private s: Scenario,
    private over: IngestOverrides = {},
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
      KINESIS_ENDPOINT: kinesisEndpoint(this.s),
      KINESIS_STREAM: this.s.stream,
      LOG_LEVEL: "warn",
      BREAKER_RESET_MS: "1000",
      LOADER_BATCH_MS: "200",
      // The completeness check settles a block of click numbers 2 s after its last click (not 5 min).
      CLICKS_MISSING_WINDOW_MS: "2000",
      ...this.over.env,
    };
  }

  private spawn() {
    const fault = this.over.clickhouseFaultFile;
    return fault
      ? spawnTsx("test/faults/ingest-with-faults.ts", this.env(), ["--clickhouse-fault-file", fault])
      : spawnTsx("ingest/src/main.ts", this.env());
  }

  /** Starts ingest and waits for "ingest listening on <url>"; returns the start-up time in ms. */
  async start(timeoutMs = 60_000): Promise<number> {
    const t0 = Date.now();
    const c = this.spawn();
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
