import { afterAll, beforeAll, expect, it } from "vitest";
import { groupCommitter } from "../ingest/src/clicks/group-commit.ts";
import { migrate } from "../ingest/src/db/migrate.ts";
import { clickEvent } from "./fixtures.ts";
import { testSchema } from "./helpers.ts";

/** Group commit on the real PostgreSQL: acknowledged only after the commit, failures fail the whole group. */
let db: Awaited<ReturnType<typeof testSchema>>;
beforeAll(async () => {
  db = await testSchema();
  await migrate(db.sql);
  // A fault only PostgreSQL knows about: any click with code 'boom' aborts its transaction.
  await db.sql.unsafe(`
    CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.code = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$;
    CREATE TRIGGER boom BEFORE INSERT ON clicks FOR EACH ROW EXECUTE FUNCTION boom();`);
});
afterAll(() => db.drop());

const stored = async (ids: string[]) => Number((await db.sql`SELECT count(*) AS n FROM clicks WHERE click_id = ANY(${ids}::uuid[])`)[0]!.n);

it("shares transactions among concurrent beacons; a failed group fails every beacon in it, and only those", async () => {
  const store = groupCommitter(db.sql, { maxInFlight: 1 });
  const a = clickEvent();
  const first = store([a]); // commits alone, while the next three queue behind it
  const [b, c] = [clickEvent(), clickEvent()];
  const bad = clickEvent({ code: "boom" });
  const group = Promise.allSettled([store([b]), store([bad]), store([c])]);
  expect(await first).toEqual(new Set([a.click_id]));
  // Acknowledged means committed: another connection sees it.
  expect(await stored([a.click_id])).toBe(1);
  const results = await group;
  expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
  expect(await stored([b.click_id, c.click_id, bad.click_id])).toBe(0);
  // Nothing half-written: no outbox rows for the failed group either.
  expect(Number((await db.sql`SELECT count(*) AS n FROM outbox`)[0]!.n)).toBe(1);

  // Retried (as the edge does), the good ones go through; duplicates are reported per beacon.
  const again = await Promise.all([store([b]), store([c, a])]);
  expect(again).toEqual([new Set([b.click_id]), new Set([c.click_id])]);
  expect(await stored([a.click_id, b.click_id, c.click_id])).toBe(3);
});

it("gathers many concurrent beacons into few transactions", async () => {
  const store = groupCommitter(db.sql, { maxInFlight: 2 });
  const before = Number((await db.sql`SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()`)[0]!.n);
  const events = Array.from({ length: 200 }, () => clickEvent());
  const results = await Promise.all(events.map((e) => store([e])));
  expect(results.every((r) => r.size === 1)).toBe(true);
  expect(await stored(events.map((e) => e.click_id))).toBe(200);
  const after = Number((await db.sql`SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()`)[0]!.n);
  // pg_stat counts every transaction of the database (other test files too): a loose upper bound.
  expect(after - before).toBeLessThan(150);
});

it("writes every column, the outbox record as the event plus received_at, and the running total, in one statement", async () => {
  const store = groupCommitter(db.sql, { maxInFlight: 1 });
  const counted = async () => Number((await db.sql`SELECT sum(value) AS n FROM pipeline_counters WHERE name = 'postgres_clicks'`)[0]!.n);
  const before = await counted();
  const odd = clickEvent({
    // Characters that need escaping in an array literal, in JSON and in SQL.
    user_agent: `Mozilla/5.0 "quoted" \\back, {braces} 'single' ünïcödé 😀`,
    referer: "",
    ip_address: "",
    geo_location: { country: "JP", latitude: -33.5, asn: 13335 },
    timestamp: "2026-03-01T10:00:00.123+09:00",
    qr: true,
    dnt: true,
    redirect_status: 308,
    cache_tier: "origin",
  });
  const plain = clickEvent();
  // A click and its retry in one group (the retry racing the original): one row, one record.
  const results = await Promise.all([store([odd]), store([plain]), store([{ ...plain }])]);
  expect(results).toEqual([new Set([odd.click_id]), new Set([plain.click_id]), new Set()]);

  const [row] = await db.sql`SELECT * FROM clicks WHERE click_id = ${odd.click_id}`;
  expect(row).toMatchObject({
    user_agent: odd.user_agent, referer: "", ip_address: "", geo_location: odd.geo_location, qr: true, dnt: true,
    redirect_status: 308, cache_tier: "origin", code: odd.code, domain: "", short_url: odd.short_url, original_url: odd.original_url,
  });
  expect((row!.ts as Date).toISOString()).toBe("2026-03-01T01:00:00.123Z");
  expect((await db.sql`SELECT qr, dnt FROM clicks WHERE click_id = ${plain.click_id}`)[0]).toEqual({ qr: false, dnt: false });

  const outbox = await db.sql<{ partition_key: string; data: Buffer }[]>`
    SELECT partition_key, data FROM outbox WHERE convert_from(data, 'UTF8')::jsonb->>'click_id' = ANY(${[odd.click_id, plain.click_id]}::text[]) ORDER BY id`;
  expect(outbox).toHaveLength(2);
  for (const [i, e] of [odd, plain].entries()) {
    const { received_at } = (await db.sql`SELECT received_at FROM clicks WHERE click_id = ${e.click_id}`)[0] as { received_at: Date };
    expect(outbox[i]!.partition_key).toBe(e.code);
    // Byte for byte what JSON.stringify({ ...event, received_at }) gives.
    expect(outbox[i]!.data.toString("utf8")).toBe(JSON.stringify({ ...e, received_at: received_at.toISOString() }));
  }
  expect((await counted()) - before).toBe(2);
});
