import { QUEUE_MAX_RETRY_DELAY_S } from "../../shared/constants.ts";
import type { ClickEvent } from "../../shared/event.ts";
import { enqueue, sendBeacon } from "./beacon.ts";
import { num, type Env } from "./env.ts";

/**
 * Seconds before a message's next delivery: `base` doubled per failed attempt, capped at
 * QUEUE_MAX_RETRY_DELAY_S (with max_retries = 100 the queue keeps trying for ~8 hours).
 */
export const retryDelay = (base: number, attempts: number) =>
  Math.max(0, Math.round(Math.min(QUEUE_MAX_RETRY_DELAY_S, base * 2 ** Math.max(0, attempts - 1))));

/**
 * The CLICKS_QUEUE consumer: posts a delivered batch as one signed beacon (split only where
 * ingest's size limit or a bad click requires), with ONE attempt: the queue does the retrying,
 * with backoff, and ends in the dead-letter queue `linkflow-clicks-dlq` after max_retries.
 * Ingest is idempotent on click_id, so a redelivery of a click it already has is harmless.
 *
 * Per message: stored → ack; not taken (ingest unreachable, 5xx, 429, signature refused) →
 * retry after retryDelay; refused as invalid (400/413/415…: a link mismatch, a timestamp out
 * of range) → put on the dead-letter queue at once through CLICKS_DLQ (with no such binding:
 * dropped, and counted in the log), then acked. Retrying it would fail on every one of the
 * 100 redeliveries too, costing ingest a request each time for ~8 hours; in the dead-letter
 * queue an operator can see it now. If that send fails the message is retried instead.
 */
export async function consumeClicks(batch: MessageBatch<ClickEvent>, env: Env): Promise<void> {
  const { undelivered, refused } = await sendBeacon(
    env,
    batch.messages.map((m) => m.body),
    1,
  );
  const retry = new Set(undelivered.map((e) => e.click_id));
  if (refused.length) {
    if (!env.CLICKS_DLQ) console.error(`CLICKS_QUEUE: ${refused.length} click(s) refused by ingest as invalid, dropped (no CLICKS_DLQ binding)`);
    else if (await enqueue(env.CLICKS_DLQ, refused).then((left) => left.length === 0)) console.error(`CLICKS_QUEUE: ${refused.length} click(s) refused by ingest as invalid, moved to the dead-letter queue`);
    else for (const e of refused) retry.add(e.click_id);
  }
  const base = num(env.BEACON_QUEUE_RETRY_S, 5);
  for (const m of batch.messages) {
    if (retry.has(m.body?.click_id)) m.retry({ delaySeconds: retryDelay(base, m.attempts) });
    else m.ack();
  }
  if (undelivered.length) console.warn(`CLICKS_QUEUE: ${undelivered.length} click(s) not taken by ingest, retried later`);
}
