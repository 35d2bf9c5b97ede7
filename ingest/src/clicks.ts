import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { clickEventSchema, MAX_BATCH, MAX_BEACON_BYTES, type ClickEvent } from "../../shared/event.ts";
import { SIGNATURE_HEADER, verify } from "../../shared/signing.ts";
import type { Sql } from "./db.ts";
import { ApiError } from "./errors.ts";
import { parseJson } from "./validate.ts";

const batchSchema = z.array(clickEventSchema).min(1).max(MAX_BATCH);

/** Beacon events as clicks rows (column names match the table). */
const toRow = (e: ClickEvent) => ({
  click_id: e.click_id,
  link_id: e.link_id,
  domain: e.domain,
  code: e.code,
  short_url: e.short_url,
  original_url: e.original_url,
  ts: e.timestamp,
  user_agent: e.user_agent,
  ip_address: e.ip_address,
  referer: e.referer,
  geo_location: e.geo_location,
  redirect_status: e.redirect_status,
  cache_tier: e.cache_tier,
});

/**
 * POST /v1/clicks: signed beacons from the edge. The insert is one statement (so one
 * transaction); 202 is sent only after it committed. ON CONFLICT makes retries no-ops.
 */
export function clickRoutes(sql: Sql, secret: string) {
  return new Hono().post(
    "/",
    bodyLimit({
      maxSize: MAX_BEACON_BYTES,
      onError: () => {
        throw new ApiError(413, "body_too_large", `beacon bodies are limited to ${MAX_BEACON_BYTES} bytes`);
      },
    }),
    async (c) => {
      if (!/^application\/json\b/i.test(c.req.header("content-type") ?? ""))
        throw new ApiError(415, "unsupported_media_type", "beacons must be sent as application/json");
      const raw = await c.req.text();
      const check = await verify(secret, c.req.header(SIGNATURE_HEADER), raw);
      if (!check.ok) throw new ApiError(401, "bad_signature", `beacon signature ${check.reason}`);
      const events = raw.trimStart().startsWith("[") ? parseJson(batchSchema, raw) : [parseJson(clickEventSchema, raw)];
      const rows = events.map(toRow);
      const inserted = await sql`
        INSERT INTO clicks ${sql(rows)} ON CONFLICT (click_id) DO NOTHING RETURNING 1`;
      return c.json({ accepted: events.length, duplicates: events.length - inserted.count }, 202);
    },
  );
}
