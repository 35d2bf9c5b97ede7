import { randomInt } from "node:crypto";
import { CODE_PATTERN } from "../../../shared/constants.ts";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const CODE_LENGTH = 7;

/** A random base62 code; 62^7 ≈ 3.5e12, so the UNIQUE constraint almost never has to speak. */
export function randomCode(length = CODE_LENGTH): string {
  let out = "";
  for (let i = 0; i < length; i++) out += BASE62[randomInt(62)];
  return out;
}

/** Custom slugs: case-sensitive, a URL-safe alphabet, and never a path the worker owns. */
export const SLUG_RE = CODE_PATTERN;
export const RESERVED_SLUGS = new Set(["api", "_admin", "admin", "v1", "health", "healthz", "livez", "readyz", "metrics", "favicon.ico", "robots.txt"]);

export const isAllowedSlug = (slug: string) => SLUG_RE.test(slug) && !RESERVED_SLUGS.has(slug.toLowerCase());
