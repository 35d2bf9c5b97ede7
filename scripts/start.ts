/**
 * `npm start`: the whole stack on embedded defaults. Ingest (with PGlite unless DATABASE_URL)
 * on PORT (8788), the worker in workerd on EDGE_PORT (8787) with KV persisted under DATA_DIR.
 *
 * `npm start -- --loaders N`: N loader processes (ingest/src/main.ts, PIPELINE_ROLES=loader, each
 * with DATA_DIR/loader-<i>) besides ingest, which then runs its other roles. They share the
 * Kinesis stream (kinesalite is then started here, so every process reaches the same one),
 * PostgreSQL (shard leases) and the ClickHouse server (CLICKHOUSE_URL, required).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseStartArgs, rolesWithoutLoader } from "./start-args.ts";

const args = parseStartArgs(process.argv.slice(2), process.env);
if (!args.ok) {
  console.error(args.message);
  process.exit(args.exitCode);
}
// Loaded after the argument check, so a refusal is immediate (workerd, chDB and the AWS SDK take
// seconds to load).
const { startEdge } = await import("../edge/miniflare.ts");
const { loadConfig } = await import("../ingest/src/config.ts");
const { startEmbeddedKinesis } = await import("../ingest/src/pipeline/embedded-kinesis.ts");
const { generateKey } = await import("../ingest/src/auth/keys.ts");
const { startIngest } = await import("../ingest/src/server.ts");
const loaders = args.loaders;
let stopping = false;

/**
 * Secrets have no defaults: what the environment does not set, npm start generates once and
 * keeps in DATA_DIR (folder 0700, file 0600), so a restart keeps links, cookies and keys valid.
 */
const dataDir = process.env.DATA_DIR ?? "data";
await mkdir(dataDir, { recursive: true, mode: 0o700 });
async function keptSecret(name: string, make: () => string): Promise<string> {
  const file = join(dataDir, name);
  try {
    return (await readFile(file, "utf8")).trim();
  } catch {
    const value = make();
    await writeFile(file, value + "\n", { mode: 0o600, flag: "wx" });
    await chmod(file, 0o600); // whatever the umask
    return value;
  }
}
const secretFiles: string[] = [];
for (const [name, file, make] of [
  ["EDGE_SECRET", "edge-secret", () => randomBytes(32).toString("base64url")],
  ["ADMIN_API_KEY", "admin-key", generateKey],
] as const) {
  if (process.env[name]) continue;
  process.env[name] = await keptSecret(file, make);
  secretFiles.push(join(dataDir, file));
}
const adminKeyFile = secretFiles.find((f) => f.endsWith("admin-key"));

const edgePort = Number(process.env.EDGE_PORT ?? 8787);
// The worker is ours here, so its URLs follow EDGE_PORT unless set explicitly.
process.env.SHORT_BASE_URL ??= `http://localhost:${edgePort}`;
process.env.EDGE_ADMIN_URL ??= `http://127.0.0.1:${edgePort}`;
let stopKinesis: (() => Promise<void>) | undefined;
if (loaders > 0) {
  // Every process must reach the same stream: kinesalite here (not inside ingest) when no real
  // Kinesis is configured.
  if (!process.env.KINESIS_ENDPOINT && !process.env.AWS_REGION) {
    const k = await startEmbeddedKinesis(resolve(join(process.env.DATA_DIR ?? "data", "kinesis")));
    process.env.KINESIS_ENDPOINT = k.endpoint;
    stopKinesis = k.stop;
  }
  process.env.PIPELINE_ROLES = rolesWithoutLoader(process.env.PIPELINE_ROLES ?? "forwarder,loader,archiver,maintenance,webhooks");
}
const config = loadConfig();
const host = config.HOST;

const { UnreachableError } = await import("../ingest/src/errors.ts");
const ingest = await startIngest(config).catch(async (err) => {
  if (!(err instanceof UnreachableError)) throw err;
  // One line: which service, at which address (docs/OPERATIONS.md, "Start-up").
  console.error(`npm start: ${err.message}`);
  await stopKinesis?.().catch(() => {});
  process.exit(1);
});

/** Loader processes: `node --import tsx ingest/src/main.ts`, waiting for each one's "listening" line. */
const children: { proc: ChildProcess; url: string; dataDir: string }[] = [];
for (let i = 0; i < loaders; i++) {
  const dataDir = join(config.DATA_DIR, `loader-${i}`);
  const proc = spawn(process.execPath, ["--import", "tsx", resolve(import.meta.dirname, "../ingest/src/main.ts")], {
    env: { ...process.env, PIPELINE_ROLES: "loader", PORT: "0", DATA_DIR: dataDir, ADMIN_API_KEY: ingest.adminKey },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((done, fail) => {
    let out = "";
    const read = (d: Buffer) => {
      out += d;
      const m = /ingest listening on (\S+)/.exec(out);
      if (m) {
        proc.stdout!.off("data", read);
        done(m[1]!);
      }
    };
    proc.stdout!.on("data", read);
    proc.once("exit", (code) => fail(new Error(`loader ${i} exited during start-up (${code}):\n${out}`)));
  });
  proc.stdout!.pipe(process.stdout);
  proc.once("exit", (code, signal) => !stopping && console.error(`loader ${i} (pid ${proc.pid}) exited (${code ?? signal}); its shards pass to the others when its leases expire`));
  children.push({ proc, url, dataDir });
}
const edge = await startEdge({
  port: edgePort,
  host,
  persistDir: resolve(join(config.DATA_DIR, "kv")),
  vars: {
    INGEST_URL: ingest.url,
    EDGE_SECRET: config.EDGE_SECRET,
    ...(config.EDGE_SECRET_PREVIOUS && { EDGE_SECRET_PREVIOUS: config.EDGE_SECRET_PREVIOUS }),
    ALLOW_PRIVATE_DESTINATIONS: config.ALLOW_PRIVATE_DESTINATIONS,
  },
  verbose: true,
  ...(process.env.EDGE_INSPECTOR_PORT && { inspectorPort: Number(process.env.EDGE_INSPECTOR_PORT) }),
});

const masked = ingest.databaseUrl.replace(/\/\/([^:@/]+):[^@/]+@/, "//$1:***@");
console.log(`
Linkflow is running
  edge (redirects)   ${edge.url}/<code>
  dashboard          ${ingest.url}/           (sign in with the admin key)
  ingest (API)       ${ingest.url}/api    reference: ${ingest.url}/docs
  PostgreSQL         ${config.DATABASE_URL ? masked : `${masked}   (embedded PGlite in ${join(config.DATA_DIR, "pglite")}; on 127.0.0.1 only: it accepts any user, no password)`}
  admin API key      ${adminKeyFile ? `${ingest.adminKey}   (kept in ${adminKeyFile})` : "from ADMIN_API_KEY"}
  secrets            ${secretFiles.length ? `${secretFiles.join(", ")} (mode 0600; set EDGE_SECRET / ADMIN_API_KEY to use your own)` : "from the environment"}

${
  loaders
    ? `Processes (${loaders + 1}):
  ingest             pid ${process.pid}  roles ${config.PIPELINE_ROLES || "(HTTP only)"}
${children.map((c, i) => `  loader ${i}           pid ${c.proc.pid}  ${c.url}/metrics  data ${c.dataDir}`).join("\n")}
  Kinesis            ${config.KINESIS_ENDPOINT ?? `AWS ${config.AWS_REGION}`}   ClickHouse ${config.CLICKHOUSE_URL}

`
    : ""
}Try:
  curl -s -X POST ${ingest.url}/api/links -H "Authorization: Bearer ${adminKeyFile ? `$(cat ${adminKeyFile})` : "$ADMIN_API_KEY"}" \\
       -H 'content-type: application/json' -d '{"url":"https://example.com"}'
  curl -sI ${edge.url}/<code>
Ctrl-C stops everything.
`);

async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping…`);
  // Edge first, so no new beacons arrive while ingest drains its last requests.
  await edge.close().catch(() => {});
  // Loaders release their shard leases on SIGTERM.
  await Promise.all(
    children.map((c) => (c.proc.exitCode !== null || c.proc.signalCode !== null ? undefined : new Promise((r) => c.proc.once("exit", r).kill("SIGTERM")))),
  );
  await ingest.close().catch(() => {});
  await stopKinesis?.().catch(() => {});
  process.exit(0);
}
// Miniflare's own SIGINT handler kills workerd and exits at once (code 130), before ingest could
// finish its requests and close PGlite; take the signal over (workerd is still killed on exit).
process.removeAllListeners("SIGINT");
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
