/**
 * One fault scenario's world: a fresh database on the PostgreSQL server (optionally behind a TCP
 * fault-injection proxy), kinesalite in this test process (it survives ingest kills) behind a
 * TCP fault-injection proxy, a data folder (chDB lives there, inside ingest), ingest's port.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { generateKey } from "../../ingest/src/auth/keys.ts";
import { startEmbeddedKinesis } from "../../ingest/src/pipeline/embedded-kinesis.ts";
import { kinesisClient } from "../../ingest/src/pipeline/kinesis.ts";
import { DATABASE_URL, freePort, TcpProxy } from "../helpers.ts";

export { freePort };

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

/** kinesalite as ingest reaches it: through the scenario's proxy. */
export const kinesisEndpoint = (s: Scenario) => `http://127.0.0.1:${s.kinesisProxy.port}`;

/** A Kinesis client for the scenario's stream (the caller destroys it). */
export const scenarioKinesis = (s: Scenario) => kinesisClient({ endpoint: kinesisEndpoint(s) });
