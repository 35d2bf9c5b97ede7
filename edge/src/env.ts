import type { QueuedBody } from "./beacon.ts";

/** The worker's bindings: mirrors wrangler.toml ([vars] are strings) plus the EDGE_SECRET secret. */
export interface Env {
  /** Required secret (no default): every key the worker uses is derived from it (shared/keys.ts). */
  EDGE_SECRET: string;
  /** The secret before a rotation: what it signed is still accepted while this is set. */
  EDGE_SECRET_PREVIOUS?: string;
  /** "true": destinations in private address space are allowed (as ingest's ALLOW_PRIVATE_DESTINATIONS). */
  ALLOW_PRIVATE_DESTINATIONS: string;
  LINKS: KVNamespace;
  /**
   * Producer side of the `linkflow-clicks` queue (this worker is also its consumer). Optional: a
   * deployment without Queues works on the direct path alone, and then loses the clicks whose
   * beacon fails every attempt.
   */
  CLICKS_QUEUE?: Queue<QueuedBody>;
  /**
   * Producer side of `linkflow-clicks-dlq`: queued clicks ingest refuses as invalid (a link
   * mismatch, a timestamp out of range…) and those past QUEUE_MAX_RETRIES attempts are put
   * there; this worker consumes it too and replays them (edge/src/consumer.ts consumeDeadLetters).
   */
  CLICKS_DLQ?: Queue<QueuedBody>;
  /**
   * Rate limiter of password submissions per (link, client) (wrangler.toml `[[ratelimits]]`,
   * edge/src/throttle.ts). Optional so a deployment without it still serves protected links, but
   * then guesses are not throttled (logged once per isolate); every environment in
   * wrangler.toml binds it.
   */
  PASSWORD_LIMITER?: RateLimit;
  INGEST_URL: string;
  PRIMARY_HOSTS: string;
  ISOLATE_TTL_MS: string;
  NEGATIVE_TTL_MS: string;
  ISOLATE_MAX_ENTRIES: string;
  KV_CACHE_TTL_S: string;
  BEACON_ATTEMPTS: string;
  BEACON_BASE_DELAY_MS: string;
  BEACON_BATCH_MS: string;
  BEACON_BATCH_MAX: string;
  /** "direct" (default): POST beacons, the queue only for what they could not deliver; "queue": every click through CLICKS_QUEUE. */
  BEACON_TRANSPORT: string;
  /** First redelivery delay (s) of a queued click ingest did not take; doubles per attempt up to 300 s. */
  BEACON_QUEUE_RETRY_S: string;
  /** "off" stops click beacons: only for benchmarks and emergencies (clicks are then not counted). */
  BEACONS: string;
}

/** A numeric var, or `fallback` when unset or not a number. */
export const num = (v: string | undefined, fallback: number) => {
  const n = Number(v);
  return v !== undefined && v !== "" && Number.isFinite(n) ? n : fallback;
};
