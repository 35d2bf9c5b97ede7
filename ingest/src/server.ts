import { join } from "node:path";
import { serve } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { keyRing } from "../../shared/keys.ts";
import { createApp } from "./http/app.ts";
import type { Config } from "./config.ts";
import { connect, type Sql } from "./db/connect.ts";
import { edgeSync, requeuePasswordLinks } from "./links/edge-sync.ts";
import { applyPrivacy } from "./clicks/privacy.ts";
import { createEnforcer } from "./pipeline/enforcer.ts";
import { groupCommitter } from "./clicks/group-commit.ts";
import { startEmbeddedPostgres } from "./db/embedded-pg.ts";
import { ensureKey } from "./auth/keys.ts";
import { reaching } from "./errors.ts";
import { createMetrics } from "./metrics.ts";
import { migrate } from "./db/migrate.ts";
import { startPipeline, type Pipeline, type PipelineExtras } from "./pipeline/index.ts";

export interface Ingest {
  url: string;
  sql: Sql;
  adminKey: string;
  databaseUrl: string;
  pipeline: Pipeline;
  close: () => Promise<void>;
}

/** Starts ingest: database (embedded if DATABASE_URL is unset), migrations, bootstrap key, HTTP. */
export async function startIngest(config: Config, opts: { schema?: string; pipeline?: PipelineExtras } = {}): Promise<Ingest> {
  const log = pino({ level: config.LOG_LEVEL, base: { svc: "ingest" } });
  const embedded = config.DATABASE_URL ? null : await startEmbeddedPostgres(join(config.DATA_DIR, "pglite"));
  const databaseUrl = config.DATABASE_URL ?? embedded!.url;
  const poolMax = embedded ? 1 : config.DATABASE_POOL_MAX;
  const sql = connect(databaseUrl, { max: poolMax, schema: opts.schema });
  // The first query: an unreachable DATABASE_URL says so in one line (errors.ts, main.ts).
  const applied = await reaching(config.DATABASE_URL ? "PostgreSQL (DATABASE_URL)" : "the embedded PostgreSQL (PGlite)", databaseUrl, () => migrate(sql)).catch(async (err) => {
    await sql.end({ timeout: 1 }).catch(() => {});
    await embedded?.stop().catch(() => {});
    throw err;
  });
  if (applied.length) log.info({ applied }, "migrations applied");

  const adminKey = config.ADMIN_API_KEY;
  // The root key: its workspace's admin and the instance's operator (pipeline, every tenant's SRE view).
  await ensureKey(sql, adminKey, "bootstrap admin", ["admin", "operator"]);
  // The current secret's keys sign; the previous one's are accepted too while it is set.
  const ring = await keyRing(config.EDGE_SECRET, config.EDGE_SECRET_PREVIOUS);
  const keys = ring[0]!;

  const metrics = createMetrics();
  const pipeline = await startPipeline(config, sql, log, metrics, opts.pipeline).catch(async (err) => {
    // A dependency unreachable at start-up: close PostgreSQL (PGlite's folder stays clean) first.
    await sql.end({ timeout: 1 }).catch(() => {});
    await embedded?.stop().catch(() => {});
    throw err;
  });
  // Leave connections for the API and the pipeline workers.
  const privacy = {
    anonymizeIp: config.IP_ANONYMIZE === "true",
    respectDnt: config.RESPECT_DNT === "true",
    // The derived key as hex text: the salt HMAC's key either way is a string.
    saltSecret: config.VISITOR_SALT_SECRET ?? Buffer.from(keys.visitorSalt).toString("hex"),
  };
  const commitClicks = groupCommitter(sql, { maxInFlight: Math.max(1, Math.min(config.GROUP_COMMIT_LANES, poolMax - 3)) });
  const pushEdge = edgeSync(config.EDGE_ADMIN_URL, keys, log, { sql, retryMs: config.EDGE_SYNC_RETRY_MS });
  // During a rotation the worker may soon drop the previous secret: re-push the records whose
  // password verifier was sealed with its key (the retry loop sends each key's current record).
  if (config.EDGE_SECRET_PREVIOUS && config.EDGE_ADMIN_URL) await requeuePasswordLinks(sql);
  pushEdge.start();
  const enforcer =
    pipeline.roles.has("maintenance") && pipeline.ch
      ? createEnforcer({
          sql,
          ch: pipeline.ch,
          database: config.CLICKHOUSE_DATABASE,
          intervalMs: config.CLICK_LIMIT_INTERVAL_MS,
          log,
          republish: pushEdge.pushLinks,
        })
      : undefined;
  enforcer?.start();
  const app = createApp({
    sql,
    config,
    keys: ring,
    log,
    metrics,
    pipeline,
    // The privacy step first (the visitor hash needs the full IP), then the group commit.
    storeClicks: async (received) => {
      const events = received.map((e) => applyPrivacy(e, privacy));
      const inserted = await commitClicks(events);
      metrics.clicksStored.inc(inserted.size);
      // One inc per tier, not per click (each inc hashes its labels).
      const tiers = new Map<string, number>();
      for (const e of events) if (inserted.has(e.click_id)) tiers.set(e.cache_tier, (tiers.get(e.cache_tier) ?? 0) + 1);
      for (const [cache_tier, n] of tiers) metrics.edgeClicks.inc({ cache_tier }, n);
      return inserted;
    },
    pushEdge,
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${config.HOST}:${port}`,
    sql,
    adminKey,
    databaseUrl,
    pipeline,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await enforcer?.stop();
      await pushEdge.stop();
      await pipeline.stop();
      await sql.end({ timeout: 5 });
      await embedded?.stop();
    },
  };
}
