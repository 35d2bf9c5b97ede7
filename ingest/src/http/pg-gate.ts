import { sleep } from "../../../shared/sleep.ts";
import type { MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import type { Sql } from "../db/connect.ts";
import { errorBody } from "./errors.ts";

// PostgreSQL SQLSTATE classes that mean "the database is unavailable", not "your input is wrong",
// and the client's own network/connection error codes.
const PG_UNAVAILABLE = /^(08|53|57P)/;
const NET_UNAVAILABLE = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "CONNECT_TIMEOUT", "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "EPIPE"]);

/** True when an error says PostgreSQL cannot be reached (a 503), as opposed to a bad request or a bug. */
export const isUnavailable = (err: unknown): boolean => {
  const code = String((err as { code?: unknown } | null)?.code ?? "");
  return PG_UNAVAILABLE.test(code) || NET_UNAVAILABLE.has(code);
};

export interface PgGate {
  /** Answers 503 at once while PostgreSQL is known to be unreachable (no request waits on a connection). */
  middleware: MiddlewareHandler;
  /** Call with any error a request got from PostgreSQL; a connection-class error closes the gate. */
  failed: (err: unknown) => void;
  readonly down: boolean;
}

/**
 * Fast 503s during a PostgreSQL outage. Without it every request waits for a connection that
 * cannot be made (connect_timeout, then another attempt), so beacons and API calls hang for
 * seconds each while the edge's retries pile up behind them. After the first connection-class
 * error that a `SELECT 1` probe confirms, the gate closes: requests get `503 unavailable` with
 * Retry-After immediately, and a probe every `probeMs` (not the callers) finds out when
 * PostgreSQL is back.
 */
export function pgGate(sql: Sql, log: Logger, { probeMs = 500, probeTimeoutMs = 2_000 } = {}): PgGate {
  let down = false;
  let since = 0;
  let busy = false;

  /** One `SELECT 1`, bounded: "ok", "fail", or "ended" (sql.end() was called: the process is stopping). */
  async function probeOnce(): Promise<"ok" | "fail" | "ended"> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        sql`SELECT 1`,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("probe timeout")), probeTimeoutMs))),
      ]);
      return "ok";
    } catch (err) {
      return (err as { code?: string }).code === "CONNECTION_ENDED" ? "ended" : "fail";
    } finally {
      clearTimeout(timer);
    }
  }

  async function watch(err: unknown) {
    busy = true;
    try {
      // A network error code could also come from another client (a ClickHouse server, say):
      // PostgreSQL itself must fail a probe before the gate closes.
      if ((await probeOnce()) !== "fail") return;
      down = true;
      since = Date.now();
      log.warn({ code: (err as { code?: string }).code }, "database unreachable: answering 503 until a probe succeeds");
      for (;;) {
        await sleep(probeMs);
        const r = await probeOnce();
        if (r === "fail") continue;
        down = false;
        if (r === "ok") log.warn({ downMs: Date.now() - since }, "database reachable again");
        return;
      }
    } finally {
      busy = false;
    }
  }

  return {
    get down() {
      return down;
    },
    failed(err) {
      if (isUnavailable(err) && !busy) void watch(err);
    },
    middleware: async (c, next) => {
      if (!down) return next();
      c.header("Retry-After", "1");
      return c.json(errorBody(503, "unavailable", "the database is unavailable; retry"), 503);
    },
  };
}
