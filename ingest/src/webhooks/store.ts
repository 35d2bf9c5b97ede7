import type { Sql } from "../db/connect.ts";
import { domainError } from "../errors.ts";
import { checkUrl } from "../links/url-safety.ts";
import type { WebhookEvent } from "./events.ts";
import { generateSecret } from "./signing.ts";

/**
 * Webhook endpoints and their delivery log, every query scoped by the caller's workspace
 * (another workspace's endpoint is "not found"). The secret leaves only in the answer to a
 * create or a rotation.
 */

interface EndpointRow {
  id: string;
  workspace_id: string;
  url: string;
  description: string | null;
  events: WebhookEvent[];
  secret: string;
  enabled: boolean;
  failing_since: Date | null;
  retry_at: Date;
  created_at: Date;
  updated_at: Date;
}

export interface Endpoint {
  id: number;
  url: string;
  description: string | null;
  events: WebhookEvent[];
  enabled: boolean;
  failing_since: string | null;
  next_try_at: string | null;
  created_at: string;
  updated_at: string;
}

interface DeliveryRow {
  id: string;
  webhook_id: string;
  event_type: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  next_attempt_at: Date;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Date;
  last_attempt_at: Date | null;
  delivered_at: Date | null;
  clicks: number | null;
}

export interface Delivery {
  id: number;
  webhook_id: string;
  event_type: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  last_attempt_at: string | null;
  delivered_at: string | null;
  /** Clicks in a link.clicked batch; null for a link event. */
  clicks: number | null;
}

export interface EndpointInput {
  url: string;
  description?: string | null;
  events: WebhookEvent[];
  enabled?: boolean;
}

/** How long a rotated-out secret still signs (a second signature on each message). */
export const SECRET_OVERLAP_HOURS = 24;

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

const present = (r: EndpointRow): Endpoint => ({
  id: Number(r.id),
  url: r.url,
  description: r.description,
  events: r.events,
  enabled: r.enabled,
  failing_since: iso(r.failing_since),
  next_try_at: r.failing_since ? iso(r.retry_at) : null,
  created_at: iso(r.created_at)!,
  updated_at: iso(r.updated_at)!,
});

const presentDelivery = (r: DeliveryRow): Delivery => ({
  id: Number(r.id),
  webhook_id: r.webhook_id,
  event_type: r.event_type,
  status: r.status,
  attempts: r.attempts,
  next_attempt_at: r.status === "pending" ? iso(r.next_attempt_at) : null,
  last_status_code: r.last_status_code,
  last_error: r.last_error,
  created_at: iso(r.created_at)!,
  last_attempt_at: iso(r.last_attempt_at),
  delivered_at: iso(r.delivered_at),
  clicks: r.clicks === null ? null : Number(r.clicks),
});

export interface WebhookStoreDeps {
  sql: Sql;
  /** ALLOW_PRIVATE_DESTINATIONS: endpoints in private address space are accepted. */
  allowPrivate?: boolean;
}

export function webhookStore({ sql, allowPrivate = false }: WebhookStoreDeps) {
  /** Destination safety (shared/destination.ts): the dispatcher POSTs there from inside the network. */
  function safeUrl(raw: string): string {
    const r = checkUrl(raw, { allowPrivate });
    if (!r.ok) throw domainError("unsafe_url", `url: ${r.reason}`, "url");
    return r.url;
  }

  async function row(ws: number, id: number): Promise<EndpointRow> {
    const [r] = await sql<EndpointRow[]>`SELECT * FROM webhook_endpoints WHERE id = ${id} AND workspace_id = ${ws}`;
    if (!r) throw domainError("not_found", "no such webhook endpoint in this workspace");
    return r;
  }

  return {
    /** Creates an endpoint; the answer holds its secret (the only time it is shown). */
    async create(ws: number, input: EndpointInput): Promise<Endpoint & { secret: string }> {
      const url = safeUrl(input.url);
      const [r] = await sql<EndpointRow[]>`
        INSERT INTO webhook_endpoints (workspace_id, url, description, events, secret, enabled)
        VALUES (${ws}, ${url}, ${input.description ?? null}, ${sql.array([...new Set(input.events)])}::text[], ${generateSecret()}, ${input.enabled ?? true})
        RETURNING *`;
      return { ...present(r!), secret: r!.secret };
    },

    async list(ws: number): Promise<Endpoint[]> {
      const rows = await sql<EndpointRow[]>`SELECT * FROM webhook_endpoints WHERE workspace_id = ${ws} ORDER BY id`;
      return rows.map(present);
    },

    async get(ws: number, id: number): Promise<Endpoint> {
      return present(await row(ws, id));
    },

    async update(ws: number, id: number, patch: Partial<EndpointInput>): Promise<Endpoint> {
      const cur = await row(ws, id);
      const url = patch.url === undefined ? cur.url : safeUrl(patch.url);
      const [r] = await sql<EndpointRow[]>`
        UPDATE webhook_endpoints SET url = ${url},
          description = ${patch.description === undefined ? cur.description : patch.description},
          events = ${sql.array(patch.events ? [...new Set(patch.events)] : cur.events)}::text[],
          enabled = ${patch.enabled ?? cur.enabled}, updated_at = now()
        WHERE id = ${id} AND workspace_id = ${ws} RETURNING *`;
      if (!r) throw domainError("not_found", "no such webhook endpoint in this workspace");
      return present(r);
    },

    /** Deletes the endpoint with its delivery log and its queued clicks. */
    async remove(ws: number, id: number): Promise<void> {
      const [r] = await sql`DELETE FROM webhook_endpoints WHERE id = ${id} AND workspace_id = ${ws} RETURNING id`;
      if (!r) throw domainError("not_found", "no such webhook endpoint in this workspace");
    },

    /**
     * A new secret, signing every attempt from now on; the previous one signs too (a second
     * signature) for SECRET_OVERLAP_HOURS, so receivers can move over without refusing messages.
     */
    async rotateSecret(ws: number, id: number): Promise<Endpoint & { secret: string }> {
      const [r] = await sql<EndpointRow[]>`
        UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = now() + make_interval(hours => ${SECRET_OVERLAP_HOURS}),
          secret = ${generateSecret()}, updated_at = now()
        WHERE id = ${id} AND workspace_id = ${ws} RETURNING *`;
      if (!r) throw domainError("not_found", "no such webhook endpoint in this workspace");
      return { ...present(r), secret: r.secret };
    },

    /** The endpoint's messages, newest first; `before` pages on (a delivery id). */
    async deliveries(ws: number, id: number, q: { limit: number; before?: number; status?: Delivery["status"] }): Promise<{ deliveries: Delivery[]; next_before: number | null }> {
      await row(ws, id);
      const rows = await sql<DeliveryRow[]>`
        SELECT id, webhook_id, event_type, status, attempts, next_attempt_at, last_status_code, last_error,
               created_at, last_attempt_at, delivered_at,
               CASE WHEN event_type = 'link.clicked' THEN jsonb_array_length(payload->'data'->'clicks') END AS clicks
        FROM webhook_deliveries
        WHERE endpoint_id = ${id} ${q.before ? sql`AND id < ${q.before}` : sql``} ${q.status ? sql`AND status = ${q.status}` : sql``}
        ORDER BY id DESC LIMIT ${q.limit + 1}`;
      const page = rows.slice(0, q.limit).map(presentDelivery);
      return { deliveries: page, next_before: rows.length > q.limit ? page.at(-1)!.id : null };
    },

    /**
     * Sends a message again, soon, with the same webhook-id and payload (receivers deduplicate);
     * its attempts start over. A pending one just becomes due now.
     */
    async replay(ws: number, id: number, deliveryId: number): Promise<Delivery> {
      await row(ws, id);
      const [r] = await sql<DeliveryRow[]>`
        UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), claimed_until = '-infinity'
        WHERE id = ${deliveryId} AND endpoint_id = ${id}
        RETURNING id, webhook_id, event_type, status, attempts, next_attempt_at, last_status_code, last_error,
                  created_at, last_attempt_at, delivered_at,
                  CASE WHEN event_type = 'link.clicked' THEN jsonb_array_length(payload->'data'->'clicks') END AS clicks`;
      if (!r) throw domainError("not_found", "no such delivery for this webhook endpoint");
      return presentDelivery(r);
    },

    /** Every dead-lettered (failed) message of the endpoint goes back to pending; returns how many. */
    async replayFailed(ws: number, id: number): Promise<number> {
      await row(ws, id);
      const r = await sql`
        UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), claimed_until = '-infinity'
        WHERE endpoint_id = ${id} AND status = 'failed' RETURNING id`;
      return r.length;
    },
  };
}

export type WebhookStore = ReturnType<typeof webhookStore>;
