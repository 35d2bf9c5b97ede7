import { randomBytes } from "node:crypto";
import { promises as dns } from "node:dns";

/**
 * Proof of domain ownership: the claiming workspace publishes a DNS TXT record
 * `_linkflow-challenge.<hostname>` with the value `linkflow-verify=<token>`; only whoever controls
 * the zone can. This module only names the record and looks it up.
 */
export const challengeName = (hostname: string) => `_linkflow-challenge.${hostname}`;
export const challengeValue = (token: string) => `linkflow-verify=${token}`;
export const newVerificationToken = () => randomBytes(16).toString("hex");

/** The TXT strings at a name ([] when there is none), or the lookup's failure. */
export type TxtLookup = (name: string) => Promise<{ ok: true; values: string[] } | { ok: false; reason: string }>;

// "No such name" and "no TXT there" are answers (no record), not failures.
const NO_RECORD = new Set<string>([dns.NODATA, dns.NOTFOUND]);

/**
 * TXT lookups through `servers` (DNS_RESOLVER: comma list of ip or ip:port; empty: the system's
 * resolvers). A bad server address throws here, at startup.
 */
export function txtLookup(servers?: string): TxtLookup {
  const resolver = new dns.Resolver({ timeout: 2_000, tries: 2 });
  const list = (servers ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  if (list.length) resolver.setServers(list);
  return async (name) => {
    try {
      // A TXT record may be split into several strings of ≤255 bytes: they form one value.
      return { ok: true, values: (await resolver.resolveTxt(name)).map((chunks) => chunks.join("")) };
    } catch (err) {
      const code = (err as { code?: string }).code ?? "error";
      return NO_RECORD.has(code) ? { ok: true, values: [] } : { ok: false, reason: `the DNS lookup failed (${code})` };
    }
  };
}
