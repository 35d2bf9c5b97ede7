import { createHash } from "node:crypto";
import type { ClickEvent } from "../../../shared/event.ts";
import type { Sql } from "../db/connect.ts";
import { isDomainError } from "../errors.ts";
import { eventSchema, outOfWindow, storable } from "./events.ts";
import type { LinkGuard } from "./link-guard.ts";

/** dead_letters.source of the clicks the worker's dead-letter queue handed over (edge/src/dead-letters.ts). */
export const EDGE_DEAD_LETTER_SOURCE = "edge_queue";

export interface DeadClick {
  /** The item as the worker sent it (JSON text). */
  payload: string;
  /** Why ingest refused it. */
  error: string;
}

/**
 * Records clicks ingest refused as invalid, handed over by the worker's dead-letter queue
 * consumer, in `dead_letters` (source edge_queue). One row per click: the key is its click_id
 * (or, without one, a hash of its bytes), so the same click handed over again is recorded once.
 * `GET /api/pipeline` counts the open ones (edge_dead_letters); GET /api/pipeline/dlq lists them.
 */
export function deadClickRecorder(sql: Sql) {
  return async function recordDeadClicks(items: DeadClick[]): Promise<number> {
    if (!items.length) return 0;
    const keys = items.map(({ payload }) => {
      let id: unknown;
      try {
        id = (JSON.parse(payload) as { click_id?: unknown }).click_id;
      } catch {
        id = undefined;
      }
      return typeof id === "string" && id.length <= 100 ? id : `sha256:${createHash("sha256").update(payload).digest("hex")}`;
    });
    const rows = await sql`
      INSERT INTO dead_letters (source, shard_id, sequence_number, partition_key, payload, error)
      SELECT ${EDGE_DEAD_LETTER_SOURCE}, 'edge', k, k, convert_to(p, 'UTF8'), e
      FROM unnest(${keys}::text[], ${items.map((i) => i.payload)}::text[], ${items.map((i) => i.error)}::text[]) AS t(k, p, e)
      ON CONFLICT (source, shard_id, sequence_number) DO NOTHING
      RETURNING 1`;
    return rows.length;
  };
}

/**
 * Checks clicks one by one as a beacon's would be (schema, time window, link): the valid ones
 * to store, the others with ingest's reason. Used for what the worker's dead-letter queue hands
 * over and for an operator's replay of those dead letters (the cause may be fixed by then: a
 * newer ingest that knows the event version, a link restored).
 */
export async function recheckClicks(items: unknown[], mismatched: LinkGuard): Promise<{ valid: ClickEvent[]; dead: DeadClick[] }> {
  const valid: ClickEvent[] = [];
  const dead: DeadClick[] = [];
  for (const item of items) {
    let error: string | null = null;
    try {
      const parsed = eventSchema.safeParse(item);
      if (!parsed.success) error = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
      else {
        const e = storable(parsed.data);
        error = outOfWindow([e]) ?? ((await mismatched([e])).length ? `link ${e.link_id} is not the link at '${e.domain}/${e.code}'` : null);
        if (!error) valid.push(e);
      }
    } catch (err) {
      if (!isDomainError(err)) throw err;
      error = err.message;
    }
    if (error) dead.push({ payload: JSON.stringify(item), error });
  }
  return { valid, dead };
}

/**
 * The operator's replay of the worker's dead letters (POST /api/pipeline/dlq/replay): each is
 * checked again; those valid now are stored (idempotent on click_id) and marked replayed, the
 * others stay open with the new reason. Returns how many were replayed.
 */
export async function replayEdgeDeadLetters(
  sql: Sql,
  deps: { store: (events: ClickEvent[]) => Promise<Set<string>>; mismatched: LinkGuard },
  ids: number[] | null,
): Promise<number> {
  const rows = await sql<{ id: string; payload: Buffer }[]>`
    SELECT id, payload FROM dead_letters
    WHERE replayed_at IS NULL AND source = ${EDGE_DEAD_LETTER_SOURCE} AND (${ids}::bigint[] IS NULL OR id = ANY(${ids}::bigint[]))
    ORDER BY id LIMIT 10000`;
  const items = rows.map((r) => {
    try {
      return JSON.parse(r.payload.toString("utf8")) as unknown;
    } catch {
      return null;
    }
  });
  const { valid } = await recheckClicks(items, deps.mismatched);
  if (!valid.length) return 0;
  await deps.store(valid);
  const ok = new Set(valid.map((e) => e.click_id));
  const done = rows.filter((_, i) => ok.has((items[i] as { click_id?: string } | null)?.click_id ?? "")).map((r) => r.id);
  await sql`UPDATE dead_letters SET replayed_at = now() WHERE id = ANY(${done}::bigint[])`;
  return done.length;
}
