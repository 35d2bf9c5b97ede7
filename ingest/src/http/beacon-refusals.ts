import type { MiddlewareHandler } from "hono";
import type { Metrics } from "../metrics.ts";

/** Error codes are short snake_case words; anything else is not a label value (bounded cardinality). */
const CODE = /^[a-z_]{1,40}$/;

/**
 * Counts refused beacons (`linkflow_beacons_refused_total{reason}`), whatever refused them (the
 * route, the body limit, the PostgreSQL gate): the reason is the JSON error's code. The edge
 * retries 503s and queues or drops the rest, so this is ingest's view of beacons failing at the
 * edge (ops/prometheus/alerts.yml).
 */
export function countRefusedBeacons(metrics: Metrics): MiddlewareHandler {
  return async (c, next) => {
    await next();
    if (c.res.status < 400) return;
    const body = (await c.res.clone().json().catch(() => null)) as { error?: { code?: unknown } } | null;
    const code = body?.error?.code;
    metrics.beaconsRefused.inc({ reason: typeof code === "string" && CODE.test(code) ? code : `http_${c.res.status}` });
  };
}
