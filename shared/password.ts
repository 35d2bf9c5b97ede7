/**
 * Link passwords: PBKDF2-SHA256 through WebCrypto, so ingest hashes and the worker verifies
 * with the same code and no round trip. Stored as "pbkdf2-sha256$<iterations>$<salt>$<hash>"
 * (base64url). Iterations stay modest: the worker pays them on each password attempt (a
 * signed cookie spares it on later visits), and a link password guards a redirect, not an account.
 */
export const PASSWORD_ITERATIONS = 20_000;

const enc = new TextEncoder();
const b64u = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const unb64u = (s: string) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

async function derive(password: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", enc.encode(password), "PBKDF2", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256));
}

export async function hashPassword(password: string, iterations = PASSWORD_ITERATIONS): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return `pbkdf2-sha256$${iterations}$${b64u(salt)}$${b64u(await derive(password, salt, iterations))}`;
}

/** Constant-time comparison of the derived hash. False for any malformed stored value. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, iter, salt, hash] = stored.split("$");
  const iterations = Number(iter);
  if (scheme !== "pbkdf2-sha256" || !Number.isInteger(iterations) || iterations < 1 || iterations > 1_000_000 || !salt || !hash) return false;
  let expected: Uint8Array;
  let saltBytes: Uint8Array<ArrayBuffer>;
  try {
    expected = unb64u(hash);
    saltBytes = unb64u(salt) as Uint8Array<ArrayBuffer>;
  } catch {
    return false;
  }
  const got = await derive(password, saltBytes, iterations);
  if (got.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < got.length; i++) diff |= got[i]! ^ expected[i]!;
  return diff === 0;
}

/**
 * What an edge record carries instead of the stored hash: the same salt and iterations, and
 * HMAC(password key, PBKDF2 output) in place of the PBKDF2 output. The worker checks a
 * submission with it (one PBKDF2, then one HMAC per key of the ring), and a record
 * read from KV or /v1/resolve without the password key (shared/keys.ts) allows no offline
 * guessing. "pbkdf2-sha256+hmac$<iterations>$<salt>$<mac>" (base64url).
 */
export const VERIFIER_SCHEME = "pbkdf2-sha256+hmac";

const hmac = async (key: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>) =>
  new Uint8Array(await crypto.subtle.sign("HMAC", await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]), data));

/** The verifier of a stored hash under `key`; null for a malformed stored value. */
export async function passwordVerifier(stored: string, key: Uint8Array<ArrayBuffer>): Promise<string | null> {
  const [scheme, iter, salt, hash] = stored.split("$");
  if (scheme !== "pbkdf2-sha256" || !iter || !salt || !hash) return null;
  try {
    return `${VERIFIER_SCHEME}$${iter}$${salt}$${b64u(await hmac(key, unb64u(hash) as Uint8Array<ArrayBuffer>))}`;
  } catch {
    return null;
  }
}

/** A submitted password against a verifier, under any key of the ring. False when malformed. */
export async function checkVerifier(password: string, verifier: string, keys: readonly Uint8Array<ArrayBuffer>[]): Promise<boolean> {
  const [scheme, iter, salt, mac] = verifier.split("$");
  const iterations = Number(iter);
  if (scheme !== VERIFIER_SCHEME || !Number.isInteger(iterations) || iterations < 1 || iterations > 1_000_000 || !salt || !mac) return false;
  let expected: Uint8Array;
  let saltBytes: Uint8Array<ArrayBuffer>;
  try {
    expected = unb64u(mac);
    saltBytes = unb64u(salt) as Uint8Array<ArrayBuffer>;
  } catch {
    return false;
  }
  const derived = (await derive(password, saltBytes, iterations)) as Uint8Array<ArrayBuffer>;
  for (const key of keys) {
    const got = await hmac(key, derived);
    if (got.length !== expected.length) continue;
    let diff = 0;
    for (let i = 0; i < got.length; i++) diff |= got[i]! ^ expected[i]!;
    if (diff === 0) return true;
  }
  return false;
}
