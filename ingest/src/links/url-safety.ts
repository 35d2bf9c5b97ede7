import { normaliseHost } from "../../../shared/destination.ts";

/**
 * Destination URL safety: the rules both sides apply are in shared/destination.ts; what only
 * ingest knows is which hosts are the shortener's own (a destination there would loop).
 */
export { checkUrl, isPrivateHost, MAX_URL_LENGTH, normaliseHost, type UrlCheck } from "../../../shared/destination.ts";

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
