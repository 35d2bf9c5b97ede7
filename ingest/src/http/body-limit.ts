import { createMiddleware } from "hono/factory";
import { bodyLimit } from "hono/body-limit";
import { ApiError } from "./errors.ts";

const MiB = 1024 * 1024;
/**
 * Largest request body under /api: 1 MiB (a link with every field at its maximum fits), except
 * POST /api/links/bulk (10 MiB: up to 1,000 links) and POST /api/links/import (the 5 MiB its
 * route also checks). A declared Content-Length over the limit is refused before any byte is
 * read; a chunked body as soon as it passes the limit.
 */
export const API_BODY_LIMITS: Record<string, number> = { "/api/links/bulk": 10 * MiB, "/api/links/import": 5 * MiB };
const DEFAULT_LIMIT = MiB;

const limitOf = (maxSize: number) =>
  bodyLimit({
    maxSize,
    onError: () => {
      throw new ApiError(413, "too_large", `the request body is over ${maxSize / MiB} MiB`);
    },
  });

export function apiBodyLimit() {
  const byPath = new Map(Object.entries(API_BODY_LIMITS).map(([path, n]) => [path, limitOf(n)]));
  const fallback = limitOf(DEFAULT_LIMIT);
  return createMiddleware(async (c, next) => (byPath.get(c.req.path) ?? fallback)(c, next));
}
