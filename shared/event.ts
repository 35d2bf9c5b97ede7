import { z } from "zod";
import { CACHE_TIERS, CLICK_EVENT_VERSIONS, MAX_BATCH, REDIRECT_STATUSES } from "./constants.ts";

// The zod-free constants and the edge record (zod/mini) live in their own modules, so the worker
// imports them without zod classic; re-exported here for ingest and the tests.
export * from "./constants.ts";
export * from "./edge-link.ts";

const text = (max: number) => z.string().max(max);

export const geoSchema = z
  .object({
    country: text(2).optional(),
    region: text(128).optional(),
    region_code: text(16).optional(),
    city: text(128).optional(),
    postal_code: text(32).optional(),
    continent: text(2).optional(),
    latitude: z.number().min(-90).max(90).optional(),
    longitude: z.number().min(-180).max(180).optional(),
    timezone: text(64).optional(),
    colo: text(8).optional(),
    asn: z.number().int().nonnegative().optional(),
  })
  .strict();
export type Geo = z.infer<typeof geoSchema>;

/**
 * One click, as the edge reports it. The first eight fields are the decision record's
 * event schema; the rest are what the pipeline needs to attribute and diagnose clicks.
 * Versioned (`v`, absent = 1): fields are only ever added, optional, with a default
 * (docs/EVENTS.md); CLICK_EVENT_FIELDS_SINCE says which version brought each added field.
 */
export const clickEventSchema = z
  .object({
    click_id: z.uuid(),
    short_url: z.url().max(2048),
    original_url: z.url().max(8192),
    timestamp: z.iso.datetime({ offset: true }),
    user_agent: text(1024),
    ip_address: z.union([z.ipv4(), z.ipv6(), z.literal("")]),
    referer: text(2048),
    geo_location: geoSchema,
    // Beyond the decision record:
    domain: text(253), // "" is the primary short domain
    code: z.string().min(1).max(64),
    link_id: z.number().int().positive(),
    redirect_status: z.literal(REDIRECT_STATUSES),
    cache_tier: z.enum(CACHE_TIERS),
    /** The visit came from the link's QR code (`?qr=1`). */
    qr: z.boolean().optional(),
    /**
     * The visitor asked not to be tracked (`DNT: 1` or `Sec-GPC: 1`). With RESPECT_DNT, ingest
     * still counts the click but drops its personal fields (see docs/API.md, "Stats and SRE views").
     */
    dnt: z.boolean().optional(),
    /** The event's schema version; absent: version 1 (events sent before versions existed). */
    v: z.literal(CLICK_EVENT_VERSIONS).optional(),
    /**
     * Version 2: how long the worker's resolve at the origin took (ms), on origin-tier clicks
     * only. null (what ingest records for every other click) or absent: not measured.
     */
    origin_ms: z.number().int().min(0).max(2_147_483_647).nullable().optional(),
    /**
     * Version 3: which worker isolate emitted the click (a random id drawn when the isolate sends
     * its first click) and its number there (1, 2, 3, … per isolate): ingest finds the clicks that
     * never arrived as gaps in each isolate's sequence (docs/PIPELINE.md, "Completeness check").
     * Both or neither; null (what ingest records for older events) or absent: not numbered.
     */
    isolate_id: z.uuid().nullable().optional(),
    seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  })
  .strict();
/** The version that added each field after version 1 (an event may carry only its version's fields). */
export const CLICK_EVENT_FIELDS_SINCE = { origin_ms: 2, isolate_id: 3, seq: 3 } as const satisfies Partial<Record<keyof z.infer<typeof clickEventSchema>, number>>;
export type ClickEvent = z.infer<typeof clickEventSchema>;

/** A beacon body: one event, or a batch of them. */
export const beaconBodySchema = z.union([clickEventSchema, z.array(clickEventSchema).min(1).max(MAX_BATCH)]);
