import type { ClickEvent } from "../../shared/event.ts";
import { sendBeacon } from "./beacon.ts";
import { num, type Env } from "./env.ts";

/** Longest redelivery delay: with max_retries = 100 the queue keeps trying for ~8 hours. */
const MAX_RETRY_DELAY_S = 300;

/** Seconds before a message's next delivery: `base` doubled per failed attempt, capped. */
export const retryDelay = (base: number, attempts: number) =>
  Math.max(0, Math.round(Math.min(MAX_RETRY_DELAY_S, base * 2 ** Math.max(0, attempts - 1))));

/**
 * The CLICKS_QUEUE consumer: posts a delivered batch as one signed beacon (split only where
 * ingest's size limit or a bad click requires), with ONE attempt: the queue does the retrying,
 * with backoff, and ends in the dead-letter queue `linkflow-clicks-dlq` after max_retries.
 * Ingest is idempotent on click_id, so a redelivery of a click it already has is harmless.
 *
 * Per message: stored → ack; not taken (ingest unreachable, 5xx, 429, signature refused) →
 * retry after retryDelay; refused as invalid (400/413/415…) → ack and count it in the log.
 * Such a click would be refused on every one of the 100 redeliveries too, costing ingest a
 * request each time for ~8 hours only to reach the dead-letter queue, where no one could do
 * more with it than read ingest's reason, which the log already has. The dead-letter queue is
 * kept for what it is good for: clicks that were fine but could not be delivered in time.
 */
export async function consumeClicks(batch: MessageBatch<ClickEvent>, env: Env): Promise<void> {
  const { undelivered, refused } = await sendBeacon(
    env,
    batch.messages.map((m) => m.body),
    1,
  );
  const retry = new Set(undelivered.map((e) => e.click_id));
  const base = num(env.BEACON_QUEUE_RETRY_S, 5);
  for (const m of batch.messages) {
    if (retry.has(m.body?.click_id)) m.retry({ delaySeconds: retryDelay(base, m.attempts) });
    else m.ack();
  }
  if (retry.size) console.warn(`CLICKS_QUEUE: ${retry.size} click(s) not taken by ingest, retried later`);
  if (refused) console.error(`CLICKS_QUEUE: ${refused} click(s) refused by ingest as invalid, dropped`);
}
