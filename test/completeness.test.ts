import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdge, type Edge } from "../edge/miniflare.ts";
import { CLICK_EVENT_VERSION, type ClickEvent } from "../shared/event.ts";
import { settleSequences } from "../ingest/src/clicks/sequences.ts";
import { clickEvent, postBeacon, seedLinks } from "./fixtures.ts";
import { body, EDGE_SECRET, eventually, json, startStack, type Stack } from "./helpers.ts";

/**
 * The completeness check (ingest/src/clicks/sequences.ts, docs/PIPELINE.md): the worker numbers
 * its clicks per isolate, ingest counts the numbers that never arrived. Real worker (workerd),
 * real PostgreSQL; a proxy between them that swallows chosen beacons (answered 202, never
 * forwarded: clicks lost after the worker let go of them). The missing count must equal the
 * clicks dropped, exactly, and nothing else may count: concurrent load, a second isolate (a
 * restart), redelivered beacons.
 */
let s: Stack;
const WINDOW_MS = 1000;
beforeAll(async () => {
  s = await startStack({ env: { CLICKS_MISSING_WINDOW_MS: String(WINDOW_MS) } });
});
afterAll(() => s?.close());

const status = async () => body(await fetch(`${s.ingest.url}/api/pipeline`, { headers: json(s.adminKey) })) as Promise<{ clicks_missing: number; clicks_late: number }>;
const stored = async (linkId: number) => Number((await s.sql`SELECT count(*) AS n FROM clicks WHERE link_id = ${linkId}`)[0]!.n);

/** `n` redirects, `concurrency` at a time; every one must be a 302. */
async function redirects(edge: Edge, code: string, n: number, concurrency = 8) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const res = await fetch(`${edge.url}/${code}`, { redirect: "manual", headers: { "user-agent": "Mozilla/5.0 (completeness)" } });
        expect(res.status).toBe(302);
      }
    }),
  );
}

/** Waits until the completeness figures settle on `missing` (bounded: a probe, not a timing assertion). */
async function settlesOn(missing: number, late = 0) {
  const got = await eventually(async () => {
    const st = await status();
    return st.clicks_missing === missing && st.clicks_late === late ? st : null;
  }, 30_000, 200);
  expect(got ?? (await status())).toMatchObject({ clicks_missing: missing, clicks_late: late });
}

describe("completeness check through the worker", () => {
  it("counts exactly the clicks of the beacons a proxy swallowed; none under concurrent load, a second isolate or redelivery", async () => {
    const [link] = await s.sql`INSERT INTO links (workspace_id, code, url) VALUES ((SELECT min(id) FROM workspaces), 'complete', 'https://example.com/c') RETURNING id`;
    const linkId = Number(link!.id);
    // Warm the isolate's cache, so every later redirect is answered by the isolate.
    await redirects(s.edge!, "complete", 1, 1);

    // Phase 1: 400 redirects; the 3rd, 7th and 11th beacons are swallowed.
    let beacons = 0;
    s.proxy.dropBeacon = () => [3, 7, 11].includes(++beacons);
    await redirects(s.edge!, "complete", 400);
    // Phase 2: no more drops; enough clicks that the isolate's numbers pass two more blocks.
    await eventually(async () => (await stored(linkId)) + s.proxy.dropped.length === 401, 30_000, 100);
    s.proxy.dropBeacon = undefined;
    await redirects(s.edge!, "complete", 600);

    const dropped = s.proxy.dropped.length;
    expect(dropped).toBeGreaterThan(0);
    expect(s.proxy.dropped.every((e) => e.v === CLICK_EVENT_VERSION && e.isolate_id && e.seq)).toBe(true);
    await eventually(async () => (await stored(linkId)) === 1001 - dropped, 30_000, 100);
    expect(await stored(linkId)).toBe(1001 - dropped);
    await settlesOn(dropped);
    console.log(`completeness: ${dropped} clicks in 3 swallowed beacons (the 3rd, 7th and 11th) of 1001 redirects; clicks_missing ${(await status()).clicks_missing}`);

    // A restart: a new isolate (another workerd) numbers from 1 again under its own id.
    const second = await startEdge({ vars: { INGEST_URL: s.proxy.url, EDGE_SECRET, BEACON_BASE_DELAY_MS: "50" } });
    try {
      await redirects(second, "complete", 600);
      // Closed only once its clicks are in (closing it earlier would lose those still batching).
      await eventually(async () => (await stored(linkId)) === 1601 - dropped, 60_000, 100);
    } finally {
      await second.close();
    }
    const isolates = await s.sql`SELECT isolate_id, min(seq)::int AS first, max(seq)::int AS last, count(*)::int AS n FROM clicks WHERE link_id = ${linkId} GROUP BY isolate_id ORDER BY min(ts)`;
    expect(isolates.map((r) => [r.first, r.n])).toEqual([
      [1, 1001 - dropped],
      [1, 600],
    ]);

    // Redelivery: every stored click of the first isolate sent again (as the queue or a retried
    // beacon would), in batches: all duplicates, no figure moves.
    const again = await s.sql<ClickEvent[]>`
      SELECT click_id, short_url, original_url, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS timestamp,
             user_agent, ip_address, referer, geo_location, domain, code, link_id::int AS link_id, redirect_status, cache_tier,
             isolate_id, seq::int AS seq
      FROM clicks WHERE link_id = ${linkId} AND isolate_id = ${isolates[0]!.isolate_id}`;
    for (let i = 0; i < again.length; i += 100) {
      const batch = again.slice(i, i + 100).map((e) => ({ ...e, v: CLICK_EVENT_VERSION }));
      expect(await body(await postBeacon(s.ingest.url, batch))).toEqual({ accepted: batch.length, duplicates: batch.length });
    }
    await settlesOn(dropped);
  }, 240_000);
});

describe("completeness check rules (direct beacons)", () => {
  const isolate = () => crypto.randomUUID();
  const numbered = (id: string, seqs: number[]): ClickEvent[] => seqs.map((seq) => ({ ...clickEvent({ link_id: 31, code: "seqs" }), v: CLICK_EVENT_VERSION, isolate_id: id, seq }));
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const shuffle = <T>(a: T[]) => a.map((x) => [Math.random(), x] as const).sort((p, q) => p[0] - q[0]).map(([, x]) => x);
  async function send(events: ClickEvent[], size = 100) {
    for (let i = 0; i < events.length; i += size) expect((await postBeacon(s.ingest.url, events.slice(i, i + size))).status).toBe(202);
  }

  it("out of order and twice over: no gap; a gap counts once later clicks passed its block and the window; a late click is counted late", async () => {
    const before = await status();
    await seedLinks(s.sql, numbered(isolate(), [1]));
    // 700 clicks in random order, each sent twice: nothing missing.
    const a = isolate();
    const all = numbered(a, range(1, 700));
    await send(shuffle([...all, ...all]));
    // Isolate b lost seq 10 and 300..309 (11 clicks); 520 came after them.
    const b = isolate();
    const lost = new Set([10, ...range(300, 309)]);
    const bEvents = numbered(b, range(1, 520));
    await send(shuffle(bEvents.filter((e) => !lost.has(e.seq!))));
    await settlesOn(before.clicks_missing + 11, before.clicks_late);
    // A gap in the last block (no later block yet) does not count before its isolate goes quiet.
    await send(numbered(b, [600]));
    await new Promise((r) => setTimeout(r, WINDOW_MS * 2));
    await settlesOn(before.clicks_missing + 11, before.clicks_late);
    // Seq 10 arrives after all (a click from a long queue): late, so one click less is missing.
    await send(bEvents.filter((e) => e.seq === 10));
    await settlesOn(before.clicks_missing + 10, before.clicks_late + 1);
    // Whole blocks lost: c stored 1..100 and 700..800 only. Blocks 0 and 2 are partial, block 1
    // (257..512) has no click at all: 599 missing once block 2 is settled (block 3 is its last).
    const c = isolate();
    await send(numbered(c, [...range(1, 100), ...range(700, 800)]));
    await settlesOn(before.clicks_missing + 10 + 599, before.clicks_late + 1);
    // A click of the block that had none arrives after all: late.
    await send(numbered(c, [300]));
    await settlesOn(before.clicks_missing + 10 + 598, before.clicks_late + 2);
    // An isolate quiet for longer than a click can take: its last block settles (599..521 and
    // 601.. are unknown: 521..599 missing = 79), and its rows go.
    const r = await settleSequences(s.sql, WINDOW_MS, 0);
    expect(r).not.toBeNull();
    // (c's last block: 769..800, complete.)
    await settlesOn(before.clicks_missing + 10 + 598 + 79, before.clicks_late + 2);
    expect(await s.sql`SELECT 1 FROM click_sequences WHERE isolate_id IN (${a}, ${b}, ${c})`).toHaveLength(0);
  }, 60_000);
});
