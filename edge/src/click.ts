import { CLICK_EVENT_VERSION } from "../../shared/constants.ts";
import type { CacheTier, ClickEvent, EdgeLink, Geo } from "../../shared/event.ts";
import { originOf } from "./url.ts";

const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;
const IPV6 = /^[0-9a-fA-F:.]{2,45}$/;

const cut = (s: string | null | undefined, max: number) => (s ?? "").slice(0, max);
const str = (v: unknown, max: number) => (typeof v === "string" && v ? v.slice(0, max) : undefined);
const coord = (v: unknown, limit: number) => {
  const n = typeof v === "string" ? Number(v) : typeof v === "number" ? v : NaN;
  return Number.isFinite(n) && Math.abs(n) <= limit ? n : undefined;
};

/** The visitor's IP: Cloudflare's header, else the first X-Forwarded-For hop (dev, proxies). */
export function clientIp(headers: Headers): string {
  const raw = headers.get("cf-connecting-ip") ?? headers.get("x-forwarded-for")?.split(",")[0] ?? "";
  const ip = raw.trim();
  return IPV4.test(ip) || (ip.includes(":") && IPV6.test(ip)) ? ip : "";
}

/** Sets a geo field that holds a value (a module-level function: a closure per call cost more). */
function put<K extends keyof Geo>(geo: Geo, k: K, v: Geo[K] | undefined) {
  if (v !== undefined) geo[k] = v;
}

/**
 * What request.cf says about where the visitor is (Cloudflare sends lat/long as strings).
 * Only the fields that hold a usable value are set (~0.35 µs; building the full object and
 * filtering its entries cost ~3 µs a redirect).
 */
export function geoFrom(cf: Record<string, unknown> | undefined): Geo {
  const geo: Geo = {};
  if (!cf) return geo;
  // ISO 3166 alpha-2 (Cloudflare also uses XX and T1); anything else is not a country code.
  put(geo, "country", typeof cf.country === "string" && /^[A-Z0-9]{2}$/.test(cf.country) ? cf.country : undefined);
  put(geo, "region", str(cf.region, 128));
  put(geo, "region_code", str(cf.regionCode, 16));
  put(geo, "city", str(cf.city, 128));
  put(geo, "postal_code", str(cf.postalCode, 32));
  put(geo, "continent", typeof cf.continent === "string" && /^[A-Z]{2}$/.test(cf.continent) ? cf.continent : undefined);
  put(geo, "latitude", coord(cf.latitude, 90));
  put(geo, "longitude", coord(cf.longitude, 180));
  put(geo, "timezone", str(cf.timezone, 64));
  put(geo, "colo", str(cf.colo, 8));
  put(geo, "asn", typeof cf.asn === "number" && Number.isInteger(cf.asn) && cf.asn >= 0 ? cf.asn : undefined);
  return geo;
}

let second = NaN;
let secondIso = "";
/**
 * `new Date(ms).toISOString()` for an integral epoch ms (Date.now()): toISOString once per
 * second, then only the milliseconds are appended. toISOString was ~3 % of the worker's CPU
 * per redirect (profile under load), and still ~1 % when remembered per millisecond.
 */
export function isoTime(ms: number): string {
  const s = Math.floor(ms / 1000) * 1000;
  if (s !== second) {
    secondIso = new Date(s).toISOString().slice(0, 20); // "YYYY-MM-DDTHH:MM:SS."
    second = s;
  }
  const m = ms - s;
  return `${secondIso}${m < 10 ? "00" : m < 100 ? "0" : ""}${m}Z`;
}

/**
 * This isolate's click numbering (click event version 3): an id drawn with its first click (no
 * random values at a worker's global scope) and a counter. Ingest counts the gaps per isolate
 * (`clicks_missing`): a click built here and never stored leaves one.
 */
let isolateId = "";
let isolateSeq = 0;

/** What a redirect sent: the link, the tier that found it, where the visitor went and how. */
export interface Sent {
  link: EdgeLink;
  tier: CacheTier;
  location: string;
  status: EdgeLink["status"];
  qr: boolean;
}

/**
 * The click event for one redirect. `original_url` is where the visitor was actually sent (a
 * targeting rule's URL, or the expired link's fallback). Every field is clipped to what the
 * shared schema accepts: a hostile header must never make ingest refuse (and so lose) a real click.
 * `originMs`: how long the origin resolve took, sent only on origin-tier clicks.
 */
export function buildClick(req: Request, sent: Sent, now = Date.now(), originMs?: number): ClickEvent {
  const { link } = sent;
  const click: ClickEvent = {
    v: CLICK_EVENT_VERSION,
    click_id: crypto.randomUUID(),
    short_url: `${originOf(req.url)}/${encodeURIComponent(link.code)}`,
    original_url: sent.location.slice(0, 8192),
    timestamp: isoTime(now),
    user_agent: cut(req.headers.get("user-agent"), 1024),
    ip_address: clientIp(req.headers),
    referer: cut(req.headers.get("referer"), 2048),
    geo_location: geoFrom(req.cf as Record<string, unknown> | undefined),
    domain: link.domain,
    code: link.code,
    link_id: link.id,
    redirect_status: sent.status,
    cache_tier: sent.tier,
    isolate_id: isolateId || (isolateId = crypto.randomUUID()),
    seq: ++isolateSeq,
  };
  // Set only when true (spreads of `{ qr: true }` or `{}` into the literal cost more than the rest).
  if (sent.qr) click.qr = true;
  // The visitor asked not to be tracked; ingest drops the personal fields (RESPECT_DNT) but counts the click.
  if (req.headers.get("dnt") === "1" || req.headers.get("sec-gpc") === "1") click.dnt = true;
  // Clipped to the schema's range (never a refused click); 0 if the clock stepped back.
  if (sent.tier === "origin" && originMs !== undefined) click.origin_ms = Math.min(Math.max(0, Math.round(originMs)), 2_147_483_647);
  return click;
}
