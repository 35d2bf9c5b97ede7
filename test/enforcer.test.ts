import { afterAll, beforeAll, expect, it } from "vitest";
import { linkKey } from "../shared/event.ts";
import { eventually, startStack, type Stack } from "./helpers.ts";

/** max_clicks, end to end: worker → beacons → PostgreSQL → Kinesis → ClickHouse → enforcer → KV. */
let s: Stack;
beforeAll(async () => {
  s = await startStack({ pipeline: true, env: { CLICK_LIMIT_INTERVAL_MS: "200" } });
});
afterAll(() => s.close());

it("stops a link at its click limit: the edge then answers 410 (or the fallback)", async () => {
  const [limited] = await s.sql`INSERT INTO links (workspace_id, code, url, max_clicks)
    VALUES (1, 'limited', 'https://example.com/limited', 3) RETURNING id`;
  await s.sql`INSERT INTO links (workspace_id, code, url, max_clicks, expired_url)
    VALUES (1, 'limited-fb', 'https://example.com/limited', 2, 'https://example.com/sold-out')`;
  const visit = (code: string) => fetch(`${s.edge!.url}/${code}`, { redirect: "manual" });
  for (let i = 0; i < 3; i++) expect((await visit("limited")).status).toBe(302);
  for (let i = 0; i < 2; i++) expect((await visit("limited-fb")).status).toBe(302);

  const kv = await s.edge!.mf.getKVNamespace("LINKS");
  const gone = async (code: string) => ((await kv.get(linkKey("", code), "json")) as { gone?: boolean } | null)?.gone === true;
  expect(await eventually(async () => (await gone("limited")) && (await gone("limited-fb")), 20_000, 100)).toBe(true);
  const [row] = await s.sql`SELECT limit_reached_at FROM links WHERE id = ${limited!.id}`;
  expect(row!.limit_reached_at).not.toBeNull();

  // The write-through also cleared this isolate's copy: the next visits are refused at once.
  expect((await visit("limited")).status).toBe(410);
  const fb = await visit("limited-fb");
  expect(fb.status).toBe(302);
  expect(fb.headers.get("location")).toBe("https://example.com/sold-out");
  // Exactly the allowed clicks were counted as the link's; nothing after the limit.
  const [n] = await s.sql`SELECT count(*)::int AS n FROM clicks WHERE code = 'limited'`;
  expect(n!.n).toBe(3);
}, 60_000);
