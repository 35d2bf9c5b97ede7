import { randomInt } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { clickEventSchema, MAX_BATCH, MAX_BEACON_BYTES, MAX_CLICK_AGE_MS, MAX_CLICK_FUTURE_MS, type ClickEvent } from "../../../../shared/event.ts";
import { SIGNATURE_HEADER, type KeyMaterial } from "../../../../shared/signing.ts";
import { verifyBeacon } from "../beacon-signature.ts";
import type { Sql } from "../../db/connect.ts";
import { ApiError } from "../errors.ts";
import type { LinkGuard } from "../../clicks/link-guard.ts";
import { nodeOf } from "../node-env.ts";
import { parseJson } from "../validate.ts";

/**
 * The shared schema's z.url() takes any scheme, and the WHATWG parser drops CR/LF/tabs before
 * parsing ("\r\nX-Injected: 1" is the URL "x-injected: 1"): ingest stores only http(s) URLs as
 * sent, with no control characters (found by test/security/fuzz.test.ts).
 */
const httpUrl = (v: string) => /^https?:\/\//i.test(v) && !/\p{Cc}/u.test(v);
/**
 * z.compile: zod generates a parser for the schema (same checks, same output) and falls back
 * to its runtime parser when that one fails, so a refused beacon gets the same error as
 * before. ~1.4 µs an event instead of ~4.9 (zod's runtime was the largest part of ingest's
 * CPU on 100-click beacons).
 */
const eventSchema = z.compile(
  clickEventSchema.superRefine((e, ctx) => {
    for (const k of ["short_url", "original_url"] as const)
      if (!httpUrl(e[k])) ctx.addIssue({ code: "custom", path: [k], message: "must be an http(s) URL without control characters" });
  }),
);
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
const batchSchema = z.compile(z.array(eventSchema).min(1).max(MAX_BATCH));
/**
 * In a JSON text those characters can only come as \u escapes (a raw control character is not
 * valid JSON, and invalid UTF-8 was already decoded to U+FFFD): a body without such an escape
 * skips the per-field rewrite (a copy of every event) altogether.
 */
const MAY_BE_UNSTORABLE = /\\u(0000|d[89a-f])/i;

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
 * one another's commit).
 */
export async function storeClicks(sql: Sql, events: ClickEvent[], slot = randomInt(16)): Promise<Set<string>> {
  // A click in two beacons of one group (a retry racing its original) is one row and gets one
  // outbox record: the later copy is the one kept, as before.
  const unique = new Map<string, ClickEvent>();
  for (const e of events) unique.set(`${e.click_id} ${e.timestamp}`, e);
  const group = JSON.stringify([...unique.values()]);
  // The record is the event's JSON text then received_at (what `{ ...e, received_at }`
  // serialises to): json (not jsonb) keeps each element's text as sent, and PostgreSQL appends
  // the timestamp in toISOString()'s format.
  const inserted = await sql<{ click_id: string }[]>`
    WITH g AS (SELECT ${group}::text::json AS j),
    ev AS (
      SELECT e.* FROM g, ROWS FROM (
        json_to_recordset(g.j) AS (click_id uuid, link_id bigint, domain text, code text, short_url text,
          original_url text, "timestamp" timestamptz, user_agent text, ip_address text, referer text,
          geo_location jsonb, redirect_status smallint, cache_tier text, qr boolean, dnt boolean),
        json_array_elements(g.j)
      ) WITH ORDINALITY AS e(click_id, link_id, domain, code, short_url, original_url, ts, user_agent,
                             ip_address, referer, geo_location, redirect_status, cache_tier, qr, dnt, doc, n)
    ), ins AS (
      INSERT INTO clicks (click_id, link_id, domain, code, short_url, original_url, ts, user_agent,
                          ip_address, referer, geo_location, redirect_status, cache_tier, qr, dnt)
      SELECT click_id, link_id, domain, code, short_url, original_url, ts, user_agent,
             ip_address, referer, geo_location, redirect_status, cache_tier, coalesce(qr, false), coalesce(dnt, false)
      FROM ev
      ON CONFLICT DO NOTHING
      RETURNING click_id, ts
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
    )
    SELECT click_id FROM ins`;
  return new Set(inserted.map((r) => r.click_id));
}

const tooLarge = () => new ApiError(413, "body_too_large", `beacon bodies are limited to ${MAX_BEACON_BYTES} bytes`);
const limit = bodyLimit({
  maxSize: MAX_BEACON_BYTES,
  onError: () => {
    throw tooLarge();
  },
});

/**
 * The body as text, read straight from Node's request when there is one: c.req.text() makes
 * @hono/node-server build a whole WHATWG Request (undici Request, ReadableStream,
 * AbortController) per beacon, which was about a fifth of ingest's CPU under single-click load.
 * Same limit as bodyLimit (declared length first, then what actually arrives, so a chunked body
 * is cut off too), same decoding as Request.text() (UTF-8, a BOM dropped, bad bytes → U+FFFD).
 */
export function readBody(incoming: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BEACON_BYTES) {
        incoming.off("data", onData);
        incoming.resume(); // drain the rest; the 413 goes out on this connection
        return reject(tooLarge());
      }
      chunks.push(chunk);
    };
    incoming.on("data", onData);
    incoming.once("end", () => resolve(new TextDecoder().decode(Buffer.concat(chunks, size))));
    incoming.once("error", reject);
  });
}

/**
 * A click from too far ahead (a wrong clock) or older than the queue could have held it (a
 * replay): refused with its reason, nothing of its beacon stored.
 */
export function outOfWindow(events: ClickEvent[], now = Date.now()): string | null {
  for (const e of events) {
    const t = Date.parse(e.timestamp);
    if (t > now + MAX_CLICK_FUTURE_MS) return `click ${e.click_id}: timestamp is more than ${MAX_CLICK_FUTURE_MS / 60_000} minutes in the future`;
    if (t < now - MAX_CLICK_AGE_MS) return `click ${e.click_id}: timestamp is older than the ${Math.round(MAX_CLICK_AGE_MS / 3_600_000)} hours a queued click can take`;
  }
  return null;
}

export interface ClickRouteDeps {
  /** Stores clicks durably; resolves with the click_ids that were new. */
  store: (events: ClickEvent[]) => Promise<Set<string>>;
  /** Beacon keys to accept: the current secret's, then the previous one's (rotation). */
  keys: readonly KeyMaterial[];
  /** The clicks whose link_id is not the link at their domain/code (ingest/src/clicks/link-guard.ts). */
  mismatched: LinkGuard;
}

/**
 * POST /v1/clicks: signed beacons from the edge; 202 only after the transaction committed. A
 * beacon with an invalid click is refused whole (400, nothing stored): the worker splits a
 * refused batch until the bad click is alone, so the others still go through.
 */
export function clickRoutes({ store, keys, mismatched }: ClickRouteDeps) {
  return new Hono().post(
    "/",
    (c, next) => {
      const incoming = nodeOf(c)?.incoming;
      if (!incoming) return limit(c, next);
      if (Number(incoming.headers["content-length"]) > MAX_BEACON_BYTES) throw tooLarge();
      return next();
    },
    async (c) => {
      // Under Node, headers come from Node's request (c.req.header builds a WHATWG Headers of all of them).
      const incoming = nodeOf(c)?.incoming;
      const header = (name: string) => {
        const v = incoming ? incoming.headers[name] : c.req.header(name);
        return Array.isArray(v) ? v.join(", ") : v;
      };
      // Exactly application/json (parameters allowed): not application/json-patch+json, -seq…
      if (!/^application\/json\s*(;|$)/i.test(header("content-type") ?? ""))
        throw new ApiError(415, "unsupported_media_type", "beacons must be sent as application/json");
      const raw = incoming ? await readBody(incoming) : await c.req.text();
      const signature = header(SIGNATURE_HEADER.toLowerCase());
      // Two X-Signature headers arrive joined ("t=…,v1=…, t=…,v1=…"), and verify() would take the
      // last of each: ambiguous, so refused (found by test/security/beacon.test.ts).
      if (signature && (signature.match(/(?:^|,)\s*(?:t|v1)\s*=/g)?.length ?? 0) > 2)
        throw new ApiError(401, "bad_signature", "beacon signature malformed (more than one)");
      const check = verifyBeacon(keys, signature, raw);
      if (!check.ok) throw new ApiError(401, "bad_signature", `beacon signature ${check.reason}`);
      const parsed = raw.trimStart().startsWith("[") ? parseJson(batchSchema, raw) : [parseJson(eventSchema, raw)];
      // Made storable first: the link check's query cannot carry a U+0000 either.
      const events = MAY_BE_UNSTORABLE.test(raw) ? parsed.map(storable) : parsed;
      const late = outOfWindow(events);
      if (late) throw new ApiError(400, "timestamp_out_of_range", late, "timestamp");
      const [wrong] = await mismatched(events);
      if (wrong) throw new ApiError(400, "link_mismatch", `click ${wrong.click_id}: link ${wrong.link_id} is not the link at '${wrong.domain}/${wrong.code}'`, "link_id");
      const inserted = await store(events);
      return c.json({ accepted: events.length, duplicates: events.length - inserted.size }, 202);
    },
  );
}
