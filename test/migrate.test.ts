import { readdir } from "node:fs/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connect, type Sql } from "../ingest/src/db/connect.ts";
import { migrate } from "../ingest/src/db/migrate.ts";
import { DATABASE_URL, testSchema } from "./helpers.ts";

let db: Awaited<ReturnType<typeof testSchema>>;
beforeAll(async () => {
  db = await testSchema();
});
afterAll(() => db.drop());

it("applies each migration once, even when several processes start together", async () => {
  // Separate pools stand in for separate ingest processes.
  const pools: Sql[] = [0, 1, 2].map(() => connect(DATABASE_URL, { max: 1, schema: db.schema }));
  const results = await Promise.all(pools.map((p) => migrate(p)));
  await Promise.all(pools.map((p) => p.end()));
  const shipped = (await readdir(new URL("../ingest/migrations/", import.meta.url))).filter((f) => f.endsWith(".sql")).map((f) => f.replace(/\.sql$/, "")).sort();
  expect(shipped.length).toBeGreaterThanOrEqual(3);
  expect(results.flat().sort()).toEqual(shipped);
  const rows = await db.sql`SELECT version FROM schema_migrations ORDER BY version`;
  expect(rows.map((r) => r.version)).toEqual(shipped);
  expect(await migrate(db.sql)).toEqual([]);
  const [t] = await db.sql`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = ${db.schema} AND table_name IN ('links','clicks','api_keys','workspaces')`;
  expect(t!.n).toBe(4);
});
