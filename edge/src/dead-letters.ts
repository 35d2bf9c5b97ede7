import type { ClickEvent } from "../../shared/event.ts";
import { sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import type { Env } from "./env.ts";
import { signingKeys } from "./keys.ts";

/**
 * Hands clicks ingest refused as invalid to ingest's dead letters (POST /v1/clicks/dead-letters,
 * signed like a beacon): ingest checks each again, stores any that is valid now (idempotent on
 * click_id) and records the others with its reason, where `GET /api/pipeline` counts them.
 * True once ingest has them all (2xx).
 */
export async function recordDeadClicks(env: Env, clicks: ClickEvent[]): Promise<boolean> {
  const body = new TextEncoder().encode(JSON.stringify(clicks));
  try {
    const res = await fetch(`${env.INGEST_URL}/v1/clicks/dead-letters`, {
      method: "POST",
      headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign((await signingKeys(env)).beacon, body) },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer();
    if (!res.ok) console.error(`CLICKS_DLQ: ingest did not take ${clicks.length} dead letter(s): ${res.status}`);
    return res.ok;
  } catch {
    return false;
  }
}
