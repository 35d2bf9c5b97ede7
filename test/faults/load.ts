/**
 * The fault suite's loads: signed beacons straight to ingest (retried with the same click_id
 * until acknowledged, like the edge), and visitors following a short URL (redirect load), each
 * at a steady rate; plus the links they name.
 */
import { createHash } from "node:crypto";
import { CLICK_EVENT_VERSION, type ClickEvent } from "../../shared/event.ts";
import { sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import { clickEvent } from "../fixtures.ts";
import { KEYS } from "../helpers.ts";
import type { Scenario } from "./scenario.ts";
import { rand, sleep } from "./util.ts";

/**
 * `rate` calls of `run` per second, at most `maxInFlight` unfinished at once: a slot beyond
 * that is skipped (back-pressure, e.g. ingest down and everything retrying) rather than piled up.
 */
class SteadyRate {
  private inflight = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private slots = 0;

  constructor(
    private opts: { rate: number; maxInFlight: number },
    private run: () => Promise<void>,
    private skip: () => void,
  ) {}

  start() {
    const t0 = Date.now();
    this.timer = setInterval(() => {
      const due = Math.floor(((Date.now() - t0) / 1000) * this.opts.rate) - this.slots;
      for (let i = 0; i < due; i++) {
        this.slots++;
        if (this.inflight.size >= this.opts.maxInFlight) {
          this.skip();
          continue;
        }
        const p = this.run();
        this.inflight.add(p);
        void p.finally(() => this.inflight.delete(p));
      }
    }, 20);
  }

  /** Starts no more calls. */
  halt() {
    clearInterval(this.timer);
  }

  /** Waits for the calls in flight. */
  async settle() {
    while (this.inflight.size) await Promise.all([...this.inflight]);
  }
}

/** POSTs a signed beacon to ingest (as fixtures.ts postBeacon), each attempt bounded by `timeoutMs`. */
export async function sendBeacon(ingestUrl: string, e: ClickEvent, timeoutMs: number): Promise<Response> {
  const raw = JSON.stringify(e);
  return fetch(`${ingestUrl}/v1/clicks`, {
    method: "POST",
    headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(KEYS.beacon, raw) },
    body: raw,
    signal: AbortSignal.timeout(timeoutMs),
  });
}

export interface LoadStats {
  generated: number;
  /** Slots of the steady rate skipped because maxInFlight beacons were still being retried. */
  skipped: number;
  acked: Set<string>;
  /** Attempts that failed with a network error or 5xx (then retried). */
  failedAttempts: number;
  /** Ids that needed more than one attempt. */
  retriedIds: number;
  /** 202s saying the click was already stored (a retry of a commit whose answer was lost). */
  duplicateAcks: number;
  /** Non-retryable answers (4xx): a bug, never expected. */
  refused: { id: string; status: number; body: string }[];
  /** Ids still unacknowledged when the load gave up. */
  unacked: string[];
}

const DEFAULT_CODES = ["code0", "code1", "code2", "code3", "code4"];

/**
 * The links a BeaconLoad's clicks name, created in the scenario's database (after ingest ran its
 * migrations): ingest takes a click only for the link at its domain/code. Ids come from the
 * sequence, so links made through the API before or after do not collide. Returns code → id.
 */
export async function loadLinks(s: Scenario, codes = DEFAULT_CODES): Promise<Map<string, number>> {
  const rows = await s.pg<{ id: string; code: string }[]>`
    INSERT INTO links (workspace_id, domain, code, url)
    SELECT (SELECT min(id) FROM workspaces), '', c, 'https://example.com/landing' FROM unnest(${codes}::text[]) AS c
    RETURNING id, code`;
  return new Map(rows.map((r) => [r.code, Number(r.id)]));
}

/**
 * `n` codes per shard of a stream of `shards` evenly split shards (Kinesis: the MD5 of the
 * partition key — the code — as a 128-bit number picks the shard), so a load reaches every shard.
 */
export function codesCoveringShards(shards: number, n = 2): string[] {
  const per = new Map<number, string[]>();
  for (let i = 0; [...per.values()].reduce((a, l) => a + l.length, 0) < shards * n; i++) {
    const code = `code${i}`;
    const shard = Number((BigInt("0x" + createHash("md5").update(code).digest("hex")) * BigInt(shards)) >> 128n);
    const list = per.get(shard) ?? [];
    if (list.length < n) per.set(shard, [...list, code]);
  }
  return [...per.values()].flat();
}

/** Steady signed beacons straight to ingest, each retried with the same click_id until acknowledged. */
export class BeaconLoad {
  readonly stats: LoadStats = { generated: 0, skipped: 0, acked: new Set(), failedAttempts: 0, retriedIds: 0, duplicateAcks: 0, refused: [], unacked: [] };
  private pace: SteadyRate;
  private giveUpAt = Infinity;

  constructor(
    private url: string,
    /** `links`: code → link id, from `loadLinks` (the load spreads its clicks over them). */
    opts: { rate: number; maxInFlight: number; links: Map<string, number> },
  ) {
    const codes = [...opts.links.keys()];
    // Numbered like one worker isolate's clicks, so the completeness check sees this load too.
    const isolate_id = crypto.randomUUID();
    this.pace = new SteadyRate(
      opts,
      () => {
        const code = codes[this.stats.generated++ % codes.length]!;
        return this.deliver({ ...clickEvent({ link_id: opts.links.get(code)!, code }), v: CLICK_EVENT_VERSION, isolate_id, seq: this.stats.generated });
      },
      () => this.stats.skipped++,
    );
  }

  start() {
    this.pace.start();
    return this;
  }

  private async deliver(e: ClickEvent) {
    for (let attempt = 0; ; attempt++) {
      if (attempt === 1) this.stats.retriedIds++;
      if (Date.now() > this.giveUpAt) {
        this.stats.unacked.push(e.click_id);
        return;
      }
      try {
        const r = await sendBeacon(this.url, e, 10_000); // re-signed each attempt
        const res = { status: r.status, text: await r.text() };
        if (res.status === 202) {
          if ((JSON.parse(res.text) as { duplicates: number }).duplicates) this.stats.duplicateAcks++;
          this.stats.acked.add(e.click_id);
          return;
        }
        if (res.status < 500) {
          this.stats.refused.push({ id: e.click_id, status: res.status, body: res.text.slice(0, 300) });
          return;
        }
      } catch {
        // connection refused / reset / timeout: ingest is down (or hung)
      }
      this.stats.failedAttempts++;
      await sleep(rand(50, Math.min(1000, 100 * 2 ** attempt)));
    }
  }

  /** Stops generating; waits (up to `ms`) until every generated beacon is acknowledged. */
  async stop(ms = 60_000): Promise<LoadStats> {
    this.pace.halt();
    this.giveUpAt = Date.now() + ms;
    await this.pace.settle();
    return this.stats;
  }
}

/** Creates a link through ingest's API (admin key); returns its id and code. */
export async function createLink(ingestUrl: string, s: Scenario, link: Record<string, unknown>): Promise<{ id: number; code: string }> {
  const res = await fetch(`${ingestUrl}/api/links`, {
    method: "POST",
    headers: { Authorization: `Bearer ${s.adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(link),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 201) throw new Error(`POST /api/links answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as { id: number; code: string };
}

export interface RedirectSample {
  /** When the request started (epoch ms) and how long the answer took. */
  at: number;
  ms: number;
  /** HTTP status, or the network error / timeout. */
  status: number | string;
  location: string | null;
}

/**
 * Steady visitors of one short URL: `rate` requests per second (redirect: "manual", the redirect
 * itself is the answer), at most `maxInFlight` at once (a slot is skipped beyond that), each
 * bounded by `timeoutMs`. Every answer is kept as a sample.
 */
export class RedirectLoad {
  readonly samples: RedirectSample[] = [];
  skipped = 0;
  private pace: SteadyRate;

  constructor(
    private url: string,
    private opts: { rate: number; maxInFlight: number; timeoutMs?: number } = { rate: 40, maxInFlight: 16 },
  ) {
    this.pace = new SteadyRate(
      opts,
      () => this.visit(),
      () => this.skipped++,
    );
  }

  start() {
    this.pace.start();
    return this;
  }

  private async visit() {
    const at = Date.now();
    try {
      const res = await fetch(this.url, {
        redirect: "manual",
        headers: { "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 linkflow-fault-suite" },
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
      });
      await res.arrayBuffer();
      this.samples.push({ at, ms: Date.now() - at, status: res.status, location: res.headers.get("location") });
    } catch (err) {
      this.samples.push({ at, ms: Date.now() - at, status: String((err as Error).name ?? err), location: null });
    }
  }

  /** Stops starting requests and waits for those in flight. */
  async stop() {
    this.pace.halt();
    await this.pace.settle();
    return this;
  }

  /** Samples of requests started in [from, to). */
  between(from: number, to: number) {
    return this.samples.filter((r) => r.at >= from && r.at < to);
  }

  get served() {
    return this.samples.filter((r) => r.status === 302).length;
  }

  /** Status → count, e.g. { "302": 2400 }. */
  statuses(samples: { status: number | string }[] = this.samples) {
    const out: Record<string, number> = {};
    for (const r of samples) out[r.status] = (out[r.status] ?? 0) + 1;
    return out;
  }
}
