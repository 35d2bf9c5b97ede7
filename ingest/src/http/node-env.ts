import { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "hono";

/** @hono/node-server's request and response, when the app runs under it (not under app.request() in a test). */
export function nodeOf(c: Context): { incoming: IncomingMessage; outgoing: ServerResponse } | undefined {
  const env = c.env as { incoming?: unknown; outgoing?: unknown } | undefined;
  return env?.incoming instanceof IncomingMessage && env.outgoing instanceof ServerResponse
    ? { incoming: env.incoming, outgoing: env.outgoing }
    : undefined;
}
