import { UAParser } from "ua-parser-js";

/** Device classes: what targeting rules match on and what stats break clicks down by. */
export const DEVICE_TYPES = ["desktop", "mobile", "tablet"] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

/**
 * Browser, OS and device class of a User-Agent (ua-parser-js), the same for the worker's
 * targeting and ingest's stats. No device type means a desktop browser; wearables count as
 * mobile; TVs, consoles and the rest as desktop. iPads that present themselves as a Mac
 * (iPadOS Safari's default) are desktops here, as they are for every UA parser. Only the
 * first 1,024 characters are read.
 */
export function parseUserAgent(ua: string): { browser: string; os: string; device: DeviceType } {
  const r = UAParser(ua.slice(0, 1024));
  const t = r.device.type;
  return {
    browser: r.browser.name ?? "",
    os: r.os.name ?? "",
    device: t === "mobile" || t === "wearable" ? "mobile" : t === "tablet" ? "tablet" : "desktop",
  };
}
