import { MAX_BATCH, MAX_BEACON_BYTES, type ClickEvent } from "../../shared/event.ts";
import { sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import { num, type Env } from "./env.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Statuses worth another try; any other 4xx means the beacon itself is wrong. */
const retryable = (status: number) => status >= 500 || status === 429 || status === 408;

/** Longest pause between two attempts, so all of them fit in waitUntil's ~30 s. */
const MAX_DELAY_MS = 8_000;

/**
 * Sends one signed beacon (a click, or a batch of them) to ingest. Runs inside
 * ctx.waitUntil, after the redirect went out; retries with exponential backoff and jitter,
 * re-signing each attempt so the signature stays inside ingest's window. Ingest ignores
 * click_ids it already has, so a retry after a lost answer is harmless.
 */
export async function sendBeacon(env: Env, events: ClickEvent | ClickEvent[]): Promise<boolean> {
  const body = JSON.stringify(events);
  // Over ingest's body limit: send it in halves (a click is far below the limit on its own).
  if (Array.isArray(events) && events.length > 1 && new TextEncoder().encode(body).length > MAX_BEACON_BYTES) return sendHalves(env, events);
  const attempts = Math.max(1, num(env.BEACON_ATTEMPTS, 5));
  const base = num(env.BEACON_BASE_DELAY_MS, 250);
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep(Math.min(MAX_DELAY_MS, base * 4 ** (i - 1)) * (0.5 + Math.random() / 2));
    try {
      const res = await fetch(`${env.INGEST_URL}/v1/clicks`, {
        method: "POST",
        headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(env.EDGE_SECRET, body) },
        body,
        signal: AbortSignal.timeout(5000),
      });
      if (res.ok) return true;
      if (!retryable(res.status)) {
        // One bad click must not take the others of its batch with it: split until it is alone.
        if (Array.isArray(events) && events.length > 1) return sendHalves(env, events);
        console.error(`beacon refused: ${res.status} ${await res.text()}`);
        return false;
      }
    } catch {
      // network error or timeout: retry
    }
  }
  const n = Array.isArray(events) ? events.length : 1;
  console.error(`beacon with ${n} click(s) undelivered after ${attempts} attempts`);
  return false;
}

async function sendHalves(env: Env, events: ClickEvent[]): Promise<boolean> {
  const mid = Math.ceil(events.length / 2);
  const [a, b] = await Promise.all([sendBeacon(env, events.slice(0, mid)), sendBeacon(env, events.slice(mid))]);
  return a && b;
}

/** Clicks of this isolate waiting for the next beacon (plain data, shared by its requests). */
const queued: ClickEvent[] = [];

/**
 * Queues a click for this isolate's next beacon and returns the delivery work to hand to
 * ctx.waitUntil. Clicks that arrive within BEACON_BATCH_MS of each other share one beacon (up
 * to BEACON_BATCH_MAX), so a busy edge sends a few requests a second instead of one per
 * redirect; a lone click waits only that window. With BEACON_BATCH_MS=0 every click is its
 * own beacon.
 *
 * Each request sends from its own context and never waits on another request's promise
 * (workerd cancels continuations across request contexts): after the window, whichever
 * request wakes first takes everything queued and sends it; the others find the queue empty.
 */
export async function queueClick(env: Env, event: ClickEvent): Promise<boolean> {
  const windowMs = num(env.BEACON_BATCH_MS, 20);
  if (windowMs <= 0) return sendBeacon(env, event);
  const max = Math.min(MAX_BATCH, Math.max(1, num(env.BEACON_BATCH_MAX, 100)));
  queued.push(event);
  if (queued.length < max) await sleep(windowMs);
  const batch = queued.splice(0, max);
  return batch.length ? sendBeacon(env, batch) : true;
}
