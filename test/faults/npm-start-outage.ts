/**
 * A manual check, not part of the suite (docs/FAULTS.md, "npm start under a long PostgreSQL
 * outage"): `npm start` (scripts/start.ts, its Miniflare worker with CLICKS_QUEUE) with ingest's
 * PostgreSQL (a fresh database on the server at PG_ADMIN_URL) behind a TCP proxy, 16 closed-loop
 * redirect clients (as `wrk -c16`), PostgreSQL cut for OUTAGE_S (default 120), then the link's
 * clicks counted in PostgreSQL: lost = served - distinct, duplicated = rows - distinct, and
 * any "lost" / timer-quota line in npm start's output. Run it alone (heavy):
 * `flock /tmp/heavy.lock npx tsx test/faults/npm-start-outage.ts`.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";

const OUTAGE_S = Number(process.env.OUTAGE_S ?? 120);
const CONC = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const free = () => new Promise<number>((r) => { const s = createServer().listen(0, "127.0.0.1", () => { const p = (s.address() as any).port; s.close(() => r(p)); }); });

const PG_ADMIN_URL = process.env.PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const pgUrl = new URL(PG_ADMIN_URL);
const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
const db = `linkflow_npmstart_${process.pid}`;
await admin.unsafe(`CREATE DATABASE ${db}`);
let down = false;
const socks = new Set<Socket>();
const proxy = createServer((c) => {
  if (down) return c.destroy();
  const u = connect(Number(pgUrl.port || 5432), pgUrl.hostname);
  socks.add(c); socks.add(u);
  c.pipe(u); u.pipe(c);
  const end = () => { c.destroy(); u.destroy(); socks.delete(c); socks.delete(u); };
  c.on("error", end); u.on("error", end); c.on("close", end); u.on("close", end);
});
await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()));
const pport = (proxy.address() as any).port;
const [port, edgePort] = [await free(), await free()];
const dataDir = mkdtempSync(join(tmpdir(), "linkflow-npmstart-"));
const out: string[] = [];
const child = spawn("npx", ["tsx", "scripts/start.ts"], {
  cwd: fileURLToPath(new URL("../..", import.meta.url)),
  env: { ...process.env, DATABASE_URL: `postgres://${pgUrl.username}${pgUrl.password ? ":" + pgUrl.password : ""}@127.0.0.1:${pport}/${db}`, DATA_DIR: dataDir, PORT: String(port), EDGE_PORT: String(edgePort) },
  stdio: ["ignore", "pipe", "pipe"],
  detached: true,
});
for (const s of [child.stdout!, child.stderr!]) s.on("data", (d) => out.push(...String(d).split("\n")));
const ingest = `http://127.0.0.1:${port}`, edge = `http://127.0.0.1:${edgePort}`;
for (let i = 0; ; i++) {
  try { if ((await fetch(`${edge}/`)).ok && (await fetch(`${ingest}/health`)).status < 500) break; } catch {}
  if (i > 240) throw new Error("npm start did not come up:\n" + out.join("\n"));
  await sleep(500);
}
const key = readFileSync(join(dataDir, "admin-key"), "utf8").trim();
const link = await (await fetch(`${ingest}/api/links`, { method: "POST", headers: { Authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify({ url: "https://example.com/npm-start" }) })).json() as { code: string };
const target = `${edge}/${link.code}`;
let served = 0, other = 0, stop = false, duringOutage = 0;
const client = async () => {
  while (!stop) {
    try { const r = await fetch(target, { redirect: "manual" }); await r.arrayBuffer(); if (r.status === 302) { served++; if (down) duringOutage++; } else other++; } catch { other++; }
  }
};
await fetch(target, { redirect: "manual" }); served++;
const clients = Array.from({ length: CONC }, client);
await sleep(5_000);
down = true; for (const s of socks) s.destroy();
const t0 = Date.now();
console.log(`PostgreSQL cut at ${new Date().toISOString()}, served so far ${served}`);
await sleep(OUTAGE_S * 1000);
down = false;
console.log(`PostgreSQL back after ${((Date.now() - t0) / 1000).toFixed(0)} s; ${duringOutage} redirects during the outage`);
await sleep(5_000);
stop = true; await Promise.all(clients);
const upAt = Date.now();
const dbUrl = new URL(PG_ADMIN_URL);
dbUrl.pathname = `/${db}`;
const pg = postgres(dbUrl.toString(), { max: 1, onnotice: () => {} });
let last = -1, changed = Date.now(), n = 0, distinct = 0;
for (;;) {
  const [r] = await pg`SELECT count(*)::int AS n, count(DISTINCT click_id)::int AS d FROM clicks WHERE code = ${link.code}`;
  n = r!.n; distinct = r!.d;
  if (n !== last) { last = n; changed = Date.now(); }
  if (n >= served || Date.now() - changed > 120_000) break;
  await sleep(1000);
}
const bad = out.filter((l) => /lost|QuotaExceeded|max active timeouts|queue send failed/i.test(l));
console.log(JSON.stringify({ served, other, duringOutage, stored: n, distinct, lost: served - distinct, duplicated: n - distinct, storedAfterS: (Date.now() - upAt) / 1000, lossLines: bad.slice(0, 5), lossLineCount: bad.length }));
process.kill(-child.pid!, "SIGINT");
await sleep(5_000);
try { process.kill(-child.pid!, "SIGKILL"); } catch {}
await pg.end(); await admin.unsafe(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`); await admin.end();
proxy.close();
process.exit(0);
