import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { body, eventually, json, startStack, type Stack } from "../helpers.ts";

/**
 * /api/stats/stream: besides the process cap (STATS_STREAMS_MAX), each key and each workspace
 * has its own (STATS_STREAMS_PER_KEY, STATS_STREAMS_PER_WORKSPACE: 2 and 3 here), so one key
 * cannot hold every slot; beyond them 429 too_many_streams with Retry-After, while another
 * workspace still connects. A closed stream gives its slot back.
 */
let s: Stack;
let keyA1: string;
let keyA2: string;
let keyA3: string;
let keyB: string;
// The open streams, with their responses: Node's fetch cancels an unread body once its Response
// is garbage collected, which would close a stream (and free its slot) whenever GC ran.
const open: { ctl: AbortController; res: Response }[] = [];
beforeAll(async () => {
  s = await startStack({ edge: false, pipeline: true, env: { STATS_STREAMS_PER_KEY: "2", STATS_STREAMS_PER_WORKSPACE: "3" } });
  const newKey = async () => (await body(await fetch(`${s.ingest.url}/api/keys`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ name: "stream", scopes: ["stats:read"] }) }))).key as string;
  [keyA1, keyA2, keyA3] = [await newKey(), await newKey(), await newKey()];
  const ws = await body(await fetch(`${s.ingest.url}/api/workspaces`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ name: "b" }) }));
  keyB = ws.admin_key.key;
});
afterAll(async () => {
  for (const o of open) o.ctl.abort();
  await s.close();
});

/** Opens a stream; a 200 stays open (until aborted), anything else is read and returned. */
async function stream(key: string): Promise<{ status: number; retryAfter: string | null; code?: string; ctl: AbortController }> {
  const ctl = new AbortController();
  const res = await fetch(`${s.ingest.url}/api/stats/stream`, { headers: json(key), signal: ctl.signal });
  if (res.status === 200) {
    open.push({ ctl, res });
    return { status: 200, retryAfter: null, ctl };
  }
  return { status: res.status, retryAfter: res.headers.get("retry-after"), code: (await body(res)).error?.code, ctl };
}

describe("live stream caps", () => {
  it("a key's streams beyond its cap get 429 too_many_streams with Retry-After; another workspace still gets 200", async () => {
    const first = [await stream(keyA1), await stream(keyA1)];
    expect(first.map((r) => r.status)).toEqual([200, 200]);
    const over = await stream(keyA1);
    expect(over).toMatchObject({ status: 429, code: "too_many_streams" });
    expect(Number(over.retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await stream(keyB)).status).toBe(200);
  });

  it("a workspace's streams beyond its cap get 429, whichever of its keys asks", async () => {
    expect((await stream(keyA2)).status).toBe(200); // the workspace's third
    expect(await stream(keyA3)).toMatchObject({ status: 429, code: "too_many_streams" });
    expect((await stream(keyB)).status).toBe(200);
  });

  it("closing a stream gives its slot back", async () => {
    // keyA1's two streams are the first two opened.
    open[0]!.ctl.abort();
    expect(await eventually(async () => (await stream(keyA3)).status === 200, 10_000, 200)).toBe(true);
    expect((await stream(keyA3)).status).toBe(429); // the workspace is full again
    open[1]!.ctl.abort();
    expect(await eventually(async () => (await stream(keyA1)).status === 200, 10_000, 200)).toBe(true);
  });
});
