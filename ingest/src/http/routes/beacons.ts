import { Hono } from "hono";
import { MAX_BATCH, MAX_BEACON_BYTES, type ClickEvent } from "../../../../shared/event.ts";
import { SIGNATURE_HEADER, type KeyMaterial } from "../../../../shared/signing.ts";
import { batchSchema, eventSchema, MAY_BE_UNSTORABLE, outOfWindow, storable } from "../../clicks/events.ts";
import { recheckClicks, type DeadClick } from "../../clicks/dead-letters.ts";
import type { LinkGuard } from "../../clicks/link-guard.ts";
import { verifyBeacon } from "../beacon-signature.ts";
import { ApiError } from "../errors.ts";
import { nodeOf } from "../node-env.ts";
import { beaconBodyLimit, readBody, tooLarge } from "../read-body.ts";
import { parseJson } from "../validate.ts";

export interface ClickRouteDeps {
  /** Stores clicks durably; resolves with the click_ids that were new. */
  store: (events: ClickEvent[]) => Promise<Set<string>>;
  /** Beacon keys to accept: the current secret's, then the previous one's (rotation). */
  keys: readonly KeyMaterial[];
  /** The clicks whose link_id is not the link at their domain/code (ingest/src/clicks/link-guard.ts). */
  mismatched: LinkGuard;
  /** Records clicks refused as invalid that the worker's dead-letter queue hands over (clicks/dead-letters.ts). */
  recordDead: (items: DeadClick[]) => Promise<number>;
}

/**
 * POST /v1/clicks: signed beacons from the edge; 202 only after the transaction committed. A
 * beacon with an invalid click is refused whole (400, nothing stored): the worker splits a
 * refused batch until the bad click is alone, so the others still go through.
 */
export function clickRoutes({ store, keys, mismatched, recordDead }: ClickRouteDeps) {
  const limit = (c: Parameters<typeof beaconBodyLimit>[0], next: Parameters<typeof beaconBodyLimit>[1]) => {
    const incoming = nodeOf(c)?.incoming;
    if (!incoming) return beaconBodyLimit(c, next);
    if (Number(incoming.headers["content-length"]) > MAX_BEACON_BYTES) throw tooLarge();
    return next();
  };
  /** The body of a signed request from the worker, as text (415/401 otherwise). */
  const signedBody = async (c: Parameters<typeof beaconBodyLimit>[0]) => {
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
    return raw;
  };
  return new Hono()
  /**
   * POST /v1/clicks/dead-letters: clicks the worker's dead-letter queue replayed and ingest
   * refused as invalid (edge/src/dead-letters.ts), signed like a beacon. Each is checked again
   * on its own: one valid now is stored (idempotent on click_id, as a beacon); the others are
   * recorded in dead_letters with the reason, once per click. 202 once both are committed.
   */
  .post("/dead-letters", limit, async (c) => {
    let items: unknown;
    try {
      items = JSON.parse(await signedBody(c));
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError(400, "invalid_json", "the body is not valid JSON");
    }
    if (!Array.isArray(items) || !items.length || items.length > MAX_BATCH) throw new ApiError(400, "invalid_body", `expected an array of 1 to ${MAX_BATCH} clicks`);
    const { valid, dead } = await recheckClicks(items, mismatched);
    const stored = valid.length ? (await store(valid)).size : 0;
    const recorded = await recordDead(dead);
    return c.json({ stored, duplicates: valid.length - stored, dead_letters: dead.length, recorded }, 202);
  })
  .post("/", limit, async (c) => {
    const raw = await signedBody(c);
    const parsed = raw.trimStart().startsWith("[") ? parseJson(batchSchema, raw) : [parseJson(eventSchema, raw)];
    // Made storable first: the link check's query cannot carry a U+0000 either.
    const events = MAY_BE_UNSTORABLE.test(raw) ? parsed.map(storable) : parsed;
    const late = outOfWindow(events);
    if (late) throw new ApiError(400, "timestamp_out_of_range", late, "timestamp");
    const [wrong] = await mismatched(events);
    if (wrong) throw new ApiError(400, "link_mismatch", `click ${wrong.click_id}: link ${wrong.link_id} is not the link at '${wrong.domain}/${wrong.code}'`, "link_id");
    const inserted = await store(events);
    return c.json({ accepted: events.length, duplicates: events.length - inserted.size }, 202);
  });
}
