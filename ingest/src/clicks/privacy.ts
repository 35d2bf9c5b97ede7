import { createHmac } from "node:crypto";
import { isIP } from "node:net";
import { LRUCache } from "lru-cache";
import { CLICK_EVENT_VERSION, type ClickEvent, type Geo } from "../../../shared/event.ts";
import { agentClass, refererOrigin } from "../analytics/enrich.ts";

/**
 * The beacon-time privacy step (before PostgreSQL): the visitor hash (from the FULL IP), IP
 * truncation (IP_ANONYMIZE) and Do-Not-Track reduction (RESPECT_DNT). What PostgreSQL, the
 * outbox, Kinesis and the archive hold is the event after this step.
 */

/** IPv4 → /24 ("203.0.113.0"), IPv6 → /48 ("2001:db8:1::"); IPv4-mapped IPv6 keeps its /24. */
export function truncateIp(ip: string): string {
  const v = isIP(ip);
  if (v === 4) return `${ip.slice(0, ip.lastIndexOf("."))}.0`;
  if (v !== 6) return "";
  const mapped = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (mapped) return mapped[1] + truncateIp(mapped[2]!);
  const [head = "", tail = ""] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  const keep = groups.slice(0, 3).map((g) => parseInt(g, 16).toString(16));
  return `${keep.join(":")}::`;
}

/**
 * The day's salt: HMAC(secret, UTC date). Stable across processes and restarts (every ingest
 * derives the same salt), different every day, never stored. Whoever holds the secret can
 * derive a past day's salt again: change VISITOR_SALT_SECRET to make old hashes unlinkable.
 */
export const daySalt = (secret: string, day: string) => createHmac("sha256", secret).update(`linkflow-visitor-salt:${day}`).digest();
/**
 * The salts of the days clicks are arriving for (today, yesterday's late ones, the odd
 * timestamp beyond): derived once per day rather than once per click (an HMAC each, about a
 * third of the hashing under single-click load). Kept only in memory, like the salt itself.
 */
const salts = new LRUCache<string, Buffer>({ max: 8 });
const saltOf = (secret: string, day: string) => {
  const key = `${day}\n${secret}`;
  let salt = salts.get(key);
  if (!salt) salts.set(key, (salt = daySalt(secret, day)));
  return salt;
};

/**
 * The unique-visitor key: HMAC(day salt, IP + user agent), 128 bits in hex. Computed at beacon
 * time from the full IP (before truncation); the same visitor gets another hash the next day.
 */
export function visitorHash(secret: string, timestamp: string, ip: string, ua: string): string {
  // The UTC date: as written when the timestamp is UTC already (the edge's toISOString()).
  const day = timestamp.length >= 20 && timestamp[10] === "T" && timestamp.endsWith("Z") ? timestamp.slice(0, 10) : new Date(timestamp).toISOString().slice(0, 10);
  return createHmac("sha256", saltOf(secret, day)).update(`${ip}\n${ua}`).digest("hex").slice(0, 32);
}

export interface Privacy {
  /** Store /24 (IPv4) and /48 (IPv6) instead of the address. */
  anonymizeIp: boolean;
  /** Honour the edge's `dnt` flag (DNT: 1 or Sec-GPC: 1): personal fields dropped. */
  respectDnt: boolean;
  /** Secret the daily visitor salts derive from. */
  saltSecret: string;
}

/** A beacon event after the privacy step, with the visitor hash for the Kinesis record. */
export type PreparedEvent = ClickEvent & { visitor_hash: string };

/** Geo fields a Do-Not-Track click keeps (no city, postal code or coordinates). */
const coarseGeo = (g: Geo): Geo => {
  const { city: _c, postal_code: _p, latitude: _la, longitude: _lo, ...rest } = g;
  return rest;
};

/**
 * The privacy step at beacon time. A Do-Not-Track click (when respected) is still counted but
 * keeps no IP, only the device/bot class of its user agent, only the referer's origin, no
 * city or coordinates, and no visitor hash (it is not counted as a unique visitor).
 */
export function applyPrivacy(e: ClickEvent, p: Privacy): PreparedEvent {
  // The record states qr and dnt explicitly; dnt: true means "personal fields were dropped".
  if (e.dnt && p.respectDnt)
    return prepared(e, { ip_address: "", user_agent: agentClass(e.user_agent), referer: refererOrigin(e.referer), geo_location: coarseGeo(e.geo_location), dnt: true, visitor_hash: "" });
  return prepared(e, {
    ip_address: p.anonymizeIp ? truncateIp(e.ip_address) : e.ip_address,
    user_agent: e.user_agent,
    referer: e.referer,
    geo_location: e.geo_location,
    dnt: false, // not asked for, or not honoured (RESPECT_DNT=false): the record must not claim the reduction
    visitor_hash: visitorHash(p.saltSecret, e.timestamp, e.ip_address, e.user_agent),
  });
}

/** The fields the privacy step decides. */
type Private = Pick<PreparedEvent, "ip_address" | "user_agent" | "referer" | "geo_location" | "dnt" | "visitor_hash">;

/**
 * The prepared event, field by field: `{ ...e, ip_address, … }` cost ~4 µs a click in V8 (a
 * spread followed by overridden keys leaves the fast path), the literal ~40 ns.
 * enrich.test.ts checks that it carries every field of the shared schema.
 */
const prepared = (e: ClickEvent, x: Private): PreparedEvent => ({
  click_id: e.click_id,
  short_url: e.short_url,
  original_url: e.original_url,
  timestamp: e.timestamp,
  user_agent: x.user_agent,
  ip_address: x.ip_address,
  referer: x.referer,
  geo_location: x.geo_location,
  domain: e.domain,
  code: e.code,
  link_id: e.link_id,
  redirect_status: e.redirect_status,
  cache_tier: e.cache_tier,
  qr: e.qr ?? false,
  dnt: x.dnt,
  // Every record is the current version, whatever version the edge sent: the fields a version 1
  // event lacks get their defaults (docs/EVENTS.md).
  v: CLICK_EVENT_VERSION,
  origin_ms: e.origin_ms ?? null,
  isolate_id: e.isolate_id ?? null,
  seq: e.seq ?? null,
  visitor_hash: x.visitor_hash,
});
