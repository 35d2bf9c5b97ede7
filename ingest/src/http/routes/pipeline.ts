import { apiRouter, bearerSecurity } from "../openapi.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { requireScope } from "../auth.ts";
import type { Sql } from "../../db/connect.ts";
import { ApiError } from "../errors.ts";
import type { PipelineStatus } from "../../pipeline/index.ts";
import { EDGE_DEAD_LETTER_SOURCE } from "../../clicks/dead-letters.ts";
import { errorResponses, json } from "../api-router.ts";
import { parseJson } from "../validate.ts";

const replaySchema = z
  .object({ ids: z.array(z.number().int().positive()).max(10_000).optional().openapi({ description: "dead letters to replay; absent: all" }) })
  .strict()
  .openapi("DeadLetterReplayRequest");
const lagQuery = z.object({ since: z.iso.datetime({ offset: true }).openapi({ description: "clicks committed since this instant (ISO 8601)" }) });
// An out-of-range value falls back to the default (the route never refused one).
const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100).catch(100).openapi({ type: "integer", minimum: 1, maximum: 1000, default: 100 }),
  after: z.coerce.number().int().min(0).default(0).catch(0).openapi({ type: "integer", minimum: 0, default: 0, description: "the next_after of the previous page" }),
});

const Lag = z.object({ clicks: z.number().int(), p50_ms: z.number(), p99_ms: z.number(), max_ms: z.number() }).openapi("PipelineLag");
const PipelineStatusSchema = z
  .object({
    postgres_clicks: z.number().int(),
    kinesis_sent: z.number().int().openapi({ description: "outbox rows confirmed sent (a batch re-sent after a crash counts once)" }),
    clickhouse_clicks: z.number().int().nullable().openapi({ description: "distinct click_ids in ClickHouse (null: this process has no ClickHouse, or it failed)" }),
    clickhouse_rows: z.number().int(),
    outbox_backlog: z.number().int(),
    dlq: z.number().int().openapi({ description: "dead letters not replayed" }),
    edge_dead_letters: z.number().int().openapi({ description: "of those, clicks from the worker's dead-letter queue that ingest refuses as invalid (not replayable through the outbox)" }),
    clicks_missing: z.number().int().openapi({ description: "clicks the completeness check found missing and still missing: numbers of a worker isolate's click sequence that never arrived, once settled (docs/PIPELINE.md, \"Completeness check\")" }),
    clicks_late: z.number().int().openapi({ description: "clicks found missing that arrived after all (a running total)" }),
    breakers: z.record(z.string(), z.enum(["closed", "open", "half_open"])),
    shards: z.array(
      z.object({
        shard_id: z.string(),
        sequence_number: z.string().nullable(),
        owner: z.string().nullable(),
        lease_until: z.string(),
        finished: z.boolean(),
        millis_behind_latest: z.number().nullable().openapi({ description: "when this process's loader reads the shard" }),
      }),
    ),
    rates: z.object({ kinesis_sent_per_s: z.number().nullable(), clickhouse_rows_per_s: z.number().nullable(), window_s: z.number().int() }),
    loader_lag: Lag.nullable().openapi({ description: "PostgreSQL commit → ClickHouse of the clicks of the last 5 minutes (null: no ClickHouse here)" }),
  })
  .openapi("PipelineStatus");
const DeadLetter = z
  .object({
    id: z.number().int(),
    source: z.string(),
    shard_id: z.string().nullable(),
    sequence_number: z.string().nullable(),
    partition_key: z.string(),
    payload: z.string().openapi({ description: "the record's bytes as UTF-8 text (lossy if they are not UTF-8)" }),
    payload_base64: z.string().openapi({ description: "the record's bytes, exactly" }),
    error: z.string(),
    created_at: z.string(),
  })
  .openapi("DeadLetter");

export interface PipelineRoutesDeps {
  sql: Sql;
  /** The pipeline's counters, breakers and shards (pipeline/index.ts `status`). */
  status: () => Promise<PipelineStatus>;
  /** End-to-end lag since an instant; null when this process has no ClickHouse. */
  lag: (since: Date) => Promise<z.infer<typeof Lag> | null>;
  /** Replays the worker's dead letters (clicks/dead-letters.ts replayEdgeDeadLetters): checked again, stored if valid now. */
  replayEdge: (ids: number[] | null) => Promise<number>;
}

const tags = ["pipeline"];
const security = bearerSecurity;

/**
 * GET /api/pipeline, GET /api/pipeline/dlq, POST /api/pipeline/dlq/replay: instance-wide (every
 * workspace's dead letters), so the operator scope, which a workspace admin does not have.
 */
export function pipelineRoutes({ sql, status, lag, replayEdge }: PipelineRoutesDeps) {
  const app = apiRouter();
  app.use(requireScope(sql, "operator"));
  app.openapi(
    createRoute({ method: "get", path: "/", operationId: "getPipelineStatus", summary: "Pipeline health: counters, backlog, dead letters, breakers, shards, rates, lag", tags, security, responses: { 200: json(PipelineStatusSchema, "the pipeline's state"), ...errorResponses(401, 403, 429) } }),
    // lease_until is a Date here; c.json serialises it as the ISO string the schema says.
    async (c) => c.json((await status()) as unknown as z.infer<typeof PipelineStatusSchema>, 200),
  );
  // End-to-end lag of the clicks committed since `since`: PostgreSQL commit → row in ClickHouse.
  app.openapi(
    createRoute({ method: "get", path: "/lag", operationId: "getPipelineLag", summary: "End-to-end lag (PostgreSQL commit → ClickHouse) of the clicks since an instant", tags, security, request: { query: lagQuery }, responses: { 200: json(Lag, "percentiles of the lag"), ...errorResponses(400, 401, 403, 429, 503) } }),
    async (c) => {
      const result = await lag(new Date(c.req.valid("query").since));
      if (!result) throw new ApiError(503, "unavailable", "this process has no ClickHouse connection");
      return c.json(result, 200);
    },
    // This route's own message for a missing or unparsable `since`.
    (result) => {
      if (!result.success) throw new ApiError(400, "invalid_query", "since must be an ISO 8601 time", "since");
      return undefined;
    },
  );
  app.openapi(
    createRoute({ method: "get", path: "/dlq", operationId: "listDeadLetters", summary: "Dead letters not yet replayed (every workspace's), oldest first", tags, security, request: { query: listQuery }, responses: { 200: json(z.object({ items: z.array(DeadLetter), next_after: z.number().int().nullable() }), "one page"), ...errorResponses(401, 403, 429) } }),
    async (c) => {
      const { limit, after } = c.req.valid("query");
      const items = await sql`
        SELECT id, source, shard_id, sequence_number, partition_key, payload, error, created_at
        FROM dead_letters WHERE replayed_at IS NULL AND id > ${after} ORDER BY id LIMIT ${limit}`;
      // payload: the bytes as text (lossy if they are not UTF-8); payload_base64: exactly.
      const out = items.map((r) => ({ ...r, id: Number(r.id), payload: (r.payload as Buffer).toString("utf8"), payload_base64: (r.payload as Buffer).toString("base64") }));
      return c.json({ items: out as z.infer<typeof DeadLetter>[], next_after: items.length === limit ? out.at(-1)!.id : null }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: "post",
      path: "/dlq/replay",
      operationId: "replayDeadLetters",
      summary: "Put dead letters back into the outbox (all, or the ids given)",
      description: "Clicks the worker's dead-letter queue handed over (source edge_queue) do not go to the outbox: each is checked again and stored if valid now (idempotent on click_id); the others stay.",
      tags,
      security,
      // Documented here, parsed by the handler: an empty body (of any content type) means "all".
      request: { body: { content: { "application/json": { schema: { $ref: "#/components/schemas/DeadLetterReplayRequest" } } }, required: false } },
      responses: { 200: json(z.object({ replayed: z.number().int() }), "how many went back to the outbox"), ...errorResponses(400, 401, 403, 413, 429) },
    }),
    async (c) => {
      const raw = await c.req.text();
      const { ids } = raw.trim() ? parseJson(replaySchema, raw) : {};
      // Back into the outbox, so a replayed record takes the normal path (Kinesis → loader),
      // marked replayed: it was handed to webhooks when first forwarded, and is not again;
      // if its cause is not fixed it simply lands in the dead-letter table again. Clicks the
      // worker's dead-letter queue handed over (edge_queue) never passed ingest's checks: the
      // outbox is not their way in; they are checked again and stored like a beacon's clicks.
      const [{ n }] = (await sql`
        WITH moved AS (
          UPDATE dead_letters SET replayed_at = now()
          WHERE replayed_at IS NULL AND source <> ${EDGE_DEAD_LETTER_SOURCE} AND (${ids ?? null}::bigint[] IS NULL OR id = ANY(${ids ?? null}::bigint[]))
          RETURNING partition_key, payload)
        , ins AS (INSERT INTO outbox (partition_key, data, replayed) SELECT partition_key, payload, true FROM moved RETURNING 1)
        SELECT count(*)::int AS n FROM ins`) as unknown as [{ n: number }];
      return c.json({ replayed: n + (await replayEdge(ids ?? null)) }, 200);
    },
  );
  // The replay body's schema, referenced above (not attached to the route: no validator).
  app.openAPIRegistry.register("DeadLetterReplayRequest", replaySchema);
  return app;
}
