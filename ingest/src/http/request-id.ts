import { randomUUID } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { nodeOf } from "./node-env.ts";

const HEADER = "X-Request-Id";
const VALID = /^[\w\-=]{1,255}$/;

/**
 * hono/request-id's rules (the caller's X-Request-Id if it is 1–255 of [A-Za-z0-9_-=], else a
 * UUID; in `c.get("requestId")` and on the response), without its two undici Headers per
 * request under @hono/node-server: reading a request header through c.req builds a WHATWG
 * Headers of every header, and c.header() makes the response carry a Headers that the server
 * then converts back. Under Node the id is read from, and set on, Node's own objects (a
 * header set on the ServerResponse is merged by writeHead). Those two were ~5 % of ingest's
 * CPU under single-click beacon load (`node --cpu-prof`).
 */
export const requestId = (): MiddlewareHandler =>
  async function requestId(c, next) {
    const node = nodeOf(c);
    const sent = node ? node.incoming.headers["x-request-id"] : c.req.header(HEADER);
    const id = typeof sent === "string" && VALID.test(sent) ? sent : randomUUID();
    c.set("requestId", id);
    if (node) node.outgoing.setHeader(HEADER, id);
    else c.header(HEADER, id);
    await next();
  };

declare module "hono" {
  interface ContextVariableMap {
    requestId: string;
  }
}
