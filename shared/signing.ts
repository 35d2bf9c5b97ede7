/**
 * HMAC-SHA256 request signing shared by the edge and ingest (WebCrypto: works in workerd and Node).
 *
 * Header: `X-Signature: t=<unix seconds>,v1=<hex HMAC(secret, "<t>.<message>")>`.
 * The message is the raw body for beacons, and "<METHOD> <path>\n<body>" for the control routes
 * (see `requestMessage`), so a signature cannot be moved from one route to another.
 */
export const SIGNATURE_HEADER = "X-Signature";
export const SIGNATURE_WINDOW_S = 300;

/** A key: a derived purpose key (shared/keys.ts), or a string used as its UTF-8 bytes. */
export type KeyMaterial = string | Uint8Array<ArrayBuffer>;

const enc = new TextEncoder();
const keyCache = new Map<string, Promise<CryptoKey>>();
// Derived keys are long-lived objects (shared/keys.ts caches them): keyed by identity.
const byteKeyCache = new WeakMap<Uint8Array, Promise<CryptoKey>>();

const importHmac = (raw: Uint8Array<ArrayBuffer>) =>
  crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);

function hmacKey(secret: KeyMaterial): Promise<CryptoKey> {
  if (typeof secret !== "string") {
    let key = byteKeyCache.get(secret);
    if (!key) byteKeyCache.set(secret, (key = importHmac(secret)));
    return key;
  }
  let key = keyCache.get(secret);
  if (!key) keyCache.set(secret, (key = importHmac(enc.encode(secret))));
  return key;
}

const toHex = (buf: ArrayBuffer) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

function fromHex(hex: string): Uint8Array<ArrayBuffer> | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** "<t>.<message>" as UTF-8 bytes. */
function signedBytes(nowS: number, message: string | Uint8Array): Uint8Array<ArrayBuffer> {
  if (typeof message === "string") return enc.encode(`${nowS}.${message}`);
  const prefix = enc.encode(`${nowS}.`);
  const out = new Uint8Array(prefix.length + message.length);
  out.set(prefix);
  out.set(message, prefix.length);
  return out;
}

export const requestMessage = (method: string, path: string, body = "") => `${method.toUpperCase()} ${path}\n${body}`;

/** The header for `message` (a string, or its UTF-8 bytes: the same signature, no second encoding). */
export async function sign(secret: KeyMaterial, message: string | Uint8Array, nowS = Math.floor(Date.now() / 1000)): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), signedBytes(nowS, message));
  return `t=${nowS},v1=${toHex(mac)}`;
}

export type VerifyResult = { ok: true } | { ok: false; reason: "missing" | "malformed" | "expired" | "mismatch" };

/**
 * Verifies a signature header against one key, or any of a key ring (rotation: current key
 * first); `crypto.subtle.verify` compares in constant time.
 */
export async function verify(
  secret: KeyMaterial | readonly KeyMaterial[],
  header: string | null | undefined,
  message: string,
  nowS = Math.floor(Date.now() / 1000),
): Promise<VerifyResult> {
  if (!header) return { ok: false, reason: "missing" };
  const pairs = header.split(",").map((p) => {
    const i = p.indexOf("=");
    return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const;
  });
  const parts = new Map(pairs);
  // Two signature headers arrive joined ("t=…,v1=…, t=…,v1=…"): refuse rather than pick one.
  if (parts.size !== pairs.length) return { ok: false, reason: "malformed" };
  const t = Number(parts.get("t"));
  const mac = fromHex(parts.get("v1") ?? "");
  if (!Number.isSafeInteger(t) || !mac || mac.length !== 32) return { ok: false, reason: "malformed" };
  if (Math.abs(nowS - t) > SIGNATURE_WINDOW_S) return { ok: false, reason: "expired" };
  const signed = enc.encode(`${t}.${message}`);
  for (const key of Array.isArray(secret) ? secret : [secret])
    if (await crypto.subtle.verify("HMAC", await hmacKey(key as KeyMaterial), mac, signed)) return { ok: true };
  return { ok: false, reason: "mismatch" };
}
