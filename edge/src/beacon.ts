import type { ClickEvent } from "../../shared/event.ts";
import { sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import { num, type Env } from "./env.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Statuses worth another try; any other 4xx means the beacon itself is wrong. */
const retryable = (status: number) => status >= 500 || status === 429 || status === 408;

/**
 * Sends one signed click beacon to ingest. Runs inside ctx.waitUntil, after the redirect
 * went out; retries with exponential backoff and full jitter (re-signing each attempt, so
 * the signature stays inside ingest's window). Resolves to whether ingest acknowledged it.
 */
export async function sendBeacon(env: Env, event: ClickEvent): Promise<boolean> {
  const body = JSON.stringify(event);
  const attempts = Math.max(1, num(env.BEACON_ATTEMPTS, 4));
  const base = num(env.BEACON_BASE_DELAY_MS, 200);
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep(Math.random() * base * 4 ** (i - 1) + base / 2);
    try {
      const res = await fetch(`${env.INGEST_URL}/v1/clicks`, {
        method: "POST",
        headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(env.EDGE_SECRET, body) },
        body,
        signal: AbortSignal.timeout(5000),
      });
      if (res.ok) return true;
      if (!retryable(res.status)) {
        console.error(`beacon ${event.click_id} refused: ${res.status} ${await res.text()}`);
        return false;
      }
    } catch {
      // network error or timeout: retry
    }
  }
  console.error(`beacon ${event.click_id} undelivered after ${attempts} attempts`);
  return false;
}
