import { MAX_BATCH, MAX_BEACON_BYTES, QUEUE_MAX_RETRIES, QUEUE_MAX_RETRY_DELAY_S } from "../../shared/constants.ts";
import type { ClickEvent } from "../../shared/event.ts";
import { enqueue, parcelClicks, parcelTries, sendBeacon, type Delivery, type QueuedBody } from "./beacon.ts";
import { recordDeadClicks } from "./dead-letters.ts";
import { num, type Env } from "./env.ts";

/**
 * Seconds before a message's next delivery: `base` doubled per failed attempt, capped at
 * QUEUE_MAX_RETRY_DELAY_S (with max_retries = 100 the queue keeps trying for ~8 hours).
 */
export const retryDelay = (base: number, attempts: number) =>
  Math.max(0, Math.round(Math.min(QUEUE_MAX_RETRY_DELAY_S, base * 2 ** Math.max(0, attempts - 1))));

const utf8 = new TextEncoder();
/** Beacons per consumer delivery sent at once (a parcel batch can hold tens of thousands of clicks). */
const CONCURRENCY = 4;
/** Room under ingest's body limit for the array's brackets and commas. */
const BEACON_BYTES = MAX_BEACON_BYTES - 1_024;

/** Splits clicks into beacons within ingest's limits (≤ MAX_BATCH clicks, ≤ MAX_BEACON_BYTES). */
export function beaconChunks(events: ClickEvent[]): ClickEvent[][] {
  const out: ClickEvent[][] = [];
  let chunk: ClickEvent[] = [];
  let size = 0;
  for (const e of events) {
    const n = utf8.encode(JSON.stringify(e)).length + 1;
    if (chunk.length && (chunk.length >= MAX_BATCH || size + n > BEACON_BYTES)) {
      out.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(e);
    size += n;
  }
  if (chunk.length) out.push(chunk);
  return out;
}

/**
 * Posts clicks to ingest as signed beacons, one attempt each (the queue does the retrying), a
 * few at a time. Once one beacon is not taken (ingest down or overloaded) the rest are not
 * tried: they count as undelivered, so an outage costs ingest one request per delivery, not
 * one per beacon.
 */
export async function postClicks(env: Env, events: ClickEvent[]): Promise<Delivery> {
  const chunks = beaconChunks(events);
  const out: Delivery = { undelivered: [], refused: [] };
  let next = 0;
  let failing = false;
  const worker = async () => {
    while (next < chunks.length) {
      const chunk = chunks[next++]!;
      if (failing) {
        out.undelivered.push(...chunk);
        continue;
      }
      const r = await sendBeacon(env, chunk, 1);
      if (r.undelivered.length) failing = true;
      out.undelivered.push(...r.undelivered);
      out.refused.push(...r.refused);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, chunks.length) }, worker));
  return out;
}

interface Parcel {
  clicks: ClickEvent[];
  /** This delivery's number for these clicks: the parcel's earlier tries plus the platform's attempts. */
  attempt: number;
}

const parcelsOf = (batch: MessageBatch<QueuedBody>): Parcel[] =>
  batch.messages.map((m) => ({ clicks: parcelClicks(m.body), attempt: parcelTries(m.body) + m.attempts }));

/**
 * The CLICKS_QUEUE consumer: posts a delivered batch's clicks as signed beacons (one attempt:
 * the queue does the retrying, with backoff). Ingest is idempotent on click_id, so a
 * redelivery of a click it already has is harmless.
 *
 * What ingest did not take (unreachable, 5xx, 429, signature refused) is not retried message
 * by message: it is re-packed into as few messages as fit (one per attempt number, ≤ 96 KB
 * each) and sent back to CLICKS_QUEUE with the next delay, and the batch is acked. So the
 * messages waiting for a retry stay few however many clicks an outage queues: Miniflare's
 * broker keeps a timer per waiting message and workerd stops at 10,000 (docs/PIPELINE.md,
 * "Miniflare's queue and Cloudflare's"). The attempt count travels in the message (`tries`).
 * After QUEUE_MAX_RETRIES attempts the clicks go to the dead-letter queue, whose consumer
 * replays them (consumeDeadLetters). If a send fails, the batch is retried whole instead
 * (`retryAll`, one delay), which loses nothing either.
 *
 * Clicks refused as invalid (400/413/415…: a link mismatch, a timestamp out of range) go to
 * CLICKS_DLQ at once: retrying them would fail on every redelivery. Without that binding they
 * are dropped, and counted in the log.
 */
export async function consumeClicks(batch: MessageBatch<QueuedBody>, env: Env): Promise<void> {
  const parcels = parcelsOf(batch);
  const attemptOf = new Map<string, number>();
  for (const p of parcels) for (const c of p.clicks) attemptOf.set(c.click_id, Math.max(attemptOf.get(c.click_id) ?? 0, p.attempt));
  const { undelivered, refused } = await postClicks(env, parcels.flatMap((p) => p.clicks));
  const base = num(env.BEACON_QUEUE_RETRY_S, 5);
  const maxAttempt = Math.max(1, ...parcels.map((p) => p.attempt));
  const retryWhole = () => batch.retryAll({ delaySeconds: retryDelay(base, maxAttempt) });

  const dead: ClickEvent[] = [...refused];
  const byAttempt = new Map<number, ClickEvent[]>();
  for (const e of undelivered) {
    const a = attemptOf.get(e.click_id) ?? maxAttempt;
    if (a > QUEUE_MAX_RETRIES) dead.push(e);
    else byAttempt.set(a, [...(byAttempt.get(a) ?? []), e]);
  }
  if (dead.length) {
    const exhausted = dead.length - refused.length;
    const what = [refused.length && `${refused.length} click(s) refused by ingest as invalid`, exhausted && `${exhausted} click(s) not taken in ${QUEUE_MAX_RETRIES} attempts`].filter(Boolean).join(", ");
    if (!env.CLICKS_DLQ) console.error(`CLICKS_QUEUE: ${what}, dropped (no CLICKS_DLQ binding)`);
    else if ((await enqueue(env.CLICKS_DLQ, dead)).length) return retryWhole();
    else console.error(`CLICKS_QUEUE: ${what}, moved to the dead-letter queue`);
  }
  if (byAttempt.size) {
    if (!env.CLICKS_QUEUE) return retryWhole();
    for (const [attempt, clicks] of byAttempt) {
      if ((await enqueue(env.CLICKS_QUEUE, clicks, { delaySeconds: retryDelay(base, attempt), tries: attempt })).length) return retryWhole();
    }
    console.warn(`CLICKS_QUEUE: ${undelivered.length} click(s) not taken by ingest, queued again (${byAttempt.size} attempt group(s))`);
  }
  batch.ackAll();
}

/**
 * The dead-letter queue's consumer (`linkflow-clicks-dlq`): replays its clicks to ingest through
 * the same signed, idempotent beacon path (a click ingest already has is not stored twice).
 * - taken → acked;
 * - not taken (ingest still down) → the whole batch retried (doubling from 60 s, ≤ 300 s); this
 *   queue's own max_retries then ends with the platform dropping it, logged by Cloudflare;
 * - refused as invalid → recorded in ingest's dead letters (POST /v1/clicks/dead-letters,
 *   signed; PostgreSQL `dead_letters`, source `edge_queue`), where `GET /api/pipeline` counts
 *   them (`edge_dead_letters`) and `GET /api/pipeline/dlq` lists them with ingest's reason;
 *   then acked. Nothing refused waits in the queue itself, so what ingest shows is what waits.
 */
export async function consumeDeadLetters(batch: MessageBatch<QueuedBody>, env: Env): Promise<void> {
  const parcels = parcelsOf(batch);
  const { undelivered, refused } = await postClicks(env, parcels.flatMap((p) => p.clicks));
  const maxAttempt = Math.max(1, ...parcels.map((p) => p.attempt));
  const retryWhole = () => batch.retryAll({ delaySeconds: retryDelay(Math.max(60, num(env.BEACON_QUEUE_RETRY_S, 5)), maxAttempt) });
  if (undelivered.length) {
    console.warn(`CLICKS_DLQ: ${undelivered.length} click(s) not taken by ingest, replayed later`);
    return retryWhole();
  }
  // Within ingest's body limit, as beacons are (a refused batch can be large).
  for (const chunk of beaconChunks(refused)) if (!(await recordDeadClicks(env, chunk))) return retryWhole();
  const n = parcels.reduce((s, p) => s + p.clicks.length, 0);
  console.warn(`CLICKS_DLQ: ${n - refused.length} click(s) replayed to ingest, ${refused.length} refused as invalid recorded as dead letters`);
  batch.ackAll();
}

/** The worker's queue handler: the dead-letter queue (its name has "-dlq") or CLICKS_QUEUE. */
export const consumeQueue = (batch: MessageBatch<QueuedBody>, env: Env) =>
  batch.queue.includes("-dlq") ? consumeDeadLetters(batch, env) : consumeClicks(batch, env);
