import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { body, eventually, freePort, json } from "./helpers.ts";

/** `npm start` as a user runs it: embedded PGlite, workerd, printed key and URLs. */

interface Running {
  proc: ChildProcess;
  out: () => string;
  key: string;
  pgUrl: string;
}

let dataDir: string;
let ports: { edge: number; ingest: number };

async function start(): Promise<Running> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: String(ports.ingest), EDGE_PORT: String(ports.edge), LOG_LEVEL: "warn" };
  for (const k of ["DATABASE_URL", "ADMIN_API_KEY", "SHORT_BASE_URL", "EDGE_ADMIN_URL"]) delete env[k];
  const proc = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const ready = await eventually(async () => out.includes("Ctrl-C stops everything") || proc.exitCode !== null, 45_000, 100);
  if (!ready || proc.exitCode !== null) throw new Error(`npm start did not come up:\n${out}`);
  const key = /admin API key\s+(lf_\S+)/.exec(out)?.[1];
  const pgUrl = /PostgreSQL\s+(postgres:\/\/\S+)/.exec(out)?.[1];
  if (!key || !pgUrl) throw new Error(`banner lacks key or database URL:\n${out}`);
  return { proc, out: () => out, key, pgUrl };
}

async function stop(r: Running): Promise<number | null> {
  r.proc.kill("SIGINT");
  await eventually(async () => r.proc.exitCode !== null, 15_000, 50);
  return r.proc.exitCode;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "linkflow-start-"));
  ports = { edge: await freePort(), ingest: await freePort() };
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

describe("npm start (embedded defaults)", () => {
  it("serves the whole slice, keeps data across a restart, and stops cleanly on Ctrl-C", async () => {
    let r = await start();
    expect(r.out()).toContain(`http://127.0.0.1:${ports.edge}/<code>`);
    const created = await fetch(`http://127.0.0.1:${ports.ingest}/api/links`, {
      method: "POST",
      headers: json(r.key),
      body: JSON.stringify({ url: "https://example.com/started" }),
    });
    expect(created.status).toBe(201);
    const link = await body(created);
    expect(link.short_url).toBe(`http://localhost:${ports.edge}/${link.code}`);

    // A HEAD first (the same redirect, not a click), then 100 GETs: 100 clicks.
    for (let i = 0; i <= 100; i++) {
      const res = await fetch(`http://127.0.0.1:${ports.edge}/${link.code}`, { method: i === 0 ? "HEAD" : "GET", redirect: "manual" });
      expect(res.status).toBe(302);
      expect(res.headers.get("location")).toBe("https://example.com/started");
    }
    // Read the embedded database through its socket, as psql would: the simple query protocol
    // (pglite-socket multiplexes connections per message, so extended-protocol sequences of two
    // clients could interleave).
    const pg = postgres(r.pgUrl, { max: 1, onnotice: () => {} });
    try {
      const n = async () => Number((await pg.unsafe(`SELECT count(*) AS n FROM clicks WHERE code = '${link.code}'`).simple())[0]!.n);
      expect(await eventually(async () => (await n()) >= 100, 15_000)).toBe(true);
      expect(await n()).toBe(100);
      // …and the embedded pipeline (kinesalite, chDB) carried all of them to ClickHouse.
      const pipeline = async () => body(await fetch(`http://127.0.0.1:${ports.ingest}/api/pipeline`, { headers: json(r.key) }));
      expect(await eventually(async () => (await pipeline()).clickhouse_clicks === 100, 20_000, 200)).toBe(true);
      expect(await pipeline()).toMatchObject({ postgres_clicks: 100, kinesis_sent: 100, outbox_backlog: 0, dlq: 0 });
    } finally {
      await pg.end();
    }
    expect(await stop(r)).toBe(0);

    // Same data folder: same key, same link, still redirecting.
    r = await start();
    try {
      const again = await fetch(`http://127.0.0.1:${ports.ingest}/api/links/${link.id}`, { headers: json(r.key) });
      expect(again.status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${ports.edge}/${link.code}`, { redirect: "manual" })).status).toBe(302);
    } finally {
      expect(await stop(r)).toBe(0);
    }
  }, 120_000);
});
