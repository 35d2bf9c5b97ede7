import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EDGE_SECRET, eventually, json } from "../helpers.ts";
import { BeaconLoad, RedirectLoad } from "./load.ts";
import type { PipelineStatus } from "./probes.ts";
import { printReport } from "./report.ts";
import { freePort } from "./scenario.ts";
import { sleep } from "./util.ts";

/**
 * Restart safety of the embedded defaults (issue 18, item 6): `npm start` (PGlite, chDB,
 * kinesalite, workerd) killed with SIGKILL — the whole process group, no Ctrl-C — in the middle of
 * load, three times, then started again on the same DATA_DIR. It must come up cleanly each time,
 * keep every click ingest acknowledged (202: committed in PostgreSQL), carry each of them to
 * ClickHouse exactly once, and the completeness check must find nothing missing among the
 * beacon load's numbered clicks. Redirects served by the killed worker whose clicks were still
 * batching in its isolate are the crash window (docs/FAULTS.md), counted here, not asserted.
 */
interface Running {
  proc: ChildProcess;
  out: () => string;
  key: string;
  pgUrl: string;
  startMs: number;
}

let dataDir: string;
let ports: { edge: number; ingest: number };
const KILLS = 3;
const RATE = 40;

async function start(): Promise<Running> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dataDir,
    PORT: String(ports.ingest),
    EDGE_PORT: String(ports.edge),
    LOG_LEVEL: "warn",
    EDGE_SECRET, // the beacon load signs with the suite's secret
    CLICKS_MISSING_WINDOW_MS: "2000",
  };
  for (const k of ["DATABASE_URL", "ADMIN_API_KEY", "SHORT_BASE_URL", "EDGE_ADMIN_URL", "CLICKHOUSE_URL", "KINESIS_ENDPOINT"]) delete env[k];
  const t0 = Date.now();
  // Its own process group, so SIGKILL reaches workerd too (as a terminal's kill -9 of the group would).
  const proc = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const ready = await eventually(async () => out.includes("Ctrl-C stops everything") || proc.exitCode !== null, 90_000, 100);
  if (!ready || proc.exitCode !== null) throw new Error(`npm start did not come up:\n${out}`);
  const key = /admin API key\s+(lf_\S+)/.exec(out)?.[1];
  const pgUrl = /PostgreSQL\s+(postgres:\/\/\S+)/.exec(out)?.[1];
  if (!key || !pgUrl) throw new Error(`banner lacks key or database URL:\n${out}`);
  return { proc, out: () => out, key, pgUrl, startMs: Date.now() - t0 };
}

async function killGroup(r: Running) {
  process.kill(-r.proc.pid!, "SIGKILL");
  await eventually(async () => r.proc.exitCode !== null || r.proc.signalCode !== null, 15_000, 50);
  // workerd and the rest of the group are gone when the ports are free again.
  await eventually(async () => (await fetch(`http://127.0.0.1:${ports.edge}/`).then(() => false, () => true)) && (await fetch(`http://127.0.0.1:${ports.ingest}/livez`).then(() => false, () => true)), 15_000, 100);
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "linkflow-start-kill-"));
  ports = { edge: await freePort(), ingest: await freePort() };
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

describe("npm start killed with SIGKILL under load, started again", () => {
  it(`loses no acknowledged click over ${KILLS} kills; each restart is clean`, async () => {
    const ingestUrl = `http://127.0.0.1:${ports.ingest}`;
    let r = await start();
    const links = new Map<string, number>();
    for (const code of ["kill0", "kill1", "kill2"]) {
      const res = await fetch(`${ingestUrl}/api/links`, { method: "POST", headers: json(r.key), body: JSON.stringify({ url: "https://example.com/kill", slug: code }) });
      expect(res.status).toBe(201);
      links.set(code, ((await res.json()) as { id: number }).id);
    }
    // Beacons straight to ingest (retried with the same click_id until acknowledged, across the
    // kills, like the edge), and visitors through the worker.
    // kill0 is the visitors' link alone, so its clicks are the redirects' clicks.
    const beaconLinks = new Map([...links].filter(([code]) => code !== "kill0"));
    const beacons = new BeaconLoad(ingestUrl, { rate: 150, maxInFlight: 64, links: beaconLinks }).start();
    const visitors = new RedirectLoad(`http://127.0.0.1:${ports.edge}/kill0`, { rate: RATE, maxInFlight: 16, timeoutMs: 5_000 }).start();
    const restarts: number[] = [];
    const messages: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      await sleep(8_000);
      await killGroup(r);
      r = await start();
      restarts.push(r.startMs);
      // Anything PGlite, chDB or kinesalite said about an unclean stop or a repair.
      messages.push(...r.out().split("\n").filter((l) => /recover|repair|corrupt|unclean|lock|error/i.test(l)));
    }
    await sleep(5_000);
    await visitors.stop();
    const stats = await beacons.stop(60_000);
    expect(stats.refused).toEqual([]);
    expect(stats.unacked).toEqual([]);

    const pipeline = async () => (await (await fetch(`${ingestUrl}/api/pipeline`, { headers: json(r.key) })).json()) as PipelineStatus;
    const pg = postgres(r.pgUrl, { max: 1, onnotice: () => {} });
    try {
      // Drained first: the worker's last beacons may still be arriving; PostgreSQL's count stable
      // for 5 s with nothing left for Kinesis and ClickHouse.
      let last = -1;
      let stableSince = Date.now();
      const drained = await eventually(async () => {
        const p = await pipeline();
        if (p.postgres_clicks !== last) [last, stableSince] = [p.postgres_clicks, Date.now()];
        return p.outbox_backlog === 0 && p.clickhouse_clicks === p.postgres_clicks && Date.now() - stableSince > 5_000 ? p : null;
      }, 180_000, 500);
      // Simple protocol (pglite-socket multiplexes connections per message).
      const rows = await pg.unsafe(`SELECT click_id::text AS id, count(*)::int AS n, min(code) AS code FROM clicks GROUP BY click_id`).simple();
      const stored = new Map(rows.map((x) => [x.id as string, x.n as number]));
      const lostAcked = [...stats.acked].filter((id) => !stored.has(id));
      const duplicateRows = [...stored.values()].reduce((a, n) => a + n - 1, 0);
      const redirectClicks = rows.filter((x) => x.code === "kill0").length;
      // Redirects served whose click never reached ingest: clicks batching in a killed isolate.
      const crashWindow = Math.max(0, visitors.served - redirectClicks);
      await sleep(2_500); // the completeness check's window
      const final = await pipeline();
      printReport({
        scenario: `npm start SIGKILLed ×${KILLS} under load (PGlite, chDB, kinesalite, workerd), restarted on the same data folder`,
        acked: stats.acked.size,
        redirects: visitors.served,
        lost: lostAcked.length + crashWindow,
        duplicated: duplicateRows + Math.max(0, (final.clickhouse_clicks ?? 0) - stored.size),
        recoveryS: Math.max(...restarts) / 1000,
        missing: final.clicks_missing,
        notes:
          `restarts came up in ${restarts.map((ms) => (ms / 1000).toFixed(1) + " s").join(", ")}; ` +
          `acknowledged clicks lost ${lostAcked.length}; redirect clicks stored ${redirectClicks} of ${visitors.served} served: ${crashWindow} lost in the crash window ` +
          `(clicks still batching in the ${KILLS} killed isolates: ${(crashWindow / KILLS).toFixed(1)} per kill at ${RATE} redirects/s, ${((crashWindow / Math.max(1, visitors.served)) * 1000).toFixed(1)} per 1,000 redirects of the run; ` +
          `redirect requests that failed during the kills: ${visitors.samples.length - visitors.served}); ` +
          `messages at restart: ${messages.length ? messages.join(" | ").slice(0, 600) : "none"}; /api/pipeline ${JSON.stringify({ ...final, shards: undefined })}`,
      });
      expect(lostAcked).toEqual([]);
      expect(redirectClicks).toBeLessThanOrEqual(visitors.served);
      expect(duplicateRows).toBe(0);
      expect(drained).toMatchObject({ outbox_backlog: 0, dlq: 0 });
      expect(final.clickhouse_clicks).toBe(stored.size);
      expect(final.clicks_missing).toBe(0);
    } finally {
      await pg.end();
      r.proc.kill("SIGINT");
      await eventually(async () => r.proc.exitCode !== null, 20_000, 50);
    }
  }, 600_000);
});
