import type { JSONValue, TransactionSql } from "postgres";
import type { Sql } from "../db/connect.ts";

/** What an endpoint may subscribe to (docs/WEBHOOKS.md has each payload). */
export const WEBHOOK_EVENTS = ["link.created", "link.updated", "link.deleted", "link.clicked"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
export type LinkEvent = Exclude<WebhookEvent, "link.clicked">;

/**
 * Queues a link event for every enabled endpoint of the workspace subscribed to it. Called with
 * the transaction that changes the link, so the event exists exactly when the change does (a
 * rollback takes both, a commit keeps both; the dispatcher sends it afterwards). The payload is
 * the Standard Webhooks shape: { type, timestamp, data }.
 */
export async function enqueueLinkEvent(tx: TransactionSql | Sql, workspaceId: number, type: LinkEvent, data: unknown): Promise<void> {
  await tx`
    INSERT INTO webhook_deliveries (endpoint_id, event_type, payload)
    SELECT id, ${type}, jsonb_build_object('type', ${type}::text,
             'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'data', ${tx.json(data as JSONValue)}::jsonb)
    FROM webhook_endpoints
    WHERE workspace_id = ${workspaceId} AND enabled AND ${type} = ANY(events)`;
}

/**
 * The pipeline's hand-off of durable clicks, called by the forwarder in the transaction that
 * deletes the outbox rows Kinesis accepted: for every enabled endpoint subscribed to
 * link.clicked in a click's link's workspace, the clicks new to that endpoint go into
 * link.clicked messages of at most `maxPerMessage` clicks, in one statement. webhook_clicks'
 * primary key (endpoint, click_id) makes a click sent again (a crash, a dead-letter replay) a
 * no-op, so each click is in exactly one message per endpoint, and the message's webhook-id is
 * fixed with it. The EXISTS is a one-time check: with no such endpoint anywhere the statement
 * reads no outbox row. A click whose link was deleted before the hand-off has no workspace any
 * more: not sent.
 */
export async function tapClicks(tx: TransactionSql, outboxIds: string[], maxPerMessage = 100): Promise<void> {
  if (!outboxIds.length) return;
  await tx`
    WITH c AS (
      SELECT DISTINCT ON (e.id, (o.doc->>'click_id')::uuid) e.id AS endpoint_id, (o.doc->>'click_id')::uuid AS click_id, o.doc - 'ip_address' AS doc, o.n
      FROM (SELECT convert_from(data, 'UTF8')::jsonb AS doc, id AS n FROM outbox
            WHERE id IN ${tx(outboxIds)}
              AND EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled AND 'link.clicked' = ANY(events))) o
      JOIN links l ON l.id = (o.doc->>'link_id')::bigint
      JOIN webhook_endpoints e ON e.workspace_id = l.workspace_id AND e.enabled AND 'link.clicked' = ANY(e.events)
      ORDER BY e.id, (o.doc->>'click_id')::uuid, o.n
    ), fresh AS (
      INSERT INTO webhook_clicks (endpoint_id, click_id) SELECT endpoint_id, click_id FROM c
      ON CONFLICT DO NOTHING
      RETURNING endpoint_id, click_id
    ), parts AS (
      SELECT c.endpoint_id, c.doc, c.n, (row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.n) - 1) / ${maxPerMessage} AS part
      FROM c JOIN fresh USING (endpoint_id, click_id)
    )
    INSERT INTO webhook_deliveries (endpoint_id, event_type, payload)
    SELECT endpoint_id, 'link.clicked', jsonb_build_object('type', 'link.clicked',
             'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
             'data', jsonb_build_object('clicks', jsonb_agg(doc ORDER BY n)))
    FROM parts GROUP BY endpoint_id, part`;
}
