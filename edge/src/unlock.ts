import type { EdgeLink } from "../../shared/event.ts";
import type { Keys } from "../../shared/keys.ts";
import { checkVerifier } from "../../shared/password.ts";

/**
 * Password-protected links: the submitted password is checked in the worker against the
 * link's verifier (shared/password.ts, no round trip to ingest); success sets an unlock cookie
 * for that link, so later visits cost one HMAC instead of a PBKDF2. The cookie's value is
 * "<expiry s>.<hex HMAC-SHA256(unlock key, expiry, domain, code, verifier)>", the unlock key
 * derived from EDGE_SECRET for this purpose alone (shared/keys.ts): a cookie reveals nothing
 * about the other keys, and a new password (new salt) or a new secret invalidates every cookie
 * given out (after a rotation's grace window). Passwords are never logged or stored.
 */
export const UNLOCK_COOKIE = "lf_unlock";
export const UNLOCK_MAX_AGE_S = 86_400;
/** Largest password form body read (a password field and little else). */
export const MAX_FORM_BYTES = 4096;

const enc = new TextEncoder();
// Derived keys are cached objects (shared/keys.ts): their imported forms are kept beside them.
const imported = new WeakMap<Uint8Array, Promise<CryptoKey>>();
const hmacKey = (raw: Uint8Array<ArrayBuffer>) => {
  let key = imported.get(raw);
  if (!key) imported.set(raw, (key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"])));
  return key;
};

const message = (link: EdgeLink, exp: number) => enc.encode(`unlock\n${exp}\n${link.domain}\n${link.code}\n${link.password ?? ""}`);
const toHex = (buf: ArrayBuffer) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

/** A cookie made with the current keys' unlock key. */
export async function unlockCookie(keys: Pick<Keys, "unlock">, link: EdgeLink, secure: boolean, nowS = Math.floor(Date.now() / 1000)): Promise<string> {
  const exp = nowS + UNLOCK_MAX_AGE_S;
  const mac = toHex(await crypto.subtle.sign("HMAC", await hmacKey(keys.unlock), message(link, exp)));
  return `${UNLOCK_COOKIE}=${exp}.${mac}; Max-Age=${UNLOCK_MAX_AGE_S}; Path=/${encodeURIComponent(link.code)}; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`;
}

/** True when the request carries an unexpired unlock cookie made for this link and password, under any accepted key. */
export async function hasUnlockCookie(ring: readonly Pick<Keys, "unlock">[], link: EdgeLink, cookieHeader: string | null, nowS = Math.floor(Date.now() / 1000)): Promise<boolean> {
  if (!cookieHeader) return false;
  for (const part of cookieHeader.split(";")) {
    const m = /^\s*lf_unlock=(\d{1,12})\.([0-9a-f]{64})\s*$/.exec(part);
    if (!m) continue;
    const exp = Number(m[1]);
    if (exp < nowS || exp > nowS + UNLOCK_MAX_AGE_S + 60) continue;
    const mac = Uint8Array.from(m[2]!.match(/../g)!, (h) => parseInt(h, 16));
    // crypto.subtle.verify compares in constant time.
    for (const keys of ring) if (await crypto.subtle.verify("HMAC", await hmacKey(keys.unlock), mac, message(link, exp))) return true;
  }
  return false;
}

/** Reads at most `max` bytes of a body; null when it is longer. */
async function readLimited(body: ReadableStream<Uint8Array> | null, max: number): Promise<string | null> {
  if (!body) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

export type Submission = { ok: true; password: string } | { ok: false; status: 413 | 415 };

/** The `password` field of a urlencoded form POST, size-limited. */
export async function readSubmission(req: Request): Promise<Submission> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers.get("content-type") ?? "")) return { ok: false, status: 415 };
  if (Number(req.headers.get("content-length") ?? 0) > MAX_FORM_BYTES) return { ok: false, status: 413 };
  const text = await readLimited(req.body, MAX_FORM_BYTES);
  if (text === null) return { ok: false, status: 413 };
  return { ok: true, password: new URLSearchParams(text).get("password") ?? "" };
}

/** The submitted password against the link's verifier, under any accepted key (an empty password never matches). */
export const checkPassword = (password: string, link: EdgeLink, ring: readonly Pick<Keys, "password">[]) =>
  password !== "" && link.password !== undefined ? checkVerifier(password, link.password, ring.map((k) => k.password)) : Promise.resolve(false);
