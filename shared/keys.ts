/**
 * One key per purpose, derived from EDGE_SECRET with HKDF-SHA256 (RFC 5869) and a label, so
 * that a leak of one derived key (a worker log, a cookie, a KV dump) reveals nothing about the
 * others or about EDGE_SECRET itself. The worker and ingest derive the same keys (WebCrypto in
 * both); ingest derives them once at start, the worker once per isolate.
 *
 * Rotation: both sides sign with the keys of EDGE_SECRET and, while EDGE_SECRET_PREVIOUS is set,
 * also accept what the previous secret's keys signed (`keyRing`, current first).
 */
export const KEY_LABELS = {
  /** Click beacons, edge → ingest (POST /v1/clicks). */
  beacon: "linkflow/v1/beacon",
  /** Origin lookups, edge → ingest (GET /v1/resolve). */
  resolve: "linkflow/v1/resolve",
  /** KV write-through, ingest → edge (PUT/DELETE /_admin/links). */
  edgeAdmin: "linkflow/v1/edge-admin",
  /** The edge's unlock cookies of password-protected links. */
  unlock: "linkflow/v1/unlock-cookie",
  /** Seals the password hash in edge records (shared/password.ts), so a record alone allows no offline guessing. */
  password: "linkflow/v1/password-verifier",
  /** Daily visitor-hash salts (ingest), unless VISITOR_SALT_SECRET is set. */
  visitorSalt: "linkflow/v1/visitor-salt",
} as const;

export type KeyPurpose = keyof typeof KEY_LABELS;
/** 32 raw bytes per purpose. */
export type Keys = Readonly<Record<KeyPurpose, Uint8Array<ArrayBuffer>>>;

/** Shortest EDGE_SECRET either side accepts (32 characters: e.g. `openssl rand -base64 32`). */
export const MIN_SECRET_LENGTH = 32;

/** The one-line refusal both sides give when the secret is missing or short. */
export const secretProblem = (name: string, value: string | undefined): string | null =>
  !value
    ? `${name} is not set: set it to a random string of at least ${MIN_SECRET_LENGTH} characters (e.g. \`openssl rand -base64 32\`), the same for ingest and the worker (\`wrangler secret put ${name}\`); \`npm start\` generates one in data/edge-secret`
    : value.length < MIN_SECRET_LENGTH
      ? `${name} is too short: use a random string of at least ${MIN_SECRET_LENGTH} characters (e.g. \`openssl rand -base64 32\`)`
      : null;

const enc = new TextEncoder();
const SALT = enc.encode("linkflow-edge-secret");

async function derive(secret: string): Promise<Keys> {
  const base = await crypto.subtle.importKey("raw", enc.encode(secret), "HKDF", false, ["deriveBits"]);
  const entries = await Promise.all(
    Object.entries(KEY_LABELS).map(async ([purpose, label]) => {
      const bits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: SALT, info: enc.encode(label) }, base, 256);
      return [purpose, new Uint8Array(bits)] as const;
    }),
  );
  return Object.freeze(Object.fromEntries(entries)) as Keys;
}

// A process sees one or two secrets (current, previous): a small map, never evicted.
const derived = new Map<string, Promise<Keys>>();

/** The purpose keys of `secret` (derived once per process and secret). */
export function keysOf(secret: string): Promise<Keys> {
  let keys = derived.get(secret);
  if (!keys) derived.set(secret, (keys = derive(secret)));
  return keys;
}

/** The keys to accept: the current secret's first, then the previous one's while it is set. */
export async function keyRing(current: string, previous?: string): Promise<Keys[]> {
  return previous && previous !== current ? Promise.all([keysOf(current), keysOf(previous)]) : [await keysOf(current)];
}
