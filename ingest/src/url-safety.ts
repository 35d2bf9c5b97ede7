import { domainToASCII } from "node:url";

/**
 * Destination URL safety (issue 5, item 7). A link's destination ends up in a `Location`
 * header the worker sends to any visitor, so it must be a plain http(s) URL that cannot smuggle
 * a header, a script, credentials, or send the visitor back to the shortener itself (a loop).
 *
 * `checkUrl` does everything that needs no database; the caller then refuses destinations whose
 * host is one of the shortener's own (`ownHosts`, plus the custom domains table: see links-store.ts).
 */
export const MAX_URL_LENGTH = 2048;

export type UrlCheck = { ok: true; url: string; host: string } | { ok: false; reason: string };

const fail = (reason: string): UrlCheck => ({ ok: false, reason });

// Control characters (C0, DEL, C1), format characters (zero-width, bidi overrides),
// and every kind of whitespace or line/paragraph separator.
const FORBIDDEN_CHARS = /[\p{Cc}\p{Cf}\p{Z}\s]/u;
// A percent-encoded control character (%00-%1F, %7F) — also after decoding again (%250d → %0d).
const ENCODED_CONTROL = /%(?:[01][0-9a-f]|7f)/i;

/** Lower-case ASCII (punycode) form of a hostname, without a trailing dot; "" if not a valid host. */
export function normaliseHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) return h;
  h = h.replace(/\.$/, "");
  return domainToASCII(h);
}

/**
 * The structural checks. Returns the WHATWG-serialised URL (what is stored and redirected to)
 * and its normalised hostname, or the reason it is refused.
 */
export function checkUrl(raw: string): UrlCheck {
  if (typeof raw !== "string" || raw.length === 0) return fail("the URL is empty");
  if (raw.length > MAX_URL_LENGTH) return fail(`the URL is longer than ${MAX_URL_LENGTH} characters`);
  if (FORBIDDEN_CHARS.test(raw)) return fail("the URL contains whitespace or control characters");
  let decoded = raw;
  for (let i = 0; i < 3; i++) {
    if (ENCODED_CONTROL.test(decoded)) return fail("the URL contains a percent-encoded control character (CR, LF, tab, NUL…)");
    let next: string;
    try {
      next = decodeURIComponent(decoded);
    } catch {
      break; // a lone '%' is not an encoding; the URL parser below decides
    }
    if (next === decoded) break;
    decoded = next;
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(raw)?.[1];
  if (!scheme) return fail("the URL must be absolute (http:// or https://)");
  const lower = scheme.toLowerCase();
  if (lower !== "http" && lower !== "https") return fail(`the '${lower}:' scheme is not allowed; only http and https`);
  const rest = raw.slice(scheme.length + 1);
  if (!rest.startsWith("//")) return fail("the URL must have the form scheme://host/…");
  const authority = /^[^/?#]*/.exec(rest.slice(2))![0];
  if (authority.includes("\\")) return fail("the URL has a backslash in its host part");
  if (authority.includes("@")) return fail("the URL must not contain credentials (user:password@)");
  if (authority === "" || authority.startsWith(":")) return fail("the URL has no host");
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return fail("the URL cannot be parsed");
  }
  if (u.username || u.password) return fail("the URL must not contain credentials (user:password@)");
  const host = normaliseHost(u.hostname);
  if (!host) return fail("the URL has no valid host");
  const serialised = u.toString();
  if (serialised.length > MAX_URL_LENGTH) return fail(`the URL is longer than ${MAX_URL_LENGTH} characters once normalised`);
  return { ok: true, url: serialised, host };
}

/** The loop reason, for a destination on one of the shortener's own hosts. */
export const loopReason = (host: string) => `the URL points at the shortener itself (${host}): it would redirect in a loop`;

/** The shortener's own hostnames from configuration (SHORT_BASE_URL's host and the primary hosts). */
export function ownHostsOf(shortBaseUrl: string, primaryHosts: string): Set<string> {
  const out = new Set<string>();
  const base = normaliseHost(new URL(shortBaseUrl).hostname);
  if (base) out.add(base);
  for (const h of primaryHosts.split(",")) {
    const n = h.trim() ? normaliseHost(h.trim()) : "";
    if (n) out.add(n);
  }
  return out;
}
