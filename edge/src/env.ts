/** The worker's bindings: mirrors wrangler.toml ([vars] are strings) plus the EDGE_SECRET secret. */
export interface Env {
  LINKS: KVNamespace;
  INGEST_URL: string;
  EDGE_SECRET: string;
  PRIMARY_HOSTS: string;
  ISOLATE_TTL_MS: string;
  NEGATIVE_TTL_MS: string;
  ISOLATE_MAX_ENTRIES: string;
  KV_CACHE_TTL_S: string;
  BEACON_ATTEMPTS: string;
  BEACON_BASE_DELAY_MS: string;
  BEACON_BATCH_MS: string;
  BEACON_BATCH_MAX: string;
  /** "off" stops click beacons: only for benchmarks and emergencies (clicks are then not counted). */
  BEACONS: string;
}

/** A numeric var, or `fallback` when unset or not a number. */
export const num = (v: string | undefined, fallback: number) => {
  const n = Number(v);
  return v !== undefined && v !== "" && Number.isFinite(n) ? n : fallback;
};
