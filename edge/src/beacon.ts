import { MAX_BATCH, MAX_BEACON_BYTES } from "../../shared/constants.ts";
import type { ClickEvent } from "../../shared/event.ts";
import { sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import { sleep } from "../../shared/sleep.ts";
import { num, type Env } from "./env.ts";
import { signingKeys } from "./keys.ts";


/** Statuses worth another try; any other 4xx means the beacon itself is wrong. */
const retryable = (status: number) => status >= 500 || status === 429 || status === 408;

/**
 * A refused signature is not the clicks' fault but this worker's (EDGE_SECRET out of step with
 * ingest's, e.g. during a rotation): retrying at once or splitting the batch cannot help, but
 * the same clicks go through once the secrets agree, so they are kept for the queue.
 */
const signatureRefused = (status: number) => status === 401 || status === 403;

/** Longest pause between two attempts, so all of them fit in waitUntil's ~30 s. */
const MAX_DELAY_MS = 8_000;
/** Longest wait for one attempt's answer. */
const ATTEMPT_TIMEOUT_MS = 5_000;
/**
 * Time the direct attempts of one batch may take in all. waitUntil lets work run ~30 s after
 * the response; five attempts that each time out would take ~38 s, and the hand-over to the
 * queue after them would never run. 20 s leaves the queue send its time.
 */
const DIRECT_BUDGET_MS = 20_000;

/** What a delivery left undone. */
export interface Delivery {
  /** Clicks ingest did not take but may take later (unreachable, 5xx, 429, signature refused). */
  undelivered: ClickEvent[];
  /** Clicks ingest refused for good (invalid): sending them again would never succeed. */
  refused: ClickEvent[];
}

const DONE: Delivery = { undelivered: [], refused: [] };
const utf8 = new TextEncoder();
const bytes = (s: string) => utf8.encode(s).length;
export const beaconAttempts = (env: Env) => Math.max(1, num(env.BEACON_ATTEMPTS, 5));

/**
 * Sends one signed beacon (a click, or a batch of them) to ingest, making up to `attempts`
 * attempts with exponential backoff and jitter, re-signing each attempt so the signature stays
 * inside ingest's window. Ingest ignores click_ids it already has, so a retry after a lost
 * answer is harmless. Runs inside ctx.waitUntil after the redirect went out (BEACON_ATTEMPTS
 * attempts), or in the queue consumer (one attempt: the queue does the retrying).
 */
export async function sendBeacon(
  env: Env,
  events: ClickEvent | ClickEvent[],
  attempts = beaconAttempts(env),
  deadline = Number.POSITIVE_INFINITY,
): Promise<Delivery> {
  const list = Array.isArray(events) ? events : [events];
  // Nothing to send (an empty queue delivery, a batch another request already took): ingest
  // would refuse `[]` with a 400 that the log would then count as a refused click.
  if (!list.length) return DONE;
  // Encoded once: its size, its signature and the request body are the same bytes.
  const body = utf8.encode(JSON.stringify(events));
  // Over ingest's body limit: send it in halves (a click is far below the limit on its own).
  if (list.length > 1 && body.byteLength > MAX_BEACON_BYTES) return sendHalves(env, list, attempts, deadline);
  const base = num(env.BEACON_BASE_DELAY_MS, 250);
  for (let i = 0; i < attempts; i++) {
    const delay = i > 0 ? Math.min(MAX_DELAY_MS, base * 4 ** (i - 1)) * (0.5 + Math.random() / 2) : 0;
    // No attempt that could not get its answer before the deadline (the first always runs).
    const timeout = Math.min(ATTEMPT_TIMEOUT_MS, deadline - Date.now() - delay);
    if (i > 0 && timeout < 1_000) break;
    if (delay) await sleep(delay);
    try {
      const res = await fetch(`${env.INGEST_URL}/v1/clicks`, {
        method: "POST",
        headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign((await signingKeys(env)).beacon, body) },
        body,
        signal: AbortSignal.timeout(Math.max(1_000, timeout)),
      });
      if (res.ok) {
        ingestDownUntil = 0;
        return DONE;
      }
      if (signatureRefused(res.status)) {
        console.error(`beacon signature refused: ${res.status} (EDGE_SECRET differs from ingest's?)`);
        return { undelivered: list, refused: [] };
      }
      if (!retryable(res.status)) {
        // One bad click must not take the others of its batch with it: split until it is alone.
        if (list.length > 1) return sendHalves(env, list, attempts, deadline);
        console.error(`beacon refused: ${res.status} ${await res.text()}`);
        return { undelivered: [], refused: list };
      }
      ingestDownUntil = Date.now() + DOWN_HOLD_MS;
    } catch {
      // network error or timeout: retry
      ingestDownUntil = Date.now() + DOWN_HOLD_MS;
    }
  }
  return { undelivered: list, refused: [] };
}

async function sendHalves(env: Env, events: ClickEvent[], attempts: number, deadline: number): Promise<Delivery> {
  const mid = Math.ceil(events.length / 2);
  const [a, b] = await Promise.all([
    sendBeacon(env, events.slice(0, mid), attempts, deadline),
    sendBeacon(env, events.slice(mid), attempts, deadline),
  ]);
  return { undelivered: [...a.undelivered, ...b.undelivered], refused: [...a.refused, ...b.refused] };
}

/**
 * A queue message's body: many clicks, not one. Miniflare's local broker (what `npm start`
 * runs) keeps one timer per message waiting for a retry or a delivery delay, and workerd caps
 * an isolate at 10,000 active timers: with one click per message a few minutes of ingest outage
 * under load overflowed it and the queued clicks vanished (issue 18). Packed, 10,000 timers are
 * millions of clicks; on Cloudflare it is also fewer billed operations. `tries`: the deliveries
 * these clicks already failed in earlier messages (the consumer re-packs what ingest did not
 * take, so the platform's own attempt counter restarts; edge/src/consumer.ts).
 * A bare ClickEvent is the format of workers before this one (still read).
 */
export interface ClickParcel {
  clicks: ClickEvent[];
  tries?: number;
}
export type QueuedBody = ClickParcel | ClickEvent;

/** The clicks of a queue message, whatever its format (a message of an older worker: one click). */
export const parcelClicks = (body: QueuedBody | undefined | null): ClickEvent[] =>
  !body || typeof body !== "object" ? [] : Array.isArray((body as ClickParcel).clicks) ? (body as ClickParcel).clicks : [body as ClickEvent];
export const parcelTries = (body: QueuedBody | undefined | null): number => {
  const t = body && typeof body === "object" ? Number((body as ClickParcel).tries) : 0;
  return Number.isFinite(t) && t > 0 ? Math.floor(t) : 0;
};

/** Platform limits: a message ≤ 128 KB, a sendBatch ≤ 100 messages and 256 KB. Margins for the per-message overhead counted. */
const PARCEL_BYTES = 96_000;
const SEND_BATCH_BYTES = 200_000;
const SEND_BATCH_MESSAGES = 100;

/** Packs clicks into parcels of ≤ PARCEL_BYTES and ≤ MAX_BATCH clicks (order kept). */
export function packParcels(events: ClickEvent[], tries = 0): { body: ClickParcel; bytes: number }[] {
  const out: { body: ClickParcel; bytes: number }[] = [];
  let clicks: ClickEvent[] = [];
  let size = 0;
  const close = () => {
    if (clicks.length) out.push({ body: tries ? { clicks, tries } : { clicks }, bytes: size + 32 });
    clicks = [];
    size = 0;
  };
  for (const e of events) {
    const n = bytes(JSON.stringify(e)) + 1;
    if (clicks.length && (clicks.length >= MAX_BATCH || size + n > PARCEL_BYTES)) close();
    clicks.push(e);
    size += n;
  }
  close();
  return out;
}

/** Groups parcels into sendBatch calls within the platform's limits (order kept). */
export function queueChunks(events: ClickEvent[], tries = 0): ClickParcel[][] {
  const chunks: ClickParcel[][] = [];
  let chunk: ClickParcel[] = [];
  let size = 0;
  for (const p of packParcels(events, tries)) {
    if (chunk.length && (chunk.length >= SEND_BATCH_MESSAGES || size + p.bytes > SEND_BATCH_BYTES)) {
      chunks.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(p.body);
    size += p.bytes;
  }
  if (chunk.length) chunks.push(chunk);
  return chunks;
}

/**
 * Puts clicks on a queue, packed (see ClickParcel), optionally delivered only after
 * `delaySeconds`; returns those it could not put there (the queue itself failing).
 */
export async function enqueue(queue: Queue<QueuedBody>, events: ClickEvent[], opts: { delaySeconds?: number; tries?: number } = {}): Promise<ClickEvent[]> {
  const chunks = queueChunks(events, opts.tries);
  for (let i = 0; i < chunks.length; i++) {
    try {
      // JSON, not the default v8 serialisation: a consumer of another version reads it too.
      const delay = opts.delaySeconds ? { delaySeconds: opts.delaySeconds } : {};
      await queue.sendBatch(chunks[i]!.map((body) => ({ body, contentType: "json" as const, ...delay })));
    } catch (e) {
      console.error(`queue send failed: ${e instanceof Error ? e.message : String(e)}`);
      return chunks.slice(i).flatMap((c) => c.flatMap((p) => p.clicks));
    }
  }
  return [];
}

/**
 * Ingest seen failing by this isolate: until this time (ms) a batch goes straight to the queue
 * (when bound) instead of making its own direct attempts. Without it every 20 ms batch of an
 * outage would sleep through its ~7–13 s of retries in the isolate: hundreds of timers and
 * fetches held at once under load. After the hold one batch tries ingest again (the probe).
 */
let ingestDownUntil = 0;
const DOWN_HOLD_MS = 5_000;
/** Clicks this isolate holds in direct deliveries (sending or waiting to retry). */
let held = 0;
/** Most clicks an isolate holds in direct deliveries: above it, clicks go to the queue at once, or without one are given up (logged). */
export const MAX_HELD_CLICKS = 5_000;
/** Clicks this isolate gave up on since it started (every loss is logged with this running total). */
let lostTotal = 0;
const lost = (n: number, why: string) => {
  lostTotal += n;
  console.error(`${n} click(s) lost: ${why} (this isolate: ${lostTotal} lost in all)`);
};

/**
 * Delivers a batch of clicks the way BEACON_TRANSPORT says.
 * - "direct" (default): a beacon to ingest with BEACON_ATTEMPTS attempts; what it could not
 *   deliver goes to CLICKS_QUEUE when bound (its consumer keeps trying for hours), else is lost.
 * - "queue": everything goes to CLICKS_QUEUE and the consumer posts it; only if the queue
 *   itself refuses the send are the clicks posted directly, rather than lost.
 * Without a CLICKS_QUEUE binding "queue" behaves as "direct": the binding is optional.
 * Loss is logged with its count only (a click holds IPs and user agents: no PII in logs).
 */
export async function deliver(env: Env, events: ClickEvent[]): Promise<void> {
  const queue = env.CLICKS_QUEUE;
  const viaQueue = env.BEACON_TRANSPORT === "queue" && queue !== undefined;
  let pending = events;
  // Ingest just failed, or this isolate already holds its share: the queue, not another direct try.
  const skipDirect = queue !== undefined && (Date.now() < ingestDownUntil || held + events.length > MAX_HELD_CLICKS);
  if (viaQueue || skipDirect) {
    pending = await enqueue(queue!, pending);
    if (!viaQueue && pending.length < events.length)
      console.warn(`${events.length - pending.length} click(s) handed to CLICKS_QUEUE without a direct attempt (ingest failing, or this isolate holds ${held} click(s))`);
    if (!pending.length) return;
  }
  if (held + pending.length > MAX_HELD_CLICKS) {
    lost(pending.length, `this isolate already holds ${held} undelivered click(s) (cap ${MAX_HELD_CLICKS})${queue ? " and CLICKS_QUEUE refused them" : ", no CLICKS_QUEUE bound"}`);
    return;
  }
  const attempts = beaconAttempts(env);
  held += pending.length;
  const n0 = pending.length;
  try {
    // A lone click goes as an object, as ingest has always accepted it.
    pending = (await sendBeacon(env, pending.length === 1 ? pending[0]! : pending, attempts, Date.now() + DIRECT_BUDGET_MS)).undelivered;
  } finally {
    held -= n0;
  }
  if (!pending.length) return;
  if (queue && !viaQueue) {
    const n = pending.length;
    pending = await enqueue(queue, pending);
    if (pending.length < n) console.warn(`${n - pending.length} click(s) handed to CLICKS_QUEUE after ${attempts} failed attempt(s)`);
    if (!pending.length) return;
  }
  lost(pending.length, `undelivered after ${attempts} attempt(s) ${queue ? "and CLICKS_QUEUE refused them" : "and no CLICKS_QUEUE is bound"}`);
}

/** Clicks of this isolate waiting for the next beacon (plain data, shared by its requests). */
const queued: ClickEvent[] = [];
/**
 * Until when a request of this isolate is waiting out the window to send what is queued (0:
 * none). A time rather than a flag: a collector whose context was torn down mid-wait never
 * clears it, and a click past that time (plus a margin) takes the collector's place.
 */
let collectorUntil = 0;
const STALE_COLLECTOR_MS = 1_000;

/**
 * Queues a click for this isolate's next beacon; returns the delivery work to hand to
 * ctx.waitUntil, or nothing when another request's work will send the click. Clicks that
 * arrive within BEACON_BATCH_MS of each other share one beacon (up to BEACON_BATCH_MAX), so a
 * busy edge sends a few requests a second instead of one per redirect; a lone click waits only
 * that window. With BEACON_BATCH_MS=0 every click is its own beacon. The same batches go to
 * CLICKS_QUEUE in queue mode (one sendBatch each).
 *
 * The first click of a window makes its request the collector: that request (its own
 * waitUntil, so its own context) sleeps out the window, then takes everything queued and sends
 * it. The clicks that arrive meanwhile are only pushed, and their requests are done at once: no
 * timer, no context kept alive and no waitUntil per redirect (bench, split cores: the beacon's
 * extra workerd CPU per redirect went from ~55 µs to ~24 µs; a waitUntil of an already settled
 * promise was still ~2 % of the worker's CPU in a profile under load).
 * No request ever waits on another request's promise (workerd cancels continuations across
 * request contexts): the queue is plain data. A full batch is sent at once by the request that
 * filled it.
 */
export function queueClick(env: Env, event: ClickEvent): Promise<void> | undefined {
  const windowMs = num(env.BEACON_BATCH_MS, 20);
  if (windowMs <= 0) return deliver(env, [event]);
  const max = Math.min(MAX_BATCH, Math.max(1, num(env.BEACON_BATCH_MAX, 100)));
  queued.push(event);
  if (queued.length >= max) return deliver(env, queued.splice(0, max));
  const now = Date.now();
  if (collectorUntil && now < collectorUntil + STALE_COLLECTOR_MS) return undefined;
  collectorUntil = now + windowMs;
  return collect(env, collectorUntil, windowMs, max);
}

/** The collector's work: wait out the window, then send what is queued (up to `max`). */
async function collect(env: Env, mine: number, windowMs: number, max: number): Promise<void> {
  await sleep(windowMs);
  if (collectorUntil === mine) collectorUntil = 0;
  const batch = queued.splice(0, max);
  if (batch.length) await deliver(env, batch);
}
