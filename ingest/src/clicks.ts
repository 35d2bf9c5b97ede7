import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { clickEventSchema, MAX_BATCH, MAX_BEACON_BYTES, type ClickEvent } from "../../shared/event.ts";
import { SIGNATURE_HEADER, verify } from "../../shared/signing.ts";
import { bump } from "./counters.ts";
import type { Sql } from "./db.ts";
import { ApiError } from "./errors.ts";
import { parseJson } from "./validate.ts";

/**
 * The shared schema's z.url() takes any scheme, and the WHATWG parser drops CR/LF/tabs before
 * parsing ("\r\nX-Injected: 1" is the URL "x-injected: 1"): ingest stores only http(s) URLs as
 * sent, with no control characters (found by test/security/fuzz.test.ts).
 */
const httpUrl = (v: string) => /^https?:\/\//i.test(v) && !/\p{Cc}/u.test(v);
const eventSchema = clickEventSchema.superRefine((e, ctx) => {
  for (const k of ["short_url", "original_url"] as const)
    if (!httpUrl(e[k])) ctx.addIssue({ code: "custom", path: [k], message: "must be an http(s) URL without control characters" });
});
/**
 * PostgreSQL text and jsonb cannot hold U+0000, and jsonb refuses lone surrogates: such a
 * character in a (signed, valid) beacon made the insert fail with a 500, and in a group commit
 * failed the other clicks of the group too. They become U+FFFD (the click is kept).
 */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const storable = <T>(v: T): T =>
  typeof v === "string"
    ? (v.replace(UNSTORABLE, "\uFFFD") as T)
    : v && typeof v === "object"
      ? (Object.fromEntries(Object.entries(v).map(([k, x]) => [k, storable(x)])) as T)
      : v;
const batchSchema = z.array(eventSchema).min(1).max(MAX_BATCH);

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
  dnt: e.dnt ?? false,
});

/**
 * Stores clicks and their outbox rows in one transaction; returns the click_ids that were new.
 * The events come after the privacy step (ingest/src/enrich.ts applyPrivacy, in server.ts):
 * what PostgreSQL, the outbox, Kinesis and the archive hold is the event after that step.
 * ON CONFLICT makes a retried beacon a no-op, and only new clicks reach the outbox.
 * The outbox row is the Kinesis record: the event plus the commit-side received_at.
 */
export async function storeClicks(sql: Sql, events: ClickEvent[]): Promise<Set<string>> {
  return sql.begin(async (tx) => {
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
}

/** POST /v1/clicks: signed beacons from the edge; 202 only after the transaction committed. */
export function clickRoutes(store: (events: ClickEvent[]) => Promise<Set<string>>, secret: string) {
  return new Hono().post(
    "/",
    bodyLimit({
      maxSize: MAX_BEACON_BYTES,
      onError: () => {
        throw new ApiError(413, "body_too_large", `beacon bodies are limited to ${MAX_BEACON_BYTES} bytes`);
      },
    }),
    async (c) => {
      // Exactly application/json (parameters allowed): not application/json-patch+json, -seq…
      if (!/^application\/json\s*(;|$)/i.test(c.req.header("content-type") ?? ""))
        throw new ApiError(415, "unsupported_media_type", "beacons must be sent as application/json");
      const raw = await c.req.text();
      const header = c.req.header(SIGNATURE_HEADER);
      // Two X-Signature headers arrive joined ("t=…,v1=…, t=…,v1=…"), and verify() would take the
      // last of each: ambiguous, so refused (found by test/security/beacon.test.ts).
      if (header && (header.match(/(?:^|,)\s*(?:t|v1)\s*=/g)?.length ?? 0) > 2)
        throw new ApiError(401, "bad_signature", "beacon signature malformed (more than one)");
      const check = await verify(secret, header, raw);
      if (!check.ok) throw new ApiError(401, "bad_signature", `beacon signature ${check.reason}`);
      const events = raw.trimStart().startsWith("[") ? parseJson(batchSchema, raw) : [parseJson(eventSchema, raw)];
      const inserted = await store(events.map(storable));
      return c.json({ accepted: events.length, duplicates: events.length - inserted.size }, 202);
    },
  );
}
