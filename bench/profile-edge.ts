/**
 * `npm run bench:profile-edge [-- --beacons=off] [-- --seconds=6]`: a CPU profile of the edge
 * worker in workerd under redirect load, taken through workerd's inspector (V8's sampling
 * profiler, 100 µs), with the worker's own source lines ranked by the time spent on them.
 * Not a benchmark (the profiler slows the worker): it says where a redirect's CPU goes, which
 * req/s on this machine is too noisy to show for a few µs (it found the waitUntil of every
 * queued click, toISOString per click and new URL() per request, 2026-12-02).
 *
 * Setup: our worker as wrangler.toml declares it, one link in KV, beacons (unless off) to a
 * no-op 202 endpoint in this process, autocannon with 32 connections on loopback. Writes the
 * .cpuprofile (Chrome DevTools → Performance → Load profile) to the temp folder.
 */
import { createServer } from "node:http";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { Log, LogLevel, Miniflare } from "miniflare";
import WebSocket from "ws";
import { bundleWorker, DEV_CF, edgeWorker } from "../edge/miniflare.ts";
import { linkKey } from "../shared/event.ts";
import { freePort } from "./ingest.ts";

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const beacons = arg("beacons", "on");
const seconds = Number(arg("seconds", "6"));

interface ProfileNode {
  id: number;
  hitCount?: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  positionTicks?: { line: number; ticks: number }[];
}

const sink = createServer((req, res) => {
  req.resume();
  req.on("end", () => res.writeHead(202, { "content-type": "application/json" }).end('{"accepted":1,"duplicates":0}'));
});
await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
const inspectorPort = await freePort();
const worker = await edgeWorker({ INGEST_URL: `http://127.0.0.1:${(sink.address() as { port: number }).port}`, EDGE_SECRET: "profile-edge-secret-0123456789-abcdef", BEACONS: beacons });
const mf = new Miniflare({ workers: [worker], kvPersist: false, cf: DEV_CF, host: "127.0.0.1", port: 0, inspectorPort, log: new Log(LogLevel.WARN) });
try {
  const url = `${(await mf.ready).toString().replace(/\/$/, "")}/profile1`;
  await (await mf.getKVNamespace("LINKS")).put(linkKey("", "profile1"), JSON.stringify({ id: 1, domain: "", code: "profile1", url: "https://example.com/profile", status: 302 }));
  await autocannon({ url, connections: 8, duration: 1, headers: { "user-agent": "Mozilla/5.0 (profile)" } }); // warm (isolate cache, JIT)

  const ws = new WebSocket(`ws://127.0.0.1:${inspectorPort}/core:user:${worker.name}`);
  await new Promise((r, j) => ws.once("open", r).once("error", j));
  let id = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.on("message", (data: Buffer) => {
    const m = JSON.parse(data.toString()) as { id?: number; result?: unknown };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result);
  });
  const call = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve) => {
      waiting.set(++id, resolve as (r: unknown) => void);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 100 });
  await call("Profiler.start");
  const load = await autocannon({ url, connections: 32, duration: seconds, headers: { "user-agent": "Mozilla/5.0 (profile)" } });
  const { profile } = await call<{ profile: { nodes: ProfileNode[] } }>("Profiler.stop");
  ws.close();

  const file = join(tmpdir(), `linkflow-edge-beacons-${beacons}-${process.pid}.cpuprofile`);
  await writeFile(file, JSON.stringify(profile));
  const total = profile.nodes.reduce((t, n) => t + (n.hitCount ?? 0), 0);
  const pct = (n: number) => `${((100 * n) / total).toFixed(1).padStart(5)} %`;
  const byFunction = new Map<string, number>();
  const byLine = new Map<number, number>();
  for (const n of profile.nodes) {
    const name = n.callFrame.functionName || (n.callFrame.url ? "(anonymous)" : "(native)");
    byFunction.set(name, (byFunction.get(name) ?? 0) + (n.hitCount ?? 0));
    // The worker's own script (workerd names it script-0); lines of the bundle esbuild made.
    if (n.callFrame.url.startsWith("script-")) for (const p of n.positionTicks ?? []) byLine.set(p.line, (byLine.get(p.line) ?? 0) + p.ticks);
  }
  const source = (await bundleWorker()).split("\n");
  console.log(`beacons ${beacons}: ${Math.round(load.requests.total / load.duration)} req/s under the profiler, ${load.non2xx - (load["3xx"] ?? 0)} non-3xx; ${file}`);
  console.log("\nself time by function (idle: the isolate waiting for I/O; program: workerd's own code):");
  for (const [name, n] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${pct(n)}  ${name}`);
  console.log("\nthe worker's own lines (bundle line: source):");
  for (const [line, n] of [...byLine].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${pct(n)}  ${String(line).padStart(6)}: ${source[line - 1]?.trim().slice(0, 110)}`);
} finally {
  await mf.dispose();
  sink.close();
}
