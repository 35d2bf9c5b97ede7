import { randomInt } from "node:crypto";
import type { ClickEvent } from "../../../shared/event.ts";
import type { Sql } from "../db/connect.ts";
import { isBotClick } from "../analytics/enrich.ts";

/**
 * Stores clicks and their outbox rows atomically; returns the click_ids that were new.
 * The events come after the privacy step (ingest/src/analytics/enrich.ts applyPrivacy, in server.ts):
 * what PostgreSQL, the outbox, Kinesis and the archive hold is the event after that step.
 * ON CONFLICT makes a retried beacon a no-op, and only new clicks reach the outbox.
 * The outbox row is the Kinesis record: the event plus the commit-side received_at.
 *
 * One statement (so its own transaction, one round trip), with one parameter: the group as
 * one JSON array text. PostgreSQL splits it (json_to_recordset for the typed columns,
 * json_array_elements for each event's own text, which becomes its outbox record): the
 * statement text is the same whatever the group size, so it is prepared once per connection,
 * and Node does one JSON.stringify per group instead of escaping sixteen column arrays
 * element by element (that escaping was ~3 % of ingest's CPU under single-click load, and a
 * good part of its garbage). The parameter is sent as text and cast: typed json, postgres.js
 * would JSON-encode the string again. The outbox rows are built from the insert's RETURNING,
 * in the same statement, and so is the `postgres_clicks` running total, on `slot`: the group
 * committer gives each of its concurrent flushes a slot of its own, so flushes never wait on
 * each other's row lock (a shared random slot of 16 made two flushes in flight queue behind
 * one another's commit). The link's click count (link_clicks, bots excluded) is bumped the same
 * way, from the same RETURNING: only a click stored for the first time counts.
 */
export async function storeClicks(sql: Sql, events: ClickEvent[], slot = randomInt(16)): Promise<Set<string>> {
  // A click in two beacons of one group (a retry racing its original) is one row and gets one
  // outbox record: the later copy is the one kept.
  const unique = new Map<string, ClickEvent>();
  for (const e of events) unique.set(`${e.click_id} ${e.timestamp}`, e);
  const group = JSON.stringify([...unique.values()]);
  const bots = [...unique.values()].filter(isBotClick).map((e) => e.click_id);
  // The record is the event's JSON text then received_at (what `{ ...e, received_at }`
  // serialises to): json (not jsonb) keeps each element's text as sent, and PostgreSQL appends
  // the timestamp in toISOString()'s format.
  const inserted = await sql<{ click_id: string }[]>`
    WITH g AS (SELECT ${group}::text::json AS j),
    ev AS (
      SELECT e.* FROM g, ROWS FROM (
        json_to_recordset(g.j) AS (click_id uuid, link_id bigint, domain text, code text, short_url text,
          original_url text, "timestamp" timestamptz, user_agent text, ip_address text, referer text,
          geo_location jsonb, redirect_status smallint, cache_tier text, qr boolean, dnt boolean, origin_ms integer,
          isolate_id uuid, seq bigint),
        json_array_elements(g.j)
      ) WITH ORDINALITY AS e(click_id, link_id, domain, code, short_url, original_url, ts, user_agent,
                             ip_address, referer, geo_location, redirect_status, cache_tier, qr, dnt, origin_ms, isolate_id, seq, doc, n)
    ), ins AS (
      INSERT INTO clicks (click_id, link_id, domain, code, short_url, original_url, ts, user_agent,
                          ip_address, referer, geo_location, redirect_status, cache_tier, qr, dnt, origin_ms, isolate_id, seq)
      SELECT click_id, link_id, domain, code, short_url, original_url, ts, user_agent,
             ip_address, referer, geo_location, redirect_status, cache_tier, coalesce(qr, false), coalesce(dnt, false), origin_ms,
             isolate_id, seq
      FROM ev
      ON CONFLICT DO NOTHING
      RETURNING click_id, ts, link_id, isolate_id, seq
    ), seqs AS (
      -- The completeness check (sequences.ts): fresh rows only, so a redelivery changes nothing;
      -- rows in key order (two inserts never lock them crosswise).
      INSERT INTO click_sequences AS cs (isolate_id, block, slot, max_seq, seen)
      SELECT isolate_id, (seq - 1) / 256, ${slot}::smallint, max(seq), count(*) FROM ins
      WHERE isolate_id IS NOT NULL AND seq IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2
      ON CONFLICT (isolate_id, block, slot) DO UPDATE
        SET max_seq = greatest(cs.max_seq, excluded.max_seq), seen = cs.seen + excluded.seen,
            late = cs.late + CASE WHEN cs.settled THEN excluded.seen ELSE 0 END, last_at = now()
    ), ob AS (
      INSERT INTO outbox (partition_key, data)
      SELECT ev.code, convert_to(left(ev.doc::text, -1) || ',"received_at":"' || stamp.s, 'UTF8')
      FROM ins JOIN ev USING (click_id, ts),
           -- received_at is now(), the transaction's start: the same for every row, formatted once.
           (SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"}' AS s) stamp
      ORDER BY ev.n
    ), counted AS (
      INSERT INTO pipeline_counters (name, slot, value)
      SELECT 'postgres_clicks', ${slot}::smallint, count(*) FROM ins HAVING count(*) > 0
      ON CONFLICT (name, slot) DO UPDATE SET value = pipeline_counters.value + excluded.value
    ), per_link AS (
      INSERT INTO link_clicks (link_id, slot, clicks)
      SELECT link_id, ${slot}::smallint, count(*) FROM ins WHERE click_id <> ALL(${bots}::uuid[]) GROUP BY link_id
      ON CONFLICT (link_id, slot) DO UPDATE SET clicks = link_clicks.clicks + excluded.clicks
    )
    SELECT click_id FROM ins`;
  return new Set(inserted.map((r) => r.click_id));
}
