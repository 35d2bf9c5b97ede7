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

/** A row of the outbox as the forwarder read it: the Kinesis record's bytes (one click's JSON). */
export interface TappedRow {
  data: Buffer;
}

/**
 * The pipeline's hand-off of durable clicks, called by the forwarder in the transaction that
 * deletes the outbox rows Kinesis accepted: for every enabled endpoint subscribed to
 * link.clicked in a click's link's workspace, the clicks go into link.clicked messages of at
 * most `maxPerMessage` clicks (in outbox order). Each outbox row is handed over exactly once
 * (with its delete; a rolled-back transaction takes both), and a click is in the outbox once,
 * unless a dead-letter replay put it back, and the forwarder passes no replayed row: so each
 * click is in exactly one message per endpoint, whose webhook-id is fixed with it. The messages
 * are built here, not in SQL: the forwarder holds the records' bytes already, and parsing them
 * in PostgreSQL (jsonb, then a per-click uniqueness row) cost ~96 µs of database CPU a click,
 * measured; this costs two small queries a batch and one insert. A click whose link was deleted
 * before the hand-off has no workspace any more: not sent.
 */
export async function tapClicks(tx: TransactionSql, rows: TappedRow[], maxPerMessage = 100): Promise<void> {
  if (!rows.length) return;
  const subscribers = await tx<{ id: string; workspace_id: string }[]>`
    SELECT id, workspace_id FROM webhook_endpoints WHERE enabled AND 'link.clicked' = ANY(events)`;
  if (!subscribers.length) return;
  const clicks = rows.map((r) => {
    const doc = JSON.parse(r.data.toString("utf8")) as { link_id: number; ip_address?: unknown } & Record<string, JSONValue>;
    delete doc.ip_address; // a receiver is not told the visitor's address
    return { link_id: String(doc.link_id), doc };
  });
  const owners = new Map(
    (await tx<{ id: string; workspace_id: string }[]>`
      SELECT id, workspace_id FROM links WHERE id = ANY(${[...new Set(clicks.map((c) => c.link_id))]}::bigint[])`).map((l) => [l.id, l.workspace_id]),
  );
  const byWorkspace = new Map<string, string[]>();
  for (const e of subscribers) byWorkspace.set(e.workspace_id, [...(byWorkspace.get(e.workspace_id) ?? []), e.id]);
  const perEndpoint = new Map<string, JSONValue[]>();
  for (const c of clicks)
    for (const endpoint of byWorkspace.get(owners.get(c.link_id) ?? "") ?? []) {
      const list = perEndpoint.get(endpoint) ?? [];
      if (!list.length) perEndpoint.set(endpoint, list);
      list.push(c.doc);
    }
  if (!perEndpoint.size) return;
  const timestamp = new Date().toISOString();
  const messages: { endpoint_id: string; event_type: string; payload: JSONValue }[] = [];
  for (const [endpoint, list] of perEndpoint)
    for (let i = 0; i < list.length; i += maxPerMessage)
      messages.push({ endpoint_id: endpoint, event_type: "link.clicked", payload: { type: "link.clicked", timestamp, data: { clicks: list.slice(i, i + maxPerMessage) } } });
  // An object, not its text: the driver serialises a jsonb parameter itself (text would be stored as one JSON string).
  await tx`INSERT INTO webhook_deliveries ${tx(messages)}`;
}
