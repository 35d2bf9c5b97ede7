/**
 * What the edge and ingest agree on about clicks, with no zod: the worker imports these as values,
 * and a value import pulls the whole module into its bundle (shared/event.ts's schemas are zod
 * classic, ~440 KiB minified).
 */

/** Which cache tier answered the redirect at the edge. */
export const CACHE_TIERS = ["isolate", "kv", "origin"] as const;
export type CacheTier = (typeof CACHE_TIERS)[number];

/**
 * The click event's schema version (its `v` field; an event without `v` is version 1). Ingest
 * takes this version and the one before it; what a version adds and when one may be dropped:
 * docs/EVENTS.md.
 */
export const CLICK_EVENT_VERSION = 3;
/**
 * The versions ingest takes: the current one and the earlier ones not yet dropped (version 1
 * stays until the checks of docs/EVENTS.md, "When a version may be dropped", have passed).
 */
export const CLICK_EVENT_VERSIONS = [1, 2, CLICK_EVENT_VERSION] as const;

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

/**
 * Short codes and custom slugs: what the API issues and accepts, and what the worker looks up
 * (anything else is a 404 without a lookup).
 */
export const CODE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** The redirect statuses a link may answer with. */
export const REDIRECT_STATUSES = [301, 302, 307, 308] as const;
export type RedirectStatus = (typeof REDIRECT_STATUSES)[number];
