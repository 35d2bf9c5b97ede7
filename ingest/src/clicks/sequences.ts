import { MAX_CLICK_AGE_MS } from "../../../shared/constants.ts";
import type { Sql } from "../db/connect.ts";

/**
 * The completeness check (docs/PIPELINE.md, "Completeness check"). Every click of click event
 * version 3 carries its worker isolate's id and its number there (1, 2, 3, …). The click insert
 * (store.ts) keeps, per isolate and block of BLOCK numbers, how many distinct numbers were stored
 * and the highest (fresh rows only: a redelivery changes nothing). A number that never arrived
 * is a missing click, counted once it can no longer be a click still on its way:
 *
 * - a block is settled when no click arrived for it for `windowMs` (CLICKS_MISSING_WINDOW_MS)
 *   and its isolate has clicks in a later block: BLOCK - stored of it are missing; a block of
 *   which nothing arrived, below a settled one (or below the isolate's first), is BLOCK missing;
 * - an isolate quiet for longer than any click can take (MAX_CLICK_AGE_MS + 5 min; ingest
 *   refuses an older click) has its last block settled too: the numbers below its highest
 *   stored one that never arrived are missing; then its rows are deleted.
 *
 * Missing clicks are added to `clicks_missing` (a running total, never lowered); a click that
 * arrives for a block after it was settled is added to `clicks_late`. Lost = missing - late.
 * Clicks after an isolate's last stored one (an isolate killed with clicks still batching) leave
 * no gap that can be seen: nothing later arrives.
 */
export const BLOCK = 256;
/** How long a quiet isolate's rows are kept: no click of it can be accepted after that. */
export const ISOLATE_QUIET_MS = MAX_CLICK_AGE_MS + 5 * 60_000;

export interface Completeness {
  /** Clicks found missing (a running total). */
  missing_total: number;
  /** Of those, clicks that arrived after all (a running total). */
  late_total: number;
}

export async function completeness(sql: Sql): Promise<Completeness> {
  const rows = await sql<{ name: string; n: string }[]>`
    SELECT name, sum(value) AS n FROM pipeline_counters WHERE name IN ('clicks_missing', 'clicks_late') GROUP BY name
    UNION ALL
    SELECT 'clicks_late_unfolded', coalesce(sum(late), 0) FROM click_sequences`;
  const get = (name: string) => Number(rows.find((r) => r.name === name)?.n ?? 0);
  return { missing_total: get("clicks_missing"), late_total: get("clicks_late") + get("clicks_late_unfolded") };
}

/**
 * Settles what can be settled (see above); returns how many clicks it found missing and late
 * this time. One settler at a time across all ingest processes (an advisory lock; a second
 * caller returns at once). Called every 5 s by each ingest (pipeline/index.ts, with the rates'
 * sample) and with each GET /api/pipeline and /metrics scrape.
 */
export async function settleSequences(sql: Sql, windowMs: number, quietMs = ISOLATE_QUIET_MS): Promise<{ missing: number; late: number } | null> {
  return sql.begin(async (tx) => {
    const [lock] = await tx<{ ok: boolean }[]>`SELECT pg_try_advisory_xact_lock(hashtext('linkflow:click_sequences')) AS ok`;
    if (!lock?.ok) return null;
    // The blocks to settle, and per block whether an earlier settle already counted it (then
    // what it gets now is late). The counts come from the UPDATE's RETURNING: the rows as they
    // are when marked, including a click stored a moment before.
    const [r] = await tx<{ missing: string; late: string }[]>`
      WITH iso AS (
        SELECT isolate_id, max(block) AS top, max(last_at) < now() - make_interval(secs => ${quietMs / 1000}::float8) AS quiet
        FROM click_sequences GROUP BY isolate_id
      ), cand AS (
        SELECT s.isolate_id, s.block, bool_or(s.settled) AS was, max(i.top) AS top, bool_or(i.quiet) AS quiet
        FROM click_sequences s JOIN iso i USING (isolate_id)
        GROUP BY s.isolate_id, s.block
        HAVING bool_or(NOT s.settled)
           AND (bool_or(i.quiet) OR (max(s.last_at) < now() - make_interval(secs => ${windowMs / 1000}::float8) AND s.block < max(i.top)))
      ), marked AS (
        UPDATE click_sequences s SET settled = true FROM cand c
        WHERE s.isolate_id = c.isolate_id AND s.block = c.block AND NOT s.settled
        RETURNING s.isolate_id, s.block, s.seen, s.max_seq
      ), per_block AS (
        SELECT c.was, c.block, c.top, c.quiet, sum(m.seen) AS seen, max(m.max_seq) AS max_seq
        FROM marked m JOIN cand c USING (isolate_id, block) GROUP BY c.isolate_id, c.block, c.was, c.top, c.quiet
      ), figures AS (
        SELECT coalesce(sum(CASE WHEN was THEN 0
                                 ELSE greatest((CASE WHEN block < top THEN ${BLOCK} ELSE max_seq - block * ${BLOCK} END) - seen, 0) END), 0) AS missing,
               coalesce(sum(CASE WHEN was THEN seen ELSE 0 END), 0) AS late
        FROM per_block
      ), bumped AS (
        UPDATE pipeline_counters p SET value = p.value + CASE p.name WHEN 'clicks_missing' THEN f.missing ELSE f.late END
        FROM figures f WHERE p.slot = 0 AND p.name IN ('clicks_missing', 'clicks_late')
      )
      SELECT missing, late FROM figures`;
    // Blocks of which not one click arrived have no row: each one below a settled block (so its
    // isolate's later clicks arrived at least the window ago), and below the isolate's first
    // block, is 256 missing clicks; a settled row with nothing seen stands for it from now on (a
    // click of it that still arrives is then late, as in any settled block).
    const [gaps] = await tx<{ missing: string }[]>`
      WITH blocks AS (
        SELECT isolate_id, block, bool_and(settled) AS settled FROM click_sequences GROUP BY isolate_id, block
      ), below AS (
        SELECT isolate_id, block, settled, lag(block) OVER (PARTITION BY isolate_id ORDER BY block) AS prev FROM blocks
      ), ins AS (
        INSERT INTO click_sequences (isolate_id, block, slot, max_seq, seen, settled)
        SELECT b.isolate_id, g, -1, (g + 1) * ${BLOCK}, 0, true
        FROM below b, generate_series(coalesce(b.prev + 1, 0), b.block - 1) AS g
        WHERE b.settled
        ON CONFLICT DO NOTHING
        RETURNING 1
      ), bumped AS (
        UPDATE pipeline_counters SET value = value + ${BLOCK} * (SELECT count(*) FROM ins) WHERE name = 'clicks_missing' AND slot = 0
      )
      SELECT ${BLOCK} * count(*) AS missing FROM ins`;
    // Quiet isolates are settled now (above): fold their late clicks into the total, drop their rows.
    await tx`
      WITH quiet AS (
        SELECT isolate_id FROM click_sequences GROUP BY isolate_id
        HAVING max(last_at) < now() - make_interval(secs => ${quietMs / 1000}::float8) AND bool_and(settled)
      ), gone AS (
        DELETE FROM click_sequences s USING quiet q WHERE s.isolate_id = q.isolate_id RETURNING s.late
      )
      UPDATE pipeline_counters SET value = value + (SELECT coalesce(sum(late), 0) FROM gone) WHERE name = 'clicks_late' AND slot = 0`;
    return { missing: Number(r?.missing ?? 0) + Number(gaps?.missing ?? 0), late: Number(r?.late ?? 0) };
  });
}
