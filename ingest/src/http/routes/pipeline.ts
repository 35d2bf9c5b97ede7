import { Hono } from "hono";
import { z } from "zod";
import { requireScope, type AuthVars } from "../auth.ts";
import type { Sql } from "../../db/connect.ts";
import { ApiError } from "../errors.ts";
import type { Pipeline } from "../../pipeline/index.ts";
import { parseJson } from "../validate.ts";

const replaySchema = z.object({ ids: z.array(z.number().int().positive()).max(10_000).optional() }).strict();
const lagQuery = z.object({ since: z.iso.datetime({ offset: true }) });
const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.coerce.number().int().min(0).default(0),
});

/**
 * GET /api/pipeline, GET /api/pipeline/dlq, POST /api/pipeline/dlq/replay: instance-wide (every
 * workspace's dead letters), so the operator scope, which a workspace admin does not have.
 */
export function pipelineRoutes(sql: Sql, pipeline: Pipeline) {
  return new Hono<{ Variables: AuthVars }>()
    .use(requireScope(sql, "operator"))
    .get("/", async (c) => c.json(await pipeline.status()))
    // End-to-end lag of the clicks committed since `since`: PostgreSQL commit → row in ClickHouse.
    .get("/lag", async (c) => {
      const q = lagQuery.safeParse(c.req.query());
      if (!q.success) throw new ApiError(400, "invalid_query", "since must be an ISO 8601 time", "since");
      const lag = await pipeline.lag(new Date(q.data.since));
      if (!lag) throw new ApiError(503, "unavailable", "this process has no ClickHouse connection");
      return c.json(lag);
    })
    .get("/dlq", async (c) => {
      const q = listQuery.safeParse(c.req.query());
      const { limit, after } = q.success ? q.data : { limit: 100, after: 0 };
      const items = await sql`
        SELECT id, source, shard_id, sequence_number, partition_key, payload, error, created_at
        FROM dead_letters WHERE replayed_at IS NULL AND id > ${after} ORDER BY id LIMIT ${limit}`;
      // payload: the bytes as text (lossy if they are not UTF-8); payload_base64: exactly.
      const out = items.map((r) => ({ ...r, id: Number(r.id), payload: (r.payload as Buffer).toString("utf8"), payload_base64: (r.payload as Buffer).toString("base64") }));
      return c.json({ items: out, next_after: items.length === limit ? out.at(-1)!.id : null });
    })
    .post("/dlq/replay", async (c) => {
      const raw = await c.req.text();
      const { ids } = raw.trim() ? parseJson(replaySchema, raw) : {};
      // Back into the outbox, so a replayed record takes the normal path (Kinesis → loader);
      // if its cause is not fixed it simply lands in the dead-letter table again.
      const [{ n }] = (await sql`
        WITH moved AS (
          UPDATE dead_letters SET replayed_at = now()
          WHERE replayed_at IS NULL AND (${ids ?? null}::bigint[] IS NULL OR id = ANY(${ids ?? null}::bigint[]))
          RETURNING partition_key, payload)
        , ins AS (INSERT INTO outbox (partition_key, data) SELECT partition_key, payload FROM moved RETURNING 1)
        SELECT count(*)::int AS n FROM ins`) as unknown as [{ n: number }];
      return c.json({ replayed: n });
    });
}
