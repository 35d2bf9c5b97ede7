/**
 * Destination safety, one rule set for both sides: ingest checks every destination a link is
 * given (400 `unsafe_url`), and the worker checks every record pushed to /_admin/links, so a
 * signed push cannot put what ingest would refuse into KV. A destination ends up in a
 * `Location` header sent to any visitor: it must be a plain http(s) URL that cannot smuggle a
 * header, a script or credentials, and (unless allowed) does not point into private address
 * space, where a visitor's browser or an unfurler would reach the operator's own network.
 * Plain WHATWG URL code only (no node:url): it runs in workerd as it is.
 */
export const MAX_URL_LENGTH = 2048;

export type UrlCheck = { ok: true; url: string; host: string } | { ok: false; reason: string };

const fail = (reason: string): UrlCheck => ({ ok: false, reason });

// Control characters (C0, DEL, C1), format characters (zero-width, bidi overrides),
// and every kind of whitespace or line/paragraph separator.
const FORBIDDEN_CHARS = /[\p{Cc}\p{Cf}\p{Z}\s]/u;
// What a decoded URL may not hold: controls, format characters (bidi overrides such as
// %E2%80%AE) and line/paragraph separators; an encoded space (%20) is fine.
const FORBIDDEN_DECODED = /[\p{Cc}\p{Cf}\u2028\u2029]/u;
// A percent-encoded control character (%00-%1F, %7F) — also after decoding again (%250d → %0d).
const ENCODED_CONTROL = /%(?:[01][0-9a-f]|7f)/i;

/** Lower-case ASCII (punycode) form of a hostname, without a trailing dot; "" if not a valid host. */
export function normaliseHost(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) return h;
  if (!h || /[/?#@\\:\s]/.test(h)) return "";
  try {
    return new URL(`http://${h.replace(/\.$/, "")}/`).hostname;
  } catch {
    return "";
  }
}

const ipv4 = (host: string): number[] | null => {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return m ? m.slice(1).map(Number) : null;
};

/** Private, loopback, link-local, CGNAT, unspecified, benchmark, multicast and reserved IPv4. */
function privateIpv4([a = 0, b = 0]: number[]): boolean {
  return (
    a === 0 || a === 10 || a === 127 || a >= 224 ||
    (a === 100 && b >= 64 && b < 128) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b < 32) ||
    (a === 192 && (b === 168 || b === 0)) ||
    (a === 198 && (b === 18 || b === 19))
  );
}

/** The eight 16-bit groups of a serialised IPv6 address (the URL parser writes no dotted quad). */
function ipv6Groups(addr: string): number[] | null {
  const [head, tail, more] = addr.split("::");
  if (more !== undefined) return null;
  const part = (s: string | undefined) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const h = part(head);
  const t = part(tail);
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

function privateIpv6(groups: number[]): boolean {
  const [g0] = groups as [number];
  const zeroTo = (n: number) => groups.slice(0, n).every((g) => g === 0);
  if (zeroTo(8) || (zeroTo(7) && groups[7] === 1)) return true; // :: and ::1
  if ((g0 & 0xfe00) === 0xfc00 || (g0 & 0xffc0) === 0xfe80 || (g0 & 0xff00) === 0xff00) return true; // ULA, link-local, multicast
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible and NAT64 (64:ff9b::/96): the IPv4 address decides.
  const mapped = (zeroTo(5) && (groups[5] === 0xffff || groups[5] === 0)) || (g0 === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0));
  return mapped && privateIpv4([groups[6]! >> 8, groups[6]! & 0xff]);
}

// Names that only resolve inside a network (RFC 6761/6762/8375) and cloud metadata endpoints.
const PRIVATE_NAMES = /(^|\.)(localhost|local|internal|intranet|lan|home\.arpa|localdomain)$/;

/** True for a normalised host in private, loopback or link-local space, or a name only a local network resolves. */
export function isPrivateHost(host: string): boolean {
  if (host.startsWith("[")) {
    const groups = ipv6Groups(host.slice(1, -1));
    return groups === null || privateIpv6(groups);
  }
  const v4 = ipv4(host);
  if (v4) return privateIpv4(v4);
  // A single label ("intranet", "metadata") resolves through the resolver's search domains.
  return !host.includes(".") || PRIVATE_NAMES.test(host);
}

/**
 * The checks of one destination. Returns the WHATWG-serialised URL (what is stored and
 * redirected to) and its normalised hostname, or the reason it is refused. Ingest then also
 * refuses the shortener's own hosts (a loop), which only it knows.
 */
export function checkUrl(raw: string, opts: { allowPrivate?: boolean } = {}): UrlCheck {
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
      break; // a lone '%' or a partial UTF-8 sequence is not an encoding; the URL parser below decides
    }
    if (next === decoded) break;
    if (FORBIDDEN_DECODED.test(next)) return fail("the URL contains a percent-encoded control or format character (bidi override, zero-width…)");
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
  if (!opts.allowPrivate && isPrivateHost(host))
    return fail(`the URL points into private or local address space (${host}); set ALLOW_PRIVATE_DESTINATIONS=true to allow it`);
  const serialised = u.toString();
  if (serialised.length > MAX_URL_LENGTH) return fail(`the URL is longer than ${MAX_URL_LENGTH} characters once normalised`);
  return { ok: true, url: serialised, host };
}
