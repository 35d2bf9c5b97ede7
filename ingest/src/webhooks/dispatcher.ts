import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Logger } from "pino";
import type { TransactionSql } from "postgres";
import { sleep } from "../../../shared/sleep.ts";
import type { Sql } from "../db/connect.ts";
import { checkUrl, isPrivateHost } from "../links/url-safety.ts";
import type { Metrics } from "../metrics.ts";
import { signHeaders } from "./signing.ts";

export interface DispatcherOptions {
  sql: Sql;
  log: Logger;
  metrics: Metrics;
  allowPrivate: boolean;
  /** Messages sent at once by this process. */
  concurrency: number;
  timeoutMs: number;
  /** Retry schedule: base·2^(attempt−1), capped, with jitter (half to all of it); after maxAttempts, dead-lettered. */
  retryBaseMs: number;
  retryMaxMs: number;
  maxAttempts: number;
  pollMs: number;
  retentionDays: number;
}

interface Claimed {
  id: string;
  endpoint_id: string;
  /** The endpoint's failed rounds when this message was claimed (0: healthy). */
  endpoint_failures: number;
  webhook_id: string;
  body: string;
  attempts: number;
  url: string;
  secret: string;
  previous_secret: string | null;
}

/**
 * Leases up to `limit` due messages of enabled endpoints that are not backing off, oldest
 * first: each ready endpoint's oldest due messages (its `(endpoint_id, next_attempt_at)` index),
 * then the oldest of those, so a claim reads about `limit` rows per endpoint. Joined to the
 * endpoints and sorted as a whole, it read every due message (20,008 rows to claim 8 of 20,000).
 */
export const claimDeliveries = (sql: Sql | TransactionSql, leaseS: number, limit: number) =>
  sql<Claimed[]>`
    UPDATE webhook_deliveries d SET claimed_until = now() + make_interval(secs => ${leaseS}), attempts = d.attempts + 1, last_attempt_at = now()
    FROM webhook_endpoints e
    WHERE e.id = d.endpoint_id AND d.id = ANY(ARRAY(
      SELECT x.id FROM webhook_endpoints y CROSS JOIN LATERAL (
        SELECT x.id, x.next_attempt_at FROM webhook_deliveries x
        WHERE x.endpoint_id = y.id AND x.status = 'pending' AND x.next_attempt_at <= now() AND x.claimed_until < now()
        ORDER BY x.next_attempt_at LIMIT ${limit} FOR UPDATE SKIP LOCKED) x
      WHERE y.enabled AND y.retry_at <= now()
      ORDER BY x.next_attempt_at LIMIT ${limit}))
    RETURNING d.id, d.endpoint_id, e.failures AS endpoint_failures, d.webhook_id, d.payload::text AS body, d.attempts, e.url, e.secret,
      CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END AS previous_secret`;


/**
 * Whether a failed attempt says the endpoint is down (no answer, a timeout, 5xx, 429, an unsafe
 * address) rather than that this one message was refused (any other 4xx).
 */
export const endpointDown = (status: number | null) => status === null || status >= 500 || status === 408 || status === 429;

/** Delay before attempt `attempt + 1`, after `attempt` failed ones (ms). */
export function retryDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random()): number {
  const full = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(full / 2 + (full / 2) * random);
}

const MAINTENANCE_MS = 5_000;
const PRUNE_MS = 60 * 60 * 1000;

/**
 * The webhook sender, in the `webhooks` pipeline role (any number of processes: every claim is
 * a lease taken with FOR UPDATE SKIP LOCKED, so a message is never sent by two at once, and a
 * crashed sender's messages are taken over when the lease runs out). The messages are written
 * elsewhere: link events with the link's change (events.ts enqueueLinkEvent), click batches by
 * the forwarder with the outbox delete (events.ts tapClicks). Due messages are POSTed, signed
 * (Standard Webhooks); a 2xx delivers; anything else (status, timeout, refused connection,
 * unsafe address) schedules a retry with backoff, and after maxAttempts the message is
 * dead-lettered (status failed) until a replay. A failure that says the endpoint is down
 * (endpointDown) also holds every message of the endpoint until its retry_at, backing off per
 * failed round with the same schedule: an outage costs one round of attempts per step of the
 * schedule, not one per message (at click load, thousands of doomed requests and row updates a
 * second otherwise), and the first delivery after it releases the held messages at once instead
 * of each waiting out its own backoff.
 * At-least-once: a crash between the receiver's 2xx and the status update sends it again, with
 * the same webhook-id.
 */
export function createDispatcher(o: DispatcherOptions) {
  const leaseS = Math.ceil(o.timeoutMs / 1000) + 30;

  /** Destination safety again at send time: the name may now resolve into private space. */
  async function unsafe(url: string): Promise<string | null> {
    const r = checkUrl(url, { allowPrivate: o.allowPrivate });
    if (!r.ok) return r.reason;
    if (o.allowPrivate) return null;
    const host = r.host.replace(/^\[|\]$/g, "");
    if (isIP(host)) return null;
    const addrs = await lookup(host, { all: true });
    const bad = addrs.find((a) => isPrivateHost(a.family === 6 ? `[${a.address}]` : a.address));
    return bad ? `${r.host} resolves into private or local address space (${bad.address})` : null;
  }

  async function send(m: Claimed): Promise<void> {
    let status: number | null = null;
    let error: string | null = null;
    try {
      const problem = await unsafe(m.url);
      if (problem) throw new Error(problem);
      const res = await fetch(m.url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "linkflow-webhooks/1", ...signHeaders(m.secret, m.webhook_id, m.body, new Date(), m.previous_secret) },
        body: m.body,
        redirect: "manual",
        signal: AbortSignal.timeout(o.timeoutMs),
      });
      status = res.status;
      await res.body?.cancel().catch(() => {});
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (err) {
      error = String((err as Error)?.cause ?? err).slice(0, 500);
    }
    if (!error) {
      await o.sql`UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now(), last_status_code = ${status}, last_error = NULL
                  WHERE id = ${m.id}`;
      o.metrics.webhookDeliveries.inc({ outcome: "delivered" });
      if (m.endpoint_failures > 0) {
        // Back up: the messages held through the outage are due now.
        const [back] = await o.sql<{ n: number; down_s: number | null }[]>`
          WITH e AS (UPDATE webhook_endpoints w SET failures = 0, failing_since = NULL, retry_at = '-infinity'
                     FROM (SELECT failing_since FROM webhook_endpoints WHERE id = ${m.endpoint_id}) was
                     WHERE w.id = ${m.endpoint_id} AND w.failures > 0 RETURNING w.id, was.failing_since),
          due AS (UPDATE webhook_deliveries SET next_attempt_at = now()
                  WHERE endpoint_id IN (SELECT id FROM e) AND status = 'pending' AND next_attempt_at > now() RETURNING 1)
          SELECT (SELECT count(*) FROM due)::int AS n, (SELECT extract(epoch FROM now() - failing_since) FROM e) AS down_s`;
        if (back?.down_s != null)
          o.log.info({ endpoint: m.endpoint_id, down_s: Math.round(back.down_s), released: back.n }, "webhook endpoint back up; its held messages are due");
      }
      return;
    }
    if (endpointDown(status)) {
      // One failed round moves the endpoint's retry_at once (the other sends of the round find it moved).
      await o.sql`UPDATE webhook_endpoints SET failures = failures + 1, failing_since = coalesce(failing_since, now()),
                    retry_at = now() + make_interval(secs => least(${o.retryMaxMs}::float8, ${o.retryBaseMs}::float8 * power(2, least(failures, 40))) * (0.5 + random() / 2) / 1000)
                  WHERE id = ${m.endpoint_id} AND retry_at <= now()`;
    }
    if (m.attempts >= o.maxAttempts) {
      await o.sql`UPDATE webhook_deliveries SET status = 'failed', last_status_code = ${status}, last_error = ${error}
                  WHERE id = ${m.id}`;
      o.metrics.webhookDeliveries.inc({ outcome: "failed" });
      o.log.warn({ delivery: m.id, error }, "webhook message dead-lettered after its last attempt");
    } else {
      const delay = retryDelay(m.attempts, o.retryBaseMs, o.retryMaxMs);
      await o.sql`UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => ${delay / 1000}),
                    claimed_until = '-infinity', last_status_code = ${status}, last_error = ${error}
                  WHERE id = ${m.id}`;
      o.metrics.webhookDeliveries.inc({ outcome: "retry" });
    }
  }

  /** Sends in flight: up to `concurrency`, each released as it ends (a slow receiver holds one slot, not a round). */
  const inFlight = new Set<Promise<void>>();

  /**
   * Claims due messages for the free slots and starts sending them; returns how many it claimed
   * (with every slot busy, it first waits for one to free up).
   */
  async function sendOnce(): Promise<number> {
    if (inFlight.size >= o.concurrency) {
      await Promise.race(inFlight);
      return 1;
    }
    const claimed = await claimDeliveries(o.sql, leaseS, o.concurrency - inFlight.size);
    for (const m of claimed) {
      const p: Promise<void> = send(m)
        .catch((err) => o.log.warn({ err: String(err), delivery: m.id }, "webhook status update failed; the lease will expire"))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    return claimed.length;
  }

  /** Waits for the sends in flight (tests; stop). */
  async function settle() {
    while (inFlight.size) await Promise.all([...inFlight]);
  }

  /** The backlog gauges, and once an hour the log's retention. */
  let lastPrune = 0;
  async function maintain() {
    const [c] = await o.sql<{ pending: number; failed: number; down: number }[]>`
      SELECT (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')::int AS pending,
             (SELECT count(*) FROM webhook_deliveries WHERE status = 'failed')::int AS failed,
             (SELECT count(*) FROM webhook_endpoints WHERE enabled AND failures > 0)::int AS down`;
    o.metrics.webhookBacklog.set(c!.pending);
    o.metrics.webhookDeadLettered.set(c!.failed);
    o.metrics.webhookEndpointsDown.set(c!.down);
    if (Date.now() - lastPrune >= PRUNE_MS) {
      lastPrune = Date.now();
      await o.sql`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < now() - make_interval(days => ${o.retentionDays})`;
    }
  }

  let running = false;
  let loops: Promise<void>[] = [];
  /** A sleep that ends early when the dispatcher stops. */
  const nap = async (ms: number) => {
    for (const end = Date.now() + ms; running && Date.now() < end; ) await sleep(Math.min(100, end - Date.now()));
  };
  async function run(step: () => Promise<number>, idleMs: number, what: string) {
    let failures = 0;
    while (running) {
      try {
        const n = await step();
        failures = 0;
        if (n === 0) await nap(idleMs);
      } catch (err) {
        failures++;
        o.log.warn({ err: String(err) }, `webhook ${what} failed; will retry`);
        await nap(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  return {
    sendOnce,
    settle,
    start() {
      running = true;
      loops = [
        run(sendOnce, o.pollMs, "sender"),
        run(async () => (await maintain(), 0), MAINTENANCE_MS, "maintenance"),
      ];
    },
    async stop() {
      running = false;
      await Promise.all(loops);
      await settle();
    },
  };
}
export type Dispatcher = ReturnType<typeof createDispatcher>;
