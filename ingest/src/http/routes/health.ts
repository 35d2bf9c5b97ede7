import { Hono } from "hono";
import type { Readiness } from "../../db/readiness.ts";
import { errorBody } from "../errors.ts";
import type { PgGate } from "../pg-gate.ts";

/**
 * Orchestrator probes (outside /api: not in the OpenAPI spec). GET /livez: the process serves
 * (restart it if not). GET /readyz: it can do its work (PostgreSQL reachable, migrations
 * applied); 503 takes it out of the load balancer until it is.
 */
export function healthRoutes(ready: () => Promise<Readiness>, gate: PgGate) {
  return new Hono()
    .get("/livez", (c) => c.json({ ok: true }))
    .get("/readyz", async (c) => {
      // While the gate knows PostgreSQL is down, answer at once (its own probe finds out when it is back).
      const r: Readiness = gate.down ? { ready: false, code: "unavailable", message: "the database is unavailable" } : await ready();
      if (r.ready) return c.json({ ok: true, migration: r.migration });
      if (r.error) gate.failed(r.error);
      c.header("Retry-After", "5");
      return c.json(errorBody(503, r.code, r.message), 503);
    });
}
