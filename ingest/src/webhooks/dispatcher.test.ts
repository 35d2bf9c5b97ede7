import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowsReadBy, testSchema } from "../../../test/helpers.ts";
import { migrate } from "../db/migrate.ts";
import { claimDeliveries } from "./dispatcher.ts";

let db: Awaited<ReturnType<typeof testSchema>>;
beforeAll(async () => {
  db = await testSchema();
  await migrate(db.sql);
}, 60_000);
afterAll(async () => {
  await db?.drop();
});

describe("webhook delivery claims", () => {
  it("take the oldest due messages of ready endpoints, reading about a batch per endpoint however many are due", async () => {
    const [ws] = await db.sql<{ id: string }[]>`INSERT INTO workspaces (name) VALUES ('w') RETURNING id`;
    const endpoints = await db.sql<{ id: string }[]>`
      INSERT INTO webhook_endpoints (workspace_id, url, events, secret, retry_at)
      SELECT ${ws!.id}, 'https://example.com/' || g, '{link.clicked}', 's', CASE WHEN g = 3 THEN now() + interval '1 hour' ELSE '-infinity' END
      FROM generate_series(1, 3) g RETURNING id`;
    const [a, b, backingOff] = endpoints.map((e) => e.id) as [string, string, string];
    // 20,000 due messages over the three endpoints; the third is backing off (retry_at ahead).
    await db.sql`
      INSERT INTO webhook_deliveries (endpoint_id, event_type, payload, next_attempt_at)
      SELECT (ARRAY[${a}, ${b}, ${backingOff}]::bigint[])[1 + g % 3], 'link.clicked', '{}', now() - make_interval(secs => 20000 - g)
      FROM generate_series(0, 19999) g`;
    const { result: claimed, read } = await rowsReadBy(db.sql, "webhook_deliveries", (tx) => claimDeliveries(tx, 30, 8));
    // The 8 oldest of the ready endpoints' messages (g = 0, 1, 3, 4, 6, 7, 9, 10: every third is the backing-off one's).
    const [oldest] = await db.sql<{ id: string }[]>`SELECT min(id) AS id FROM webhook_deliveries`;
    const first = Number(oldest!.id);
    expect(claimed.map((c) => Number(c.id) - first).sort((x, y) => x - y)).toEqual([0, 1, 3, 4, 6, 7, 9, 10]);
    expect(claimed.every((c) => c.endpoint_id !== backingOff && c.attempts === 1)).toBe(true);
    // Joined and sorted as a whole, the claim read every due message (20,008 rows).
    expect(read).toBeLessThanOrEqual(100);
  });
});
