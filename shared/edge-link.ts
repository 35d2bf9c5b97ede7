import * as z from "zod/mini";

/**
 * The edge record and its targeting rules, in zod/mini: the worker validates pushed records and
 * the origin's answers with these, and zod/mini keeps its bundle small (zod classic brings ~440
 * KiB). zod/mini has no English messages of its own: edge/src/admin.ts passes classic's.
 */

import { CODE_PATTERN, REDIRECT_STATUSES } from "./constants.ts";
import { DEVICE_TYPES } from "./user-agent.ts";

export { DEVICE_TYPES };

const status = z.literal(REDIRECT_STATUSES);

/** A targeting rule: every condition given must hold (lists: any of); first matching rule wins. */
export const targetingRuleSchema = z.strictObject({
  country: z.optional(z.array(z.string().check(z.regex(/^[A-Z]{2}$/))).check(z.minLength(1), z.maxLength(250))),
  device: z.optional(z.array(z.enum(DEVICE_TYPES)).check(z.minLength(1))),
  /** OS names as ua-parser-js reports them, compared case-insensitively: "iOS", "Android", "Windows", "macOS", "Linux"… */
  os: z.optional(z.array(z.string().check(z.minLength(1), z.maxLength(32))).check(z.minLength(1), z.maxLength(20))),
  /** Primary language subtags from Accept-Language ("en", "de"). */
  language: z.optional(z.array(z.string().check(z.regex(/^[a-z]{2,3}$/))).check(z.minLength(1), z.maxLength(50))),
  url: z.string().check(z.maxLength(2048)),
});
export type TargetingRule = z.infer<typeof targetingRuleSchema>;

/**
 * The compact link record the edge needs to decide a request (what KV and /v1/resolve hold):
 * nothing the worker does not use. `url` already carries the link's UTM parameters.
 */
export const edgeLinkSchema = z.strictObject({
  id: z.number().check(z.int(), z.positive()),
  domain: z.string(),
  code: z.string(),
  url: z.string(),
  status,
  /** Epoch ms after which the link is expired. */
  expires_at: z.optional(z.number().check(z.int())),
  /** Where an expired (or exhausted, or archived) link sends visitors; absent: 410. */
  expired_url: z.optional(z.string()),
  /** Archived, or its click limit reached: answered like an expired link. */
  gone: z.optional(z.literal(true)),
  /**
   * The link's password verifier (shared/password.ts): the PBKDF2 hash sealed with the password
   * key, never the stored hash; the worker checks submissions with it.
   */
  password: z.optional(z.string().check(z.maxLength(512))),
  /** Rules checked in order; the first that matches replaces `url` (UTM merged too). */
  targeting: z.optional(z.array(targetingRuleSchema).check(z.maxLength(50))),
  /** UTM parameters, for the targeting URLs (already merged into `url`). */
  utm: z.optional(z.record(z.string(), z.string())),
  /** Present (false) only when the visitor's query must not be forwarded; absent: forwarded. */
  forward_query: z.optional(z.literal(false)),
  /** Present (true) only for a link search engines may index: no `X-Robots-Tag: noindex` on its redirect. */
  crawlable: z.optional(z.literal(true)),
});
export type EdgeLink = z.infer<typeof edgeLinkSchema>;

/** The one KV key layout, shared by the worker, ingest's write-through and the tests. */
export const linkKey = (domain: string, code: string) => `link:${domain}:${code}`;
/** The codes of a domain's crawlable links, which its robots.txt allows (ingest keeps it, PostgreSQL is the truth). */
export const robotsKey = (domain: string) => `robots:${domain}`;
/** The robots write-through's body: every crawlable code of the domain (the whole list each time; codes only, so no line can be injected). */
export const robotsSchema = z.strictObject({ domain: z.string(), allow: z.array(z.string().check(z.regex(CODE_PATTERN))).check(z.maxLength(100_000)) });
export type Robots = z.infer<typeof robotsSchema>;
