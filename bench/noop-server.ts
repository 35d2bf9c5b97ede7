/**
 * The HTTP ceilings for the beacon benchmark: Hono on @hono/node-server, like ingest, parsing
 * the same JSON and answering 202, with no signature check, validation or database. Two ways
 * of reading the body (NOOP_BODY):
 * - "request" (default): `c.req.text()`, the idiomatic Hono endpoint the ceiling
 *   describes (~7k req/s a process here); @hono/node-server builds a WHATWG Request for it;
 * - "raw": ingest's own readBody (ingest/src/http/routes/beacons.ts), straight from Node's request. Ingest
 *   itself is faster than the "request" endpoint, so only this one is a ceiling for it.
 */
import { serve, type HttpBindings } from "@hono/node-server";
import { Hono } from "hono";
import { readBody } from "../ingest/src/http/read-body.ts";

const raw = process.env.NOOP_BODY === "raw";
const app = new Hono<{ Bindings: HttpBindings }>().post("/v1/clicks", async (c) => {
  const body = JSON.parse(raw ? await readBody(c.env.incoming) : await c.req.text()) as unknown;
  return c.json({ accepted: Array.isArray(body) ? body.length : 1, duplicates: 0 }, 202);
});
serve({ fetch: app.fetch, port: Number(process.env.PORT), hostname: "127.0.0.1" }, (info) => console.log(`noop listening on ${info.port}`));
