import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AuthVars } from "./auth.ts";
import { ApiError } from "./errors.ts";

/** The error body every route answers with (documented once in the spec). */
export const ErrorSchema = z
  .object({
    error: z.object({
      status: z.number().int(),
      code: z.string(),
      message: z.string(),
      field: z.string().optional(),
    }),
  })
  .openapi("Error");

export const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, { description: "error", content: { "application/json": { schema: ErrorSchema } } }]));

/**
 * An OpenAPI router whose request validation failures become our JSON errors (400, naming
 * the field) instead of the library's default body.
 */
export function apiRouter() {
  return new OpenAPIHono<{ Variables: AuthVars }>({
    defaultHook: (result) => {
      if (result.success) return;
      const issue = result.error.issues[0]!;
      const field = issue.path.map(String).join(".");
      throw new ApiError(400, "invalid_body", field ? `${field}: ${issue.message}` : issue.message, field || undefined);
    },
  });
}
