import { spawn } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import { DATABASE_URL, EDGE_SECRET } from "./helpers.ts";
import { generateKey } from "../ingest/src/auth/keys.ts";

/**
 * A wrong address at start-up (issue 18, item 7): ingest (`npm run ingest`) with an unreachable
 * DATABASE_URL, CLICKHOUSE_URL or KINESIS_ENDPOINT says in one line which service could not be
 * reached at which address, and exits 1: no stack trace. Real processes, a real closed port.
 */
const closedPort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });

/** What ingest printed of its own (the AWS SDK may add a Node version warning of its own on Node 20), and no stack trace. */
function said(stderr: string) {
  expect(stderr).not.toMatch(/^\s+at /m);
  return stderr.split("\n").filter((l) => l.startsWith("ingest:"));
}

function runIngest(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ["--import", "tsx", "ingest/src/main.ts"], {
      env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp", EDGE_SECRET, ADMIN_API_KEY: generateKey(), PORT: "0", LOG_LEVEL: "silent", PIPELINE_ROLES: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (c) => (stdout += c));
    proc.stderr.on("data", (c) => (stderr += c));
    // A process that started after all is a failure of the test: stop it.
    proc.stdout.on("data", () => stdout.includes("listening") && proc.kill("SIGTERM"));
    proc.on("exit", (code) => resolve({ code, stderr, stdout }));
  });
}

// The ClickHouse and Kinesis cases need a PostgreSQL that answers: a database of their own.
const dbName = `linkflow_reach_${process.pid}`;
const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
const ownDb = () => {
  const u = new URL(DATABASE_URL);
  u.pathname = `/${dbName}`;
  return u.toString();
};
beforeAll(async () => {
  await admin.unsafe(`CREATE DATABASE ${dbName}`);
});
afterAll(async () => {
  await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
});

describe("an unreachable service at start-up: one line, exit 1", () => {
  it("DATABASE_URL", async () => {
    const port = await closedPort();
    const r = await runIngest({ DATABASE_URL: `postgres://postgres:secret@127.0.0.1:${port}/linkflow` });
    expect(r.code).toBe(1);
    // The address without its password.
    expect(said(r.stderr)).toEqual([`ingest: cannot reach PostgreSQL (DATABASE_URL) at postgres://127.0.0.1:${port}/linkflow (ECONNREFUSED)`]);
  }, 60_000);

  it("CLICKHOUSE_URL", async () => {
    const port = await closedPort();
    const r = await runIngest({ DATABASE_URL: ownDb(), CLICKHOUSE_URL: `http://127.0.0.1:${port}` });
    expect(r.code).toBe(1);
    expect(said(r.stderr)).toEqual([`ingest: cannot reach ClickHouse (CLICKHOUSE_URL) at http://127.0.0.1:${port}/ (ECONNREFUSED)`]);
  }, 60_000);

  it("KINESIS_ENDPOINT", async () => {
    const port = await closedPort();
    const r = await runIngest({ DATABASE_URL: ownDb(), PIPELINE_ROLES: "forwarder", KINESIS_ENDPOINT: `http://127.0.0.1:${port}`, AWS_ACCESS_KEY_ID: "x", AWS_SECRET_ACCESS_KEY: "x" });
    expect(r.code).toBe(1);
    expect(said(r.stderr)).toEqual([`ingest: cannot reach Kinesis (KINESIS_ENDPOINT) at http://127.0.0.1:${port}/ (ECONNREFUSED)`]);
  }, 60_000);
});
