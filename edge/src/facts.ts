import { parseUserAgent } from "../../shared/user-agent.ts";
import type { Agent, RequestFacts } from "./decide.ts";
import { queryOf } from "./query.ts";

/** Device class and OS of a User-Agent, as ingest's stats classify it (shared/user-agent.ts). */
export function parseAgent(ua: string): Agent {
  const { device, os } = parseUserAgent(ua);
  return { device, os };
}

/**
 * Primary language subtags of an Accept-Language header, lower case, in q order (ties keep
 * header order), without duplicates, "*" or q=0. Only the first 20 entries are read.
 */
export function parseLanguages(header: string | null | undefined): string[] {
  if (!header) return [];
  const entries: { lang: string; q: number; i: number }[] = [];
  header
    .split(",", 20)
    .forEach((part, i) => {
      const [tag = "", ...params] = part.trim().split(";");
      const lang = tag.trim().split("-")[0]!.toLowerCase();
      if (!/^[a-z]{2,3}$/.test(lang)) return;
      let q = 1;
      for (const p of params) {
        const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
        if (m) q = Number(m[1]);
      }
      if (Number.isFinite(q) && q > 0) entries.push({ lang, q, i });
    });
  entries.sort((a, b) => b.q - a.q || a.i - b.i);
  return [...new Set(entries.map((e) => e.lang))];
}

/** Memoises a thunk: rules may ask more than once, the work runs at most once. */
const once = <T>(f: () => T): (() => T) => {
  let done = false;
  let v: T;
  return () => {
    if (!done) {
      v = f();
      done = true;
    }
    return v;
  };
};

/** `?qr=1`: the visit came from the link's QR code (that pair is never forwarded, edge/src/query.ts). */
export const qrVisit = (url: string) => {
  const q = url.indexOf("?");
  return q >= 0 && new URLSearchParams(url.slice(q + 1)).get("qr") === "1";
};

/** The request's facts for decide(): cheap fields now, the User-Agent and languages on demand. */
export function requestFacts(req: Request, now: number, post = false): RequestFacts {
  const country = (req.cf as { country?: unknown } | undefined)?.country;
  return {
    now,
    country: typeof country === "string" ? country : undefined,
    agent: once(() => parseAgent(req.headers.get("user-agent") ?? "")),
    languages: once(() => parseLanguages(req.headers.get("accept-language"))),
    qr: qrVisit(req.url),
    query: queryOf(req.url),
    post,
    head: req.method === "HEAD",
  };
}
