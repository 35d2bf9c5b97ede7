import { z } from "@hono/zod-openapi";
import { DEVICE_TYPES, REDIRECT_STATUSES } from "../../../shared/event.ts";
import { isAllowedSlug } from "./codes.ts";

/**
 * The link API's request and response schemas: what the handlers validate against and what
 * /openapi.json publishes (one definition, so the spec cannot drift from the code).
 */

export const MAX_TAGS = 20;
export const MAX_TAG_LENGTH = 50;
export const MAX_BULK = 1000;
/** Characters that separate tags in CSV cells, so never part of a tag. */
export const TAG_SEPARATORS = /[,;|]/;

// The destination fields are plain strings here: url-safety.ts decides (400 `unsafe_url`).
const destination = (what: string) => z.string().max(8192).openapi({ description: `${what}: an absolute http(s) URL, at most 2,048 characters; see "URL safety"`, example: "https://example.com/landing" });

const slug = z
  .string()
  .refine(isAllowedSlug, "slug must be 1-64 of A-Z a-z 0-9 _ - (starting with a letter or digit) and not reserved")
  .openapi({ description: "the short code; case-sensitive; omitted: a random 7-character base62 code", example: "spring-sale" });

const tag = z
  .string()
  .trim()
  .min(1)
  .max(MAX_TAG_LENGTH)
  .refine((t) => !TAG_SEPARATORS.test(t) && !/\p{Cc}/u.test(t), "tags cannot contain , ; | or control characters");

// A union of literals, not z.literal([…]): the OpenAPI generator writes the latter as a string enum.
export const redirectStatus = z.union(REDIRECT_STATUSES.map((s) => z.literal(s)) as [z.ZodLiteral<301>, z.ZodLiteral<302>, z.ZodLiteral<307>, z.ZodLiteral<308>]);

const utmValue = z.string().min(1).max(200);
export const UtmSchema = z
  .object({
    utm_source: utmValue.optional(),
    utm_medium: utmValue.optional(),
    utm_campaign: utmValue.optional(),
    utm_term: utmValue.optional(),
    utm_content: utmValue.optional(),
  })
  .strict()
  .openapi("Utm", { description: "UTM parameters appended to the destination (a parameter the URL already has is kept as is)" });

export const TargetingRuleSchema = z
  .object({
    country: z.array(z.string().regex(/^[A-Z]{2}$/)).min(1).max(250).optional().openapi({ description: "ISO 3166-1 alpha-2 codes (any of)" }),
    device: z.array(z.enum(DEVICE_TYPES)).min(1).optional(),
    os: z.array(z.string().min(1).max(32)).min(1).max(20).optional().openapi({ description: 'OS names as ua-parser-js reports them ("iOS", "Android", "Windows", "macOS", "Linux"), case-insensitive' }),
    language: z.array(z.string().regex(/^[a-z]{2,3}$/)).min(1).max(50).optional().openapi({ description: 'primary language subtags from Accept-Language ("en", "de")' }),
    url: destination("where visitors matching this rule go"),
  })
  .strict()
  .openapi("TargetingRule", { description: "every condition given must hold; the first matching rule wins" });

const fields = {
  domain: z.string().max(253).openapi({ description: "'' (the primary short domain) or one of the workspace's custom domains", example: "" }),
  title: z.string().max(500).nullable(),
  tags: z.array(tag).max(MAX_TAGS).openapi({ description: `at most ${MAX_TAGS} tags of at most ${MAX_TAG_LENGTH} characters (no , ; |)` }),
  redirect_status: redirectStatus.openapi({ description: "HTTP status of the redirect", example: 302 }),
  expires_at: z.iso.datetime({ offset: true }).nullable().openapi({ description: "after this time visitors get expired_url, or 410" }),
  expired_url: destination("where visitors go once the link expired, was archived or reached max_clicks (absent: 410)").nullable(),
  max_clicks: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).nullable().openapi({ description: "the link stops redirecting after this many counted clicks" }),
  password: z.string().min(1).max(128).nullable().openapi({ description: "write-only: visitors must enter it; stored only as a PBKDF2 hash", writeOnly: true }),
  targeting: z.array(TargetingRuleSchema).max(50),
  utm: UtmSchema,
  archived: z.boolean().openapi({ description: "archived links answer like expired ones and are hidden from the list by default" }),
  forward_query: z.boolean().openapi({ description: "the visitor's query string is passed on to the destination (its keys win; `qr=1` never); default true" }),
  crawlable: z.boolean().openapi({ description: "search engines may follow and index it: listed as `Allow` in its domain's robots.txt, no `X-Robots-Tag: noindex`; default false" }),
};

export const LinkCreateSchema = z
  .object({
    url: destination("the destination"),
    slug: slug.optional(),
    domain: fields.domain.optional(),
    title: fields.title.optional(),
    tags: fields.tags.optional(),
    redirect_status: fields.redirect_status.optional(),
    expires_at: fields.expires_at.optional(),
    expired_url: fields.expired_url.optional(),
    max_clicks: fields.max_clicks.optional(),
    password: fields.password.optional(),
    targeting: fields.targeting.optional(),
    utm: fields.utm.optional(),
    archived: fields.archived.optional(),
    forward_query: fields.forward_query.optional(),
    crawlable: fields.crawlable.optional(),
  })
  .strict()
  .openapi("LinkCreate");
export type LinkCreate = z.infer<typeof LinkCreateSchema>;

export const LinkUpdateSchema = z
  .object({
    url: destination("the destination").optional(),
    slug: slug.optional(),
    domain: fields.domain.optional(),
    title: fields.title.optional(),
    tags: fields.tags.optional(),
    redirect_status: fields.redirect_status.optional(),
    expires_at: fields.expires_at.optional(),
    expired_url: fields.expired_url.optional(),
    max_clicks: fields.max_clicks.optional().openapi({ description: "changing it clears limit_reached_at (the enforcer counts again)" }),
    password: fields.password.optional().openapi({ description: "write-only; null removes the password" }),
    targeting: fields.targeting.optional(),
    utm: fields.utm.optional(),
    archived: fields.archived.optional(),
    forward_query: fields.forward_query.optional(),
    crawlable: fields.crawlable.optional(),
  })
  .strict()
  .openapi("LinkUpdate", { description: "only the fields given change; null clears a nullable field" });
export type LinkUpdate = z.infer<typeof LinkUpdateSchema>;

export const LinkSchema = z
  .object({
    id: z.number().int().positive(),
    code: z.string(),
    domain: z.string(),
    short_url: z.string().openapi({ example: "https://lnk.example/spring-sale" }),
    url: z.string(),
    redirect_status: redirectStatus,
    title: z.string().nullable(),
    tags: z.array(z.string()),
    expires_at: z.string().nullable(),
    expired_url: z.string().nullable(),
    max_clicks: z.number().int().nullable(),
    has_password: z.boolean(),
    targeting: z.array(TargetingRuleSchema),
    utm: UtmSchema,
    archived: z.boolean(),
    forward_query: fields.forward_query,
    crawlable: fields.crawlable,
    limit_reached_at: z.string().nullable().openapi({ description: "when the click limit was reached (set by the enforcer)" }),
    clicks: z.number().int().openapi({ description: "all-time clicks, bots excluded: exact, the number GET /api/stats gives for the link over its lifetime (counted when ingest stores a click; the stats API sees it once the pipeline has loaded it, seconds later)" }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .strict()
  .openapi("Link");
export type Link = z.infer<typeof LinkSchema>;

export const LinkListSchema = z
  .object({
    items: z.array(LinkSchema),
    next_cursor: z.string().nullable().openapi({ description: "pass as `cursor` for the next page; null on the last page" }),
  })
  .openapi("LinkList");

export const ListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50).openapi({ description: "page size (1-100)" }),
  cursor: z.string().max(200).optional().openapi({ description: "opaque: next_cursor of the previous page" }),
  q: z.string().max(200).optional().openapi({ description: "case-insensitive substring of url, slug or title" }),
  tag: z.string().max(MAX_TAG_LENGTH).optional(),
  domain: z.string().max(253).optional(),
  archived: z.enum(["false", "true", "all"]).default("false").openapi({ description: "false: active links only (default); true: archived only; all: both" }),
  sort: z.enum(["-created_at", "created_at", "-clicks", "clicks"]).default("-created_at").openapi({ description: "newest first (default), oldest first, most clicked first, or least clicked first (ties: newest id first / oldest id first)" }),
});
export type ListQuery = z.infer<typeof ListQuerySchema>;

export const ExportQuerySchema = ListQuerySchema.omit({ limit: true, cursor: true }).extend({
  archived: z.enum(["false", "true", "all"]).default("all").openapi({ description: "default all: an export is a backup" }),
});

export const IdParamSchema = z.object({
  id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).openapi({ param: { name: "id", in: "path" }, example: 42 }),
});

export const InfoQuerySchema = z.object({
  domain: z.string().max(253).default("").openapi({ description: "'' for the primary short domain" }),
  slug: z.string().min(1).max(64),
});

export const QrQuerySchema = z.object({
  format: z.enum(["svg", "png"]).default("svg"),
  size: z.coerce.number().int().min(64).max(2048).default(512).openapi({ description: "width and height in pixels (64-2048)" }),
});

const ItemErrorSchema = z.object({ status: z.number().int(), code: z.string(), message: z.string(), field: z.string().optional() });

export const BulkItemResultSchema = z
  .object({
    index: z.number().int().nonnegative().openapi({ description: "position in the request (CSV: data row, from 0)" }),
    status: z.number().int().openapi({ description: "201 created, or the error's status" }),
    link: LinkSchema.optional(),
    error: ItemErrorSchema.optional(),
  })
  .openapi("BulkItemResult");

export const BulkRequestSchema = z
  .object({
    links: z
      .array(z.unknown())
      .min(1)
      .max(MAX_BULK)
      .openapi({ description: `1-${MAX_BULK} LinkCreate objects; each is validated on its own`, items: { $ref: "#/components/schemas/LinkCreate" } }),
  })
  .strict()
  .openapi("BulkRequest");

export const BulkResultSchema = z
  .object({
    created: z.number().int(),
    failed: z.number().int(),
    results: z.array(BulkItemResultSchema),
  })
  .openapi("BulkResult");

export const ImportResultSchema = BulkResultSchema.extend({
  format: z.enum(["linkflow", "bitly", "shlink"]).openapi({ description: "the layout recognised from the header row" }),
}).openapi("ImportResult");
