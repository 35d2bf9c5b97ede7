import { createHmac, timingSafeEqual } from "node:crypto";
import { SIGNATURE_WINDOW_S, type KeyMaterial, type VerifyResult } from "../../../shared/signing.ts";

/**
 * shared/signing.ts `verify`, with node:crypto's synchronous HMAC instead of WebCrypto, for
 * the beacon route only (with a key ring, as `verify`): under single-click load WebCrypto's verify (a promise job per call,
 * key and buffer transfers) took more of ingest's CPU than the whole HTTP request path
 * (`node --cpu-prof`, see docs/BENCHMARKS.md). Same header rules, same results:
 * beacon-signature.test.ts checks it against `verify` on valid, tampered, expired and
 * malformed headers. The parsing below is `verify`'s, line for line.
 */
export function verifyBeacon(keys: KeyMaterial | readonly KeyMaterial[], header: string | null | undefined, message: string, nowS = Math.floor(Date.now() / 1000)): VerifyResult {
  if (!header) return { ok: false, reason: "missing" };
  const pairs = header.split(",").map((p) => {
    const i = p.indexOf("=");
    return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const;
  });
  const parts = new Map(pairs);
  if (parts.size !== pairs.length) return { ok: false, reason: "malformed" };
  const t = Number(parts.get("t"));
  const hex = parts.get("v1") ?? "";
  if (!Number.isSafeInteger(t) || hex.length !== 64 || !/^[0-9a-f]*$/i.test(hex)) return { ok: false, reason: "malformed" };
  if (Math.abs(nowS - t) > SIGNATURE_WINDOW_S) return { ok: false, reason: "expired" };
  const mac = Buffer.from(hex, "hex");
  for (const key of Array.isArray(keys) ? keys : [keys])
    if (timingSafeEqual(mac, createHmac("sha256", key as KeyMaterial).update(`${t}.${message}`).digest())) return { ok: true };
  return { ok: false, reason: "mismatch" };
}
