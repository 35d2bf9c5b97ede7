import { z } from "zod";

/** Which cache tier answered the redirect at the edge. */
export const CACHE_TIERS = ["isolate", "kv", "origin"] as const;
export type CacheTier = (typeof CACHE_TIERS)[number];

/** Max clicks in one beacon request (the edge sends up to BEACON_BATCH_MAX clicks a beacon). */
export const MAX_BATCH = 1000;
/** Largest beacon body ingest reads; anything bigger is refused before parsing. */
export const MAX_BEACON_BYTES = 64 * 1024;

/** Most redeliveries of a queued click (wrangler.toml `max_retries`; test/wrangler.test.ts holds them together). */
export const QUEUE_MAX_RETRIES = 100;
/** Longest delay between two deliveries of a queued click (edge/src/consumer.ts). */
export const QUEUE_MAX_RETRY_DELAY_S = 300;
/** A click stamped further ahead than this is refused (clock skew allowance). */
export const MAX_CLICK_FUTURE_MS = 5 * 60_000;
/**
 * The oldest click ingest takes: the longest a click can spend in the queue's redeliveries,
 * plus an hour for the direct attempts and batching before it. Older is refused (a replay).
 */
export const MAX_CLICK_AGE_MS = (QUEUE_MAX_RETRIES * QUEUE_MAX_RETRY_DELAY_S + 3600) * 1000;

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
    redirect_status: z.union([z.literal(301), z.literal(302), z.literal(307), z.literal(308)]),
    cache_tier: z.enum(CACHE_TIERS),
    /** The visit came from the link's QR code (`?qr=1`). */
    qr: z.boolean().optional(),
    /**
     * The visitor asked not to be tracked (`DNT: 1` or `Sec-GPC: 1`). With RESPECT_DNT, ingest
     * still counts the click but drops its personal fields (see docs/API.md, "Stats and SRE views").
     */
    dnt: z.boolean().optional(),
  })
  .strict();
export type ClickEvent = z.infer<typeof clickEventSchema>;

/** A beacon body: one event, or a batch of them. */
export const beaconBodySchema = z.union([clickEventSchema, z.array(clickEventSchema).min(1).max(MAX_BATCH)]);

export const DEVICE_TYPES = ["desktop", "mobile", "tablet"] as const;

/** A targeting rule: every condition given must hold (lists: any of); first matching rule wins. */
export const targetingRuleSchema = z
  .object({
    country: z.array(z.string().regex(/^[A-Z]{2}$/)).min(1).max(250).optional(),
    device: z.array(z.enum(DEVICE_TYPES)).min(1).optional(),
    /** OS names as ua-parser-js reports them, compared case-insensitively: "iOS", "Android", "Windows", "macOS", "Linux"… */
    os: z.array(z.string().min(1).max(32)).min(1).max(20).optional(),
    /** Primary language subtags from Accept-Language ("en", "de"). */
    language: z.array(z.string().regex(/^[a-z]{2,3}$/)).min(1).max(50).optional(),
    url: z.string().max(2048),
  })
  .strict();
export type TargetingRule = z.infer<typeof targetingRuleSchema>;

/**
 * The compact link record the edge needs to decide a request (what KV and /v1/resolve hold):
 * nothing the worker does not use. `url` already carries the link's UTM parameters.
 */
export const edgeLinkSchema = z
  .object({
    id: z.number().int().positive(),
    domain: z.string(),
    code: z.string(),
    url: z.string(),
    status: z.union([z.literal(301), z.literal(302), z.literal(307), z.literal(308)]),
    /** Epoch ms after which the link is expired. */
    expires_at: z.number().int().optional(),
    /** Where an expired (or exhausted, or archived) link sends visitors; absent: 410. */
    expired_url: z.string().optional(),
    /** Archived, or its click limit reached: answered like an expired link. */
    gone: z.literal(true).optional(),
    /**
     * The link's password verifier (shared/password.ts): the PBKDF2 hash sealed with the password
     * key, never the stored hash; the worker checks submissions with it.
     */
    password: z.string().max(512).optional(),
    /** Rules checked in order; the first that matches replaces `url` (UTM merged too). */
    targeting: z.array(targetingRuleSchema).max(50).optional(),
    /** UTM parameters, for the targeting URLs (already merged into `url`). */
    utm: z.record(z.string(), z.string()).optional(),
  })
  .strict();
export type EdgeLink = z.infer<typeof edgeLinkSchema>;

/** The one KV key layout, shared by the worker, ingest's write-through and the tests. */
export const linkKey = (domain: string, code: string) => `link:${domain}:${code}`;
