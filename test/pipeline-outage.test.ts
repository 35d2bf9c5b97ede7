import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { body, eventually, json, startStack, type Stack } from "./helpers.ts";

/**
 * Short outages inside `npm test` (the 30-second ones and SIGKILL are in `npm run test:faults`):
 * Kinesis unreachable (a fault-injection proxy drops its connections), ClickHouse refusing
 * inserts (the real table renamed away). Beacons keep getting 202, breakers open, and after
 * recovery everything drains: ClickHouse == PostgreSQL.
 */
let s: Stack;
beforeAll(async () => {
  s = await startStack({ edge: false, pipeline: true });
  await seedLinks(s.sql, [clickEvent()]);
});
afterAll(() => s.close());

const status = async () => body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: json(s.adminKey) }));
const metric = async (name: string) => {
  const text = await (await fetch(`${s.ingest.url}/metrics`)).text();
  return Number(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1]);
};

/** Steady load: one signed beacon every few ms until stopped; returns the acknowledged ids. */
function steadyLoad() {
  const acked: string[] = [];
  const refused: number[] = [];
  let on = true;
  const done = (async () => {
    while (on) {
      const e = clickEvent();
      const res = await postBeacon(s.ingest.url, e);
      if (res.status === 202) acked.push(e.click_id);
      else refused.push(res.status);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return { acked, refused, stop: async () => ((on = false), await done) };
}

async function expectDrained(total: number) {
  expect(await eventually(async () => (await status()).clickhouse_clicks === total, 30_000, 200)).toBe(true);
  expect(await status()).toMatchObject({ postgres_clicks: total, clickhouse_clicks: total, outbox_backlog: 0, dlq: 0 });
}

describe("outages", () => {
  it("Kinesis down: beacons still get 202, the breaker opens, the backlog drains after", async () => {
    const load = steadyLoad();
    await new Promise((r) => setTimeout(r, 300));
    s.kinesisProxy!.down();
    expect(await eventually(async () => (await metric('linkflow_breaker_state{breaker="kinesis"}')) === 2, 10_000, 100)).toBe(true);
    expect((await status()).breakers.kinesis).toBe("open");
    await new Promise((r) => setTimeout(r, 1500));
    expect((await status()).outbox_backlog).toBeGreaterThan(0);
    s.kinesisProxy!.up();
    await new Promise((r) => setTimeout(r, 300));
    await load.stop();
    expect(load.refused).toEqual([]);
    expect(load.acked.length).toBeGreaterThan(50);
    await expectDrained(load.acked.length);
    expect((await status()).breakers.kinesis).toBe("closed");
  }, 60_000);

  it("ClickHouse refusing inserts: the loader breaker opens and holds its place; nothing is lost", async () => {
    const before = (await status()).postgres_clicks as number;
    const ch = s.ingest.pipeline.ch!;
    await ch.command({ query: "RENAME TABLE linkflow.clicks TO linkflow.clicks_away" });
    const load = steadyLoad();
    try {
      expect(await eventually(async () => (await metric('linkflow_breaker_state{breaker="clickhouse"}')) === 2, 15_000, 100)).toBe(true);
      expect((await status()).dlq).toBe(0); // unavailability is not poison
    } finally {
      await ch.command({ query: "RENAME TABLE linkflow.clicks_away TO linkflow.clicks" });
    }
    await new Promise((r) => setTimeout(r, 300));
    await load.stop();
    expect(load.refused).toEqual([]);
    await expectDrained(before + load.acked.length);
    expect((await status()).breakers.clickhouse).toBe("closed");
  }, 60_000);
});
