import { z } from "zod";
import {
  CLICK_EVENT_FIELDS_SINCE,
  CLICK_EVENT_VERSION,
  CLICK_EVENT_VERSIONS,
  clickEventSchema,
  MAX_BATCH,
  MAX_CLICK_AGE_MS,
  MAX_CLICK_FUTURE_MS,
  type ClickEvent,
} from "../../../shared/event.ts";
import { domainError } from "../errors.ts";

/** What ingest takes from the edge as a click: the shared schema, tightened where ingest stores it. */
/**
 * The shared schema's z.url() takes any scheme, and the WHATWG parser drops CR/LF/tabs before
 * parsing ("\r\nX-Injected: 1" is the URL "x-injected: 1"): ingest stores only http(s) URLs as
 * sent, with no control characters (found by test/security/fuzz.test.ts).
 */
const httpUrl = (v: string) => /^https?:\/\//i.test(v) && !/\p{Cc}/u.test(v);
/**
 * A version newer than this ingest knows is refused before the strict schema sees it (its new
 * fields would only read as "unrecognized keys"): 400 `unsupported_event_version`, the whole
 * beacon. It means a worker was deployed before ingest (docs/EVENTS.md: ingest goes first).
 */
function knownVersion(raw: unknown): unknown {
  const v = raw !== null && typeof raw === "object" ? (raw as { v?: unknown }).v : undefined;
  if (typeof v === "number" && Number.isInteger(v) && v > CLICK_EVENT_VERSION)
    throw domainError("unsupported_event_version", `click event version ${v} is newer than this ingest reads (versions ${CLICK_EVENT_VERSIONS.join(", ")})`, "v");
  return raw;
}
const FIELDS_SINCE = Object.entries(CLICK_EVENT_FIELDS_SINCE) as [keyof typeof CLICK_EVENT_FIELDS_SINCE, number][];
/**
 * z.compile: zod generates a parser for the schema (same checks, same output) and falls back
 * to its runtime parser when that one fails, so a refused beacon gets the same error as
 * before. ~1.4 µs an event instead of ~4.9 (zod's runtime was the largest part of ingest's
 * CPU on 100-click beacons).
 */
export const eventSchema = z.compile(
  z.preprocess(
    knownVersion,
    clickEventSchema.superRefine((e, ctx) => {
      for (const k of ["short_url", "original_url"] as const)
        if (!httpUrl(e[k])) ctx.addIssue({ code: "custom", path: [k], message: "must be an http(s) URL without control characters" });
      // A field belongs to the version that added it and later ones (a version 1 event has no origin_ms).
      const version = e.v ?? 1;
      for (const [k, since] of FIELDS_SINCE)
        if (e[k] !== undefined && version < since) ctx.addIssue({ code: "custom", path: [k], message: `is a version ${since} field; the event is version ${version}` });
      // A click is numbered within its isolate, or not at all (the completeness check counts gaps per isolate).
      if ((e.isolate_id == null) !== (e.seq == null)) ctx.addIssue({ code: "custom", path: [e.isolate_id == null ? "isolate_id" : "seq"], message: "isolate_id and seq come together" });
    }),
  ),
);
/**
 * PostgreSQL text and jsonb cannot hold U+0000, and jsonb refuses lone surrogates: such a
 * character in a (signed, valid) beacon made the insert fail with a 500, and in a group commit
 * failed the other clicks of the group too. They become U+FFFD (the click is kept).
 */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
export const storable = <T>(v: T): T =>
  typeof v === "string"
    ? (v.replace(UNSTORABLE, "\uFFFD") as T)
    : v && typeof v === "object"
      ? (Object.fromEntries(Object.entries(v).map(([k, x]) => [k, storable(x)])) as T)
      : v;
export const batchSchema = z.compile(z.array(eventSchema).min(1).max(MAX_BATCH));
/**
 * In a JSON text those characters can only come as \u escapes (a raw control character is not
 * valid JSON, and invalid UTF-8 was already decoded to U+FFFD): a body without such an escape
 * skips the per-field rewrite (a copy of every event) altogether.
 */
export const MAY_BE_UNSTORABLE = /\\u(0000|d[89a-f])/i;

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
