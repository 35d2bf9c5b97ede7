import type { EdgeLink } from "../../shared/event.ts";
import type { Env } from "./env.ts";

/**
 * Password guessing throttle: every password submission to a link counts against that link and
 * client in the PASSWORD_LIMITER rate-limiting binding (wrangler.toml `[[ratelimits]]`, 10 per
 * 60 s), asked BEFORE the PBKDF2 check, so a throttled client costs no crypto and learns
 * nothing. The binding's `limit()` both checks and counts and cannot tell right from wrong
 * before the check, so right submissions count too (one per day is enough: the unlock cookie).
 * Cloudflare counts per location and approximately; Miniflare counts exactly, in fixed windows.
 */

/** wrangler.toml's `simple.period` of PASSWORD_LIMITER (test/wrangler.test.ts holds them equal): the Retry-After of a 429. */
export const PASSWORD_WINDOW_S = 60;

/** The client when CF-Connecting-IP is missing or not an IP (never on Cloudflare): one client per link. */
export const UNKNOWN_CLIENT = "unknown";

const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;
const HEXTET = /^[0-9a-f]{1,4}$/;

/** The /64 of an IPv6 address (what one subscriber gets, so one client), or undefined if it is not one. */
function ipv6Prefix(ip: string): string | undefined {
  const halves = ip.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s ? s.split(":") : []);
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  // A trailing dotted IPv4 (::ffff:192.0.2.1) takes two groups.
  const last = (halves.length === 2 ? tail.at(-1) : head.at(-1)) ?? "";
  const size = head.length + tail.length + (last.includes(".") ? 1 : 0);
  if (size > 8 || (halves.length === 1 && size !== 8)) return undefined;
  const all = [...head, ...Array<string>(8 - size).fill("0"), ...tail].slice(0, 4);
  if (!all.every((g) => HEXTET.test(g))) return undefined;
  return all.map((g) => parseInt(g, 16).toString(16)).join(":") + "::/64";
}

/**
 * Who is guessing: CF-Connecting-IP, which Cloudflare sets (a client cannot), never
 * X-Forwarded-For, which a client writes. An IPv6 client is its /64; an IPv4-mapped address is
 * its IPv4.
 */
export function throttleClient(headers: Headers): string {
  const ip = (headers.get("cf-connecting-ip") ?? "").trim().toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ip);
  if (mapped) return mapped[1]!;
  if (IPV4.test(ip)) return ip;
  return (ip.includes(":") && ipv6Prefix(ip)) || UNKNOWN_CLIENT;
}

/** The limiter key of a link (its id: a new code or domain keeps it) and a client. */
export const passwordKey = (link: EdgeLink, client: string) => `pw:${link.id}:${client}`;

let unthrottledLogged = false;

/**
 * Counts one password submission and says whether it may be checked (false: answer 429).
 * Without the binding, or when it fails, submissions go through (logged): a limiter outage
 * must not lock visitors out of every protected link.
 */
export async function passwordAttemptAllowed(env: Env, link: EdgeLink, headers: Headers): Promise<boolean> {
  const limiter = env.PASSWORD_LIMITER;
  if (!limiter) {
    if (!unthrottledLogged) console.warn("PASSWORD_LIMITER is not bound: password guesses are not throttled");
    unthrottledLogged = true;
    return true;
  }
  try {
    return (await limiter.limit({ key: passwordKey(link, throttleClient(headers)) })).success;
  } catch (e) {
    console.error("PASSWORD_LIMITER failed, password submission not throttled:", e);
    return true;
  }
}
