import { DOMAIN_ERROR_STATUS } from "./errors.ts";
import { z, type OpenAPIHono } from "@hono/zod-openapi";

/**
 * The error codes the API answers with, by status: what routes and domain code throw as
 * ApiError, the validation hook's codes, and app.ts's onError (`internal`, the database's
 * `unavailable`). The spec's error schemas list them, so a client can switch on `code`.
 * These are the codes the HTTP layer itself answers with (routes, validators, auth, limits);
 * ERROR_CODES below adds the domain's (ingest/src/errors.ts), by the status they map to.
 */
const HTTP_ERROR_CODES = {
  400: ["invalid_body", "invalid_query", "invalid_params", "invalid_json", "invalid_hostname"],
  401: ["unauthorized"],
  403: ["forbidden"],
  404: ["not_found"],
  409: ["domain_taken", "domain_in_use", "domain_in_use_as_destination"],
  413: ["too_large"],
  415: ["unsupported_media_type"],
  422: ["verification_failed"],
  429: ["rate_limited", "too_many_streams"],
  500: ["internal"],
  503: ["unavailable"],
} as const;
type Codes = Record<keyof typeof HTTP_ERROR_CODES, readonly [string, ...string[]]>;
/** Every error code by status: the HTTP layer's and the domain's (ingest/src/errors.ts, mapped once in errors.ts). */
export const ERROR_CODES: Codes = Object.fromEntries(
  Object.entries(HTTP_ERROR_CODES).map(([status, codes]) => {
    const domain = Object.entries(DOMAIN_ERROR_STATUS).filter(([, s]) => s === Number(status)).map(([code]) => code);
    return [status, [...new Set([...codes, ...domain])]];
  }),
) as unknown as Codes;
export type ErrorStatus = keyof typeof ERROR_CODES;
const ALL_CODES = [...new Set(Object.values(ERROR_CODES).flat())] as [string, ...string[]];

/** The error body every route answers with (documented once in the spec). */
export const ErrorSchema = z
  .object({
    error: z.object({
      status: z.number().int(),
      code: z.enum(ALL_CODES).openapi({ description: "stable and machine-readable; the message is for people" }),
      message: z.string(),
      field: z.string().optional().openapi({ description: "the request field at fault, when there is one" }),
    }),
  })
  .openapi("Error", { description: "`{ error: { status, code, message, field? } }`, for every error of the API" });

/** Per status: the Error shape with `status` and `code` narrowed to what that status carries. */
const errorOf = (status: ErrorStatus) =>
  ErrorSchema.and(z.object({ error: z.object({ status: z.literal(status), code: z.enum(ERROR_CODES[status]) }) })).openapi(`Error${status}`);
const ERROR_SCHEMAS = Object.fromEntries(Object.keys(ERROR_CODES).map((s) => [s, errorOf(Number(s) as ErrorStatus)])) as Record<ErrorStatus, ReturnType<typeof errorOf>>;

const DEFAULT_TEXT: Record<ErrorStatus, string> = {
  400: "invalid input, naming the field",
  401: "no, unknown or revoked API key",
  403: "the key lacks the scope",
  404: "not found in this workspace",
  409: "conflict",
  413: "the body is too large",
  415: "unsupported content type",
  422: "the check failed",
  429: "rate limited: per key, per client address after failed authentications, or too many open streams (Retry-After)",
  500: "internal error",
  503: "the database (Retry-After) or ClickHouse is unavailable",
};

const ref = (name: string) => ({ $ref: `#/components/headers/${name}` });
/** Response headers (components, registered by `registerHeaders`). */
const HEADERS = {
  "X-Request-Id": { description: "the request's id (the caller's X-Request-Id when valid, else a UUID); in the logs too", schema: { type: "string" as const } },
  "X-RateLimit-Limit": { description: "requests a minute this API key allows", schema: { type: "integer" as const } },
  "X-RateLimit-Remaining": { description: "requests left in the current minute", schema: { type: "integer" as const } },
  "Retry-After": { description: "seconds to wait before retrying", schema: { type: "integer" as const } },
};
export function registerHeaders(api: OpenAPIHono) {
  for (const [name, header] of Object.entries(HEADERS)) api.openAPIRegistry.registerComponent("headers", name, header);
}

/** Headers of a response to an authenticated request (the rate-limit ones are set once the key is known). */
export const okHeaders = { "X-Request-Id": ref("X-Request-Id"), "X-RateLimit-Limit": ref("X-RateLimit-Limit"), "X-RateLimit-Remaining": ref("X-RateLimit-Remaining") };

/** A JSON success response. */
export const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, headers: okHeaders, content: { "application/json": { schema } } });

// 401 and 413 come before the key is known (no rate-limit headers); 429 and 503 say when to retry.
const headersOf = (s: ErrorStatus) =>
  s === 401 || s === 413 ? { "X-Request-Id": ref("X-Request-Id") } : s === 429 || s === 503 ? { ...okHeaders, "Retry-After": ref("Retry-After") } : okHeaders;

/**
 * Error responses of a route: `errorResponses(400, 401, 404)`, optionally with route-specific
 * descriptions last (`{ 404: "no such link in this workspace" }`). Every route also documents 500
 * and 503 (PostgreSQL unreachable: app.ts's gate and onError answer any /api route so).
 */
export function errorResponses(...args: (ErrorStatus | Partial<Record<ErrorStatus, string>>)[]) {
  const text = args.find((a): a is Partial<Record<ErrorStatus, string>> => typeof a === "object") ?? {};
  const statuses = new Set([...args.filter((a): a is ErrorStatus => typeof a === "number"), 500, 503] as ErrorStatus[]);
  return Object.fromEntries(
    [...statuses].map((s) => [
      s,
      {
        description: text[s] ?? DEFAULT_TEXT[s],
        headers: headersOf(s),
        content: { "application/json": { schema: ERROR_SCHEMAS[s] } },
      },
    ]),
  );
}

