import { z } from "@hono/zod-openapi";

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

/** Routers are made by openapi.ts's createRouter (one validation hook for all). */
export { createRouter as apiRouter } from "./openapi.ts";
