import type { CacheTier, EdgeLink, TargetingRule } from "../../shared/event.ts";
import { mergeUtm } from "../../shared/utm.ts";
import { forwardQuery } from "./query.ts";
import type { Resolution } from "./resolve.ts";
import { PASSWORD_WINDOW_S } from "./throttle.ts";

import type { DeviceType } from "../../shared/user-agent.ts";

/** What the visitor's User-Agent says (ua-parser-js), needed only by device and OS rules. */
export interface Agent {
  device: DeviceType;
  /** ua-parser-js's OS name ("iOS", "Android", "Windows", "macOS", "Linux"…), "" when unknown. */
  os: string;
}

/**
 * The facts of one request that rules may look at. The costly ones are thunks, so a plain
 * redirect never parses a User-Agent or an Accept-Language header (see facts.ts).
 */
export interface RequestFacts {
  /** Epoch ms. */
  now: number;
  /** request.cf.country (ISO 3166 alpha-2), when Cloudflare knows it. */
  country?: string;
  agent: () => Agent;
  /** Primary language subtags of Accept-Language, lower case, best first. */
  languages: () => string[];
  /** The visit came from the link's QR code (`?qr=1`). */
  qr: boolean;
  /** The request's raw query, without `?` ("" or absent: none), forwarded unless the link says not to. */
  query?: string;
  /** A form POST (password submission) rather than a GET/HEAD visit. */
  post?: boolean;
  /** A HEAD request (link checkers, unfurlers): answered like a GET, never counted as a click. */
  head?: boolean;
  /**
   * What the visitor proved about the link's password, once the worker has checked (it only
   * checks after a first decision asked for the password, so plain redirects cost no crypto):
   * "cookie": a valid unlock cookie; "verified"/"wrong": the submitted password; "throttled":
   * a submission over the client's attempts for this link (not checked, edge/src/throttle.ts).
   */
  password?: "cookie" | "verified" | "wrong" | "throttled";
}

export type Decision =
  /**
   * Send the visitor on (and count the click, unless `count` is false: a HEAD); `noindex`: answer
   * with `X-Robots-Tag: noindex` (every link but a crawlable one).
   */
  | { kind: "redirect"; status: EdgeLink["status"]; location: string; link: EdgeLink; tier: CacheTier; qr: boolean; count: boolean; noindex: boolean }
  /** Expired, exhausted or archived, with a fallback URL: 302 there (and count the click, unless a HEAD); never indexed. */
  | { kind: "expired_redirect"; status: 302; location: string; link: EdgeLink; tier: CacheTier; qr: boolean; count: boolean; noindex: true }
  /** Expired, exhausted or archived, without a fallback: 410. */
  | { kind: "expired"; link: EdgeLink }
  /** The link has a password and the visitor has not proved it (yet): the form (401 after a wrong one). */
  | { kind: "password_form"; link: EdgeLink; error?: "wrong_password" }
  /** Too many password submissions from this client for this link: 429, nothing checked. */
  | { kind: "throttled"; link: EdgeLink; retryAfterS: number }
  /** The right password was submitted: set the unlock cookie and send the browser back to the same URL (303). */
  | { kind: "unlocked"; link: EdgeLink }
  /** A POST to a link that asks for no password (any more): back to the same URL as a GET (303). */
  | { kind: "reload" }
  | { kind: "not_found" }
  | { kind: "unavailable" };

/** True when every condition the rule gives holds (lists: any of). */
export function ruleMatches(rule: TargetingRule, f: RequestFacts): boolean {
  if (rule.country && !(f.country && rule.country.includes(f.country))) return false;
  if (rule.device && !rule.device.includes(f.agent().device)) return false;
  if (rule.os) {
    const os = f.agent().os.toLowerCase();
    if (!os || !rule.os.some((o) => o.toLowerCase() === os)) return false;
  }
  if (rule.language) {
    const langs = f.languages();
    if (!langs.some((l) => rule.language!.includes(l))) return false;
  }
  return true;
}

/** A targeting URL with the link's UTM parameters; a URL that does not parse is used as it is. */
function withUtm(url: string, utm: Record<string, string> | undefined): string {
  try {
    return mergeUtm(url, utm);
  } catch {
    return url;
  }
}

/**
 * The one edge decision, pure: the resolved link and the request's facts → what to answer.
 * Order: unknown/unavailable, then expired or gone (no password asked for a dead link), then
 * the password (a throttled submission before anything else about it), then targeting (first
 * matching rule) with the link's UTM merged in, then the visitor's query forwarded into it
 * (edge/src/query.ts: the visitor's keys win; not into an expired link's fallback, as Shlink and
 * Dub). A HEAD gets the same answer, uncounted.
 */
export function decide(resolution: Resolution, f: RequestFacts): Decision {
  const { link, tier } = resolution;
  if (link === undefined) return { kind: "unavailable" };
  if (link === null) return { kind: "not_found" };

  if (link.gone || (link.expires_at !== undefined && link.expires_at <= f.now)) {
    if (f.post) return { kind: "reload" };
    return link.expired_url ? { kind: "expired_redirect", status: 302, location: link.expired_url, link, tier, qr: f.qr, count: !f.head, noindex: true } : { kind: "expired", link };
  }

  if (link.password) {
    if (f.password === "throttled") return { kind: "throttled", link, retryAfterS: PASSWORD_WINDOW_S };
    if (f.password === "verified") return { kind: "unlocked", link };
    if (f.password === "wrong") return { kind: "password_form", link, error: "wrong_password" };
    if (f.password !== "cookie") return { kind: "password_form", link };
  }
  if (f.post) return { kind: "reload" };

  // link.url already carries the UTM parameters (ingest merged them); targeting URLs do not.
  let location = link.url;
  if (link.targeting) {
    for (const rule of link.targeting) {
      if (ruleMatches(rule, f)) {
        location = withUtm(rule.url, link.utm);
        break;
      }
    }
  }
  // Only a visit with a query pays for forwarding (string work, never a URL parse).
  if (f.query && link.forward_query !== false) location = forwardQuery(location, f.query);
  return { kind: "redirect", status: link.status, location, link, tier, qr: f.qr, count: !f.head, noindex: !link.crawlable };
}
