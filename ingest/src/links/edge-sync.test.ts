import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowsReadBy, testSchema } from "../../../test/helpers.ts";
import { migrate } from "../db/migrate.ts";
import { claimPending } from "./edge-sync.ts";

let db: Awaited<ReturnType<typeof testSchema>>;
beforeAll(async () => {
  db = await testSchema();
  await migrate(db.sql);
}, 60_000);
afterAll(async () => {
  await db?.drop();
});

describe("KV write-through retry claims", () => {
  it("read about a batch of keys however many are pending (a claim that read them all made a backlog's drain quadratic)", async () => {
    await db.sql`INSERT INTO edge_sync_pending (domain, code, next_at) SELECT '', 'c' || g, now() - interval '1 minute' FROM generate_series(1, 20000) g`;
    const { result: claimed, read } = await rowsReadBy(db.sql, "edge_sync_pending", (tx) => claimPending(tx));
    expect(claimed).toHaveLength(50);
    // Claimed: pushed a minute on, so the next pass takes the next 50.
    const [later] = await db.sql<{ n: string }[]>`SELECT count(*) AS n FROM edge_sync_pending WHERE next_at > now()`;
    expect(Number(later!.n)).toBe(50);
    // The join on (domain, code) read 20,000 rows (a sequential scan) besides the batch.
    expect(read).toBeLessThanOrEqual(200);
  });
});
