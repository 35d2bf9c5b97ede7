import { createHash } from "node:crypto";
import type { Sql } from "../db/connect.ts";

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
