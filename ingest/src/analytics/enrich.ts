import { isbot } from "isbot";
import { LRUCache } from "lru-cache";
import { parseUserAgent, type DeviceType } from "../../../shared/user-agent.ts";
import { UTM_KEYS } from "../../../shared/utm.ts";

/**
 * Load-time enrichment (ingest/src/pipeline/loader.ts, before ClickHouse): user agent → browser,
 * OS, device, bot flag; referer → host; UTM from the destination. PostgreSQL keeps the event as
 * received after the beacon-time privacy step (clicks/privacy.ts); only ClickHouse holds the
 * derived columns.
 */

export interface Agent {
  browser: string;
  os: string;
  device: DeviceType;
  is_bot: boolean;
}

const agents = new LRUCache<string, Agent>({ max: 10_000 });

/** Browser, OS, device class (as the worker classifies it) and bot flag of a User-Agent. */
export function parseAgent(ua: string): Agent {
  const hit = agents.get(ua);
  if (hit) return hit;
  const agent: Agent = { ...parseUserAgent(ua), is_bot: isbot(ua) };
  agents.set(ua, agent);
  return agent;
}

/**
 * What a Do-Not-Track click keeps of its User-Agent: "bot", or the device class
 * ("desktop" | "mobile" | "tablet"). The loader reads it back with `agentOfClass`.
 */
export const agentClass = (ua: string): string => {
  const a = parseAgent(ua);
  return a.is_bot ? "bot" : a.device;
};
export const agentOfClass = (cls: string): Agent => ({
  browser: "",
  os: "",
  device: cls === "mobile" || cls === "tablet" ? cls : "desktop",
  is_bot: cls === "bot",
});

export const hostOf = (url: string): string => {
  try {
    return url ? new URL(url).hostname : "";
  } catch {
    return "";
  }
};

/** The referer without path or query (what a Do-Not-Track click keeps): "https://host/". */
export const refererOrigin = (url: string): string => {
  try {
    return url ? `${new URL(url).origin}/` : "";
  } catch {
    return "";
  }
};

export type Utm = Record<(typeof UTM_KEYS)[number], string>;

/** UTM parameters of the destination URL ("" when absent), each at most 256 characters. */
export function utmOf(url: string): Utm {
  const out = Object.fromEntries(UTM_KEYS.map((k) => [k, ""])) as Utm;
  try {
    const q = new URL(url).searchParams;
    for (const k of UTM_KEYS) out[k] = (q.get(k) ?? "").slice(0, 256);
  } catch {
    // not a URL: no UTM
  }
  return out;
}

/** Whether a click counts as a bot's (ClickHouse's is_bot; ingest's per-link counts leave them out). */
export const isBotClick = (r: { user_agent: string; dnt?: boolean }): boolean => (r.dnt ? agentOfClass(r.user_agent) : parseAgent(r.user_agent)).is_bot;

/** The derived ClickHouse columns of one click (the loader adds them to the row). */
export function enrich(r: { user_agent: string; referer: string; original_url: string; dnt?: boolean }) {
  const agent = r.dnt ? agentOfClass(r.user_agent) : parseAgent(r.user_agent);
  return { ...agent, referer_host: hostOf(r.referer), ...utmOf(r.original_url) };
}
