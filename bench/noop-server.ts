/**
 * The HTTP ceiling for the beacon benchmark: Hono on @hono/node-server, like ingest, parsing
 * the same JSON body and answering 202, with no signature check, validation or database.
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";

const app = new Hono().post("/v1/clicks", async (c) => {
  const body = JSON.parse(await c.req.text()) as unknown;
  return c.json({ accepted: Array.isArray(body) ? body.length : 1, duplicates: 0 }, 202);
});
serve({ fetch: app.fetch, port: Number(process.env.PORT), hostname: "127.0.0.1" }, (info) => console.log(`noop listening on ${info.port}`));
