import { LRUCache } from "lru-cache";
import type { Sql } from "../db/connect.ts";
import { rows, type ClickHouseClient } from "./clickhouse.ts";

/**
 * ClickHouse's copy of which workspace owns each clicked link (`link_workspaces`), so a
 * workspace's raw-table question is `link_id IN (its links)` inside ClickHouse, not a list of
 * every link id sent from PostgreSQL with each query. PostgreSQL owns the mapping; a link never
 * changes workspace, so a copied row never goes stale. The loader copies a link's row before
 * it inserts the link's first clicks (so no click is in ClickHouse without its owner), and
 * remembers the links it copied.
 */
export function linkOwners(sql: Sql, ch: ClickHouseClient, db: string) {
  const known = new LRUCache<number, true>({ max: 1_000_000 });
  return {
    async ensure(linkIds: Iterable<number>): Promise<void> {
      const missing = [...new Set(linkIds)].filter((id) => !known.has(id));
      if (!missing.length) return;
      await copyOwners(sql, ch, db, missing);
      for (const id of missing) known.set(id, true);
    },
  };
}

/** Copies the owners of `linkIds` (those PostgreSQL still has) into ClickHouse. */
async function copyOwners(sql: Sql, ch: ClickHouseClient, db: string, linkIds: number[]): Promise<void> {
  for (let i = 0; i < linkIds.length; i += 10_000) {
    const owners = await sql<{ link_id: string; workspace_id: string }[]>`
      SELECT id::text AS link_id, workspace_id::text FROM links WHERE id = ANY(${linkIds.slice(i, i + 10_000).map(String)}::bigint[])`;
    if (owners.length) await ch.insert({ table: `${db}.link_workspaces`, values: owners, format: "JSONEachRow", clickhouse_settings: { insert_distributed_sync: 1 } });
  }
}

/** Copies the owner of every link the raw table holds clicks of (a data folder from before this table; the bench's direct inserts). */
export async function copyAllOwners(sql: Sql, ch: ClickHouseClient, db: string): Promise<number> {
  const ids = (await rows<{ id: number }>(ch, `SELECT DISTINCT link_id AS id FROM ${db}.clicks`)).map((r) => Number(r.id));
  await copyOwners(sql, ch, db, ids);
  return ids.length;
}
