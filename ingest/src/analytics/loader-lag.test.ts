import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chTime, clickhouseClient, ensureSchema, rows, type ClickHouseClient } from "./clickhouse.ts";
import { loaderLag } from "./loader-lag.ts";

/**
 * The loader-lag figure of GET /api/pipeline against a real ClickHouse (chDB): the clicks received
 * in the last minutes, each counted once at its first insert.
 */
let dir: string;
let ch: ClickHouseClient;
const DB = "linkflow";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "linkflow-loader-lag-"));
  ch = clickhouseClient({ path: join(dir, "chdb") });
  await ensureSchema(ch, DB);
});
afterAll(async () => {
  await ch?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("loaderLag", () => {
  it("counts each click received since `since` once, at its first insert, late clicks included", async () => {
    const now = Date.now();
    const since = new Date(now - 5 * 60_000);
    type Row = { click_id: string; link_id: number; ts: string; received_at: string; inserted_at: string };
    const row = (id: string, ts: number, received: number, lagMs: number): Row => ({
      click_id: id, link_id: 1 + (Math.imul(ts, 2654435761) >>> 0) % 500, ts: chTime(new Date(ts)), received_at: chTime(new Date(received)), inserted_at: chTime(new Date(received + lagMs)),
    });
    // 12 hours of clicks, received 100 ms after they happened, loaded 250 ms after that.
    const n = 120_000;
    const clicks = Array.from({ length: n }, (_, i) => {
      const ts = now - 12 * 3_600_000 + Math.floor((i * 12 * 3_600_000) / n);
      return row(randomUUID(), ts, ts + 100, 250);
    });
    // Two late clicks: 8 hours old, received a minute ago (a queue's redeliveries), loaded in 1 s.
    const late = [0, 1].map(() => row(randomUUID(), now - 8 * 3_600_000, now - 60_000, 1_000));
    const insert = (values: Row[]) => ch.insert({ table: `${DB}.clicks`, values, format: "JSONEachRow" });
    await insert([...clicks, ...late]);
    // Ten recent clicks delivered again, loaded later: still one click each, lag from their first insert.
    const recent = clicks.filter((c) => c.received_at >= chTime(since));
    await insert(recent.slice(-10).map((c) => ({ ...c, inserted_at: chTime(new Date(now + 30_000)) })));

    const expected = recent.length + late.length;
    expect(expected).toBeGreaterThan(700);
    expect(await loaderLag(ch, DB, since)).toEqual({ clicks: expected, p50_ms: 250, p99_ms: 250, max_ms: 1_000 });
    // Brute force over the raw table: the same distinct clicks.
    const [brute] = await rows<{ c: number }>(ch, `SELECT uniqExact(click_id) AS c FROM ${DB}.clicks WHERE received_at >= {since:DateTime64(3, 'UTC')}`, { since: chTime(since) });
    expect(Number(brute?.c)).toBe(expected);
  });
});
