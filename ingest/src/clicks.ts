import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { clickEventSchema, MAX_BATCH, MAX_BEACON_BYTES, type ClickEvent } from "../../shared/event.ts";
import { SIGNATURE_HEADER, verify } from "../../shared/signing.ts";
import { bump } from "./counters.ts";
import type { Sql } from "./db.ts";
import { applyPrivacy, type Privacy } from "./enrich.ts";
import { ApiError } from "./errors.ts";
import { parseJson } from "./validate.ts";

const batchSchema = z.array(clickEventSchema).min(1).max(MAX_BATCH);

/** Beacon events as clicks rows (column names match the table). */
const toRow = (e: ClickEvent) => ({
  click_id: e.click_id,
  link_id: e.link_id,
  domain: e.domain,
  code: e.code,
  short_url: e.short_url,
  original_url: e.original_url,
  ts: e.timestamp,
  user_agent: e.user_agent,
  ip_address: e.ip_address,
  referer: e.referer,
  geo_location: e.geo_location,
  redirect_status: e.redirect_status,
  cache_tier: e.cache_tier,
  qr: e.qr ?? false,
});

/**
 * The privacy settings of the ingest that owns `sql` (set once at start-up by startPipeline,
 * which has the configuration; the beacon path reaches storeClicks with `sql` only).
 * Unset: events are stored as received.
 */
const privacyBySql = new WeakMap<Sql, Privacy>();
export const setClickPrivacy = (sql: Sql, p: Privacy) => void privacyBySql.set(sql, p);
const tierCounters = new WeakMap<Sql, (tier: string, n: number) => void>();
/** Counts new clicks per cache tier (the edge figures of /metrics; exact: duplicates are not new). */
export const onStoredTiers = (sql: Sql, f: (tier: string, n: number) => void) => void tierCounters.set(sql, f);

/**
 * Stores clicks and their outbox rows in one transaction; returns the click_ids that were new.
 * Before anything is written, the privacy step (ingest/src/enrich.ts) computes the visitor hash
 * from the full IP, then truncates the IP (IP_ANONYMIZE) or drops personal fields (DNT): what
 * PostgreSQL, the outbox, Kinesis and the archive hold is the event after that step.
 * ON CONFLICT makes a retried beacon a no-op, and only new clicks reach the outbox.
 * The outbox row is the Kinesis record: the event plus the commit-side received_at.
 */
export async function storeClicks(sql: Sql, received: ClickEvent[]): Promise<Set<string>> {
  const privacy = privacyBySql.get(sql);
  const events = privacy ? received.map((e) => applyPrivacy(e, privacy)) : received;
  const inserted = await sql.begin(async (tx) => {
    const inserted = await tx<{ click_id: string; received_at: Date }[]>`
      INSERT INTO clicks ${tx(events.map(toRow))} ON CONFLICT DO NOTHING RETURNING click_id, received_at`;
    if (!inserted.length) return new Set<string>();
    const byId = new Map(events.map((e) => [e.click_id, e]));
    const outbox = inserted.map((r) => {
      const e = byId.get(r.click_id)!;
      return { partition_key: e.code, data: Buffer.from(JSON.stringify({ ...e, received_at: r.received_at.toISOString() })) };
    });
    await tx`INSERT INTO outbox ${tx(outbox)}`;
    await bump(tx, "postgres_clicks", inserted.length);
    return new Set(inserted.map((r) => r.click_id));
  });
  const count = tierCounters.get(sql);
  if (count && inserted.size) {
    const tierOf = new Map(events.map((e) => [e.click_id, e.cache_tier]));
    const tiers = new Map<string, number>();
    for (const id of inserted) tiers.set(tierOf.get(id)!, (tiers.get(tierOf.get(id)!) ?? 0) + 1);
    for (const [tier, n] of tiers) count(tier, n);
  }
  return inserted;
}

/** POST /v1/clicks: signed beacons from the edge; 202 only after the transaction committed. */
export function clickRoutes(store: (events: ClickEvent[]) => Promise<number>, secret: string) {
  return new Hono().post(
    "/",
    bodyLimit({
      maxSize: MAX_BEACON_BYTES,
      onError: () => {
        throw new ApiError(413, "body_too_large", `beacon bodies are limited to ${MAX_BEACON_BYTES} bytes`);
      },
    }),
    async (c) => {
      if (!/^application\/json\b/i.test(c.req.header("content-type") ?? ""))
        throw new ApiError(415, "unsupported_media_type", "beacons must be sent as application/json");
      const raw = await c.req.text();
      const check = await verify(secret, c.req.header(SIGNATURE_HEADER), raw);
      if (!check.ok) throw new ApiError(401, "bad_signature", `beacon signature ${check.reason}`);
      const events = raw.trimStart().startsWith("[") ? parseJson(batchSchema, raw) : [parseJson(clickEventSchema, raw)];
      const inserted = await store(events);
      return c.json({ accepted: events.length, duplicates: events.length - inserted }, 202);
    },
  );
}
